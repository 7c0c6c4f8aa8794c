"""Helpers for tests: free ports, a private Mosquitto, a private PostgreSQL, waiting."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
PAYLOADS = FIXTURES / "payloads"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05,
             what: str = "condition") -> None:
    """Poll until cond() is true or fail with a message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_port(port: int, timeout: float = 15.0) -> None:
    """Wait until something accepts TCP connections on localhost:port."""
    def up() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False
    wait_for(up, timeout, what=f"port {port}")


class Mosquitto:
    """A private Mosquitto broker on a free port with persistence in a temp folder."""

    def __init__(self, extra_conf: str = "") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tillsyn-mosq-"))
        self.port = free_port()
        self.extra = extra_conf
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {self.dir}/\n"
            "autosave_interval 1\nmax_queued_messages 0\nmax_inflight_messages 1000\n"
            "max_queued_bytes 0\nlog_dest none\n" + self.extra)
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def pg_bindir() -> Path | None:
    """Folder holding initdb/pg_ctl from Debian's postgresql package."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


class Postgres:
    """A private PostgreSQL cluster (initdb into a temp folder, free port)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tillsyn-pg-"))
        self.port = free_port()
        self.bindir = pg_bindir()
        self.as_user: list[str] = []

    @property
    def url(self) -> str:
        return f"postgresql://tillsyn@127.0.0.1:{self.port}/tillsyn"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def start(self) -> None:
        if self.bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
        data = self.dir / "data"
        if os.geteuid() == 0:
            # initdb refuses to run as root: run the cluster as the 'postgres' user.
            shutil.chown(self.dir, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", "tillsyn",
                  "--auth=trust", "-E", "UTF8")
        self.start_server()
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "tillsyn", "tillsyn")

    def start_server(self) -> None:
        data = self.dir / "data"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"),
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                  "-c fsync=on", "-w", "start")

    def stop_server(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast",
                  "-w", "stop")

    def cleanup(self) -> None:
        try:
            self.stop_server()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
