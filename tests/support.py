"""Helpers for tests: free ports, a private Mosquitto, a private PostgreSQL, waiting."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gateway.broker import PrivateMosquitto, free_port

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
PAYLOADS = FIXTURES / "payloads"


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05,
             what: str = "condition") -> None:
    """Poll until cond() is true or fail with a message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def tillsyn(*args: str, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `tillsyn` command (as `python -m gateway`)."""
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True,
                          text=True, timeout=120, env=env, input=input)


class Mosquitto(PrivateMosquitto):
    """The test broker."""


def pg_bindir() -> Path | None:
    """Folder holding initdb/pg_ctl from Debian's postgresql package."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


class Postgres:
    """A private PostgreSQL cluster (initdb into a temp folder, free port)."""

    def __init__(self, password: str | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tillsyn-pg-"))
        self.port = free_port()
        self.bindir = pg_bindir()
        self.as_user: list[str] = []
        self.password = password  # if given: scram-sha-256 authentication, else trust

    @property
    def url(self) -> str:
        return f"postgresql://tillsyn@127.0.0.1:{self.port}/tillsyn"

    def _run(self, *args: str) -> None:
        env = {**os.environ, "PGPASSWORD": self.password} if self.password else None
        subprocess.run([*self.as_user, *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=env)

    def start(self) -> None:
        if self.bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
        data = self.dir / "data"
        if os.geteuid() == 0:
            # initdb refuses to run as root: run the cluster as the 'postgres' user.
            shutil.chown(self.dir, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        auth = ["--auth=trust"]
        if self.password:
            pwfile = self.dir / "pwfile"
            pwfile.write_text(self.password + "\n")
            if self.as_user:
                shutil.chown(pwfile, "postgres")
            auth = ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", "tillsyn", *auth,
                  "-E", "UTF8")
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


def certificates(folder: Path, owner: str | None = None) -> dict[str, Path]:
    """A private CA and a server certificate for localhost, made with openssl.

    The server key is 0600, as a key should be; with `owner` (the broker's user: Mosquitto
    started as root drops to it before it reads the key) it is given to that user, as
    docs/deploy.md says."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is installed by scripts/system-deps.sh"
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: folder / name for name in
             ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt", "ext.cnf")}

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=Tillsyn test CA", "-keyout", str(files["ca.key"]),
        "-out", str(files["ca.crt"]))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", str(files["server.key"]), "-out", str(files["server.csr"]))
    files["ext.cnf"].write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(files["server.csr"]), "-CA", str(files["ca.crt"]),
        "-CAkey", str(files["ca.key"]), "-CAcreateserial", "-days", "2",
        "-extfile", str(files["ext.cnf"]), "-out", str(files["server.crt"]))
    for name, path in files.items():
        os.chmod(path, 0o600 if name.endswith(".key") else 0o644)
    if owner is not None and os.geteuid() == 0:
        shutil.chown(files["server.key"], owner)
    return files


def broker_owned(*paths: Path) -> None:
    """Give files to the broker's user, as docs/deploy.md says (root only: otherwise the
    broker runs as the caller, who owns them already)."""
    if os.geteuid() == 0:
        for p in paths:
            shutil.chown(p, "mosquitto")


class VictoriaMetrics:
    """A private VictoriaMetrics (Debian's `victoria-metrics`): it accepts the InfluxDB v2
    write API that influxdb-client speaks, and answers what it stored on /api/v1/export."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tillsyn-vm-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("victoria-metrics")
        if binary is None:
            raise RuntimeError("victoria-metrics not found: apt-get install victoria-metrics")
        with (self.dir / "log").open("ab") as log:
            self.proc = subprocess.Popen(
                [binary, f"-storageDataPath={self.dir / 'data'}",
                 f"-httpListenAddr=127.0.0.1:{self.port}", "-loggerLevel=ERROR",
                 "-search.disableCache", "-search.latencyOffset=0s"], stdout=log, stderr=log)
        wait_for(self._ready, 30, what="VictoriaMetrics ready")

    def _ready(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)

    def export(self, match: str = '{__name__=~".+"}') -> list[dict[str, object]]:
        """Every stored series matching, with values and timestamps (ms)."""
        import json
        import urllib.parse
        import urllib.request

        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).read()
        # explicit end: by default it is now rounded down, which hides the newest points
        query = urllib.parse.urlencode({"match[]": match, "start": 0,
                                        "end": int(time.time()) + 3600})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as r:
            return [json.loads(line) for line in r.read().decode().splitlines() if line]

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
