"""systemd readiness and watchdog (`Type=notify`, `WatchdogSec=`), and what "alive" means.

`tillsyn run` says READY=1 once its API answers, then WATCHDOG=1 every third of the
watchdog interval, but only while the gateway is alive: the ingest writer is running and
not stuck, the database answers, and the detector clock ticks. A gateway that hangs (or a
part of it that stops) stops pinging, and systemd kills and restarts it after WatchdogSec.
The same test gates the SCAIP heartbeat to the alarm receiving centre, so the centre raises
its own link alarm when the gateway is not well (docs/alarm-centre.md).

The notification protocol is systemd's documented datagram to $NOTIFY_SOCKET (sd_notify(3));
without that variable (not started by systemd) nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)
Problems = Callable[[], list[str]]


def notify(message: str) -> bool:
    """Send one sd_notify message; False when not under systemd or the socket is gone."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
        return True
    except OSError as exc:
        log.warning("systemd notification failed: %s", exc)
        return False


def watchdog_seconds() -> float | None:
    """The watchdog interval systemd set for this process (None: no watchdog)."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1_000_000
    except ValueError:
        return None


class Watchdog:
    """READY=1 when `ready()` is true, then WATCHDOG=1 while `problems()` is empty."""

    def __init__(self, problems: Problems, ready: Callable[[], bool]) -> None:
        self.problems = problems
        self.ready = ready
        self.interval = watchdog_seconds()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pings = 0

    def start(self) -> None:
        """Run in the background (does nothing when not started by systemd)."""
        if not os.environ.get("NOTIFY_SOCKET"):
            return
        self._thread = threading.Thread(target=self._run, name="tillsyn-watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self.ready():
            if self._stop.wait(0.1):
                return
        notify("READY=1\nSTATUS=running")
        log.info("told systemd the gateway is ready%s", "" if self.interval is None else
                 f"; watchdog every {self.interval:g} s")
        if self.interval is None:
            return
        period = max(0.05, self.interval / 3)
        unwell: list[str] = []
        while not self._stop.wait(period):
            problems = self.problems()
            if problems:
                if problems != unwell:
                    log.error("not alive, watchdog pings withheld: %s", "; ".join(problems))
                    notify("STATUS=not alive: " + "; ".join(problems))
                unwell = problems
                continue
            if unwell:
                log.warning("alive again; watchdog pings resumed")
                notify("STATUS=running")
                unwell = []
            notify("WATCHDOG=1")
            self.pings += 1

    def stop(self) -> None:
        """Say STOPPING=1 and stop pinging."""
        self._stop.set()
        if self._thread is not None:
            notify("STOPPING=1")
            self._thread.join(timeout=2)

