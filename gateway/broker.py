"""A private Mosquitto for `tillsyn demo`, the test fixtures and the benchmarks."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from gateway.errors import TillsynError


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def mosquitto_path() -> str:
    """The mosquitto binary, or a clear error naming the package to install."""
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                        if Path("/usr/sbin/mosquitto").exists() else None)
    if exe is None:
        raise TillsynError("mosquitto not found: install it with "
                           "'sudo apt-get install -y mosquitto mosquitto-clients'")
    return exe


class PrivateMosquitto:
    """Mosquitto on a free loopback port, persistence in its own folder, no other config.

    The in-flight window (2000) matches the gateway's default receive_maximum; queues are
    unbounded so a stopped gateway's persistent session keeps everything.
    """

    def __init__(self, folder: Path | None = None, port: int | None = None,
                 extra_conf: str = "", users: dict[str, str] | None = None) -> None:
        self.dir = folder or Path(tempfile.mkdtemp(prefix="tillsyn-mosq-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.extra = extra_conf
        self.users = users  # if given: password required, no anonymous clients
        self.conf_text: str | None = None  # if set: the whole configuration, used as given
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """mqtt:// URL of this broker."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        access = "allow_anonymous true\n"
        if self.users is not None:
            pwfile = self.dir / "passwd"
            pwfile.write_text("")
            for user, password in self.users.items():
                subprocess.run([shutil.which("mosquitto_passwd") or "mosquitto_passwd", "-b",
                                str(pwfile), user, password], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            access = f"allow_anonymous false\npassword_file {pwfile.resolve()}\n"
        conf = self.dir / "mosquitto.conf"
        text = self.conf_text
        if text is None:
            text = (f"listener {self.port} 127.0.0.1\n{access}"
                    f"persistence true\npersistence_location {self.dir.resolve()}/\n"
                    "autosave_interval 1\nmax_queued_messages 0\nmax_inflight_messages 2000\n"
                    f"max_queued_bytes 0\n{self._run_as()}"
                    f"log_dest file {self.dir.resolve()}/mosquitto.log\n"
                    "log_type error\nlog_type warning\nlog_type notice\n" + self.extra)
        elif os.geteuid() == 0:
            # A configuration used as given (the production one) drops to the 'mosquitto'
            # user when started as root: that user must own the folder it writes in.
            try:
                shutil.chown(self.dir, "mosquitto", "mosquitto")
            except (LookupError, PermissionError):
                pass
        conf.write_text(text)
        self.proc = subprocess.Popen([mosquitto_path(), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise TillsynError(f"mosquitto did not start on port {self.port}")
            time.sleep(0.05)

    @staticmethod
    def _run_as() -> str:
        """Started as root, mosquitto would drop to the 'mosquitto' user, which may not
        reach a folder under a private (0700) parent: it then cannot save its persistence
        file and every restart silently loses all sessions, and with them every message
        queued for them (the soak found exactly that). A private broker runs as whoever
        started it."""
        return "user root\n" if os.geteuid() == 0 else ""

    def stop(self) -> None:
        """Stop the broker (its persistence stays)."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def cleanup(self) -> None:
        """Stop and remove its folder."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
