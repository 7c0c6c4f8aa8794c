"""Nobody has to be looking at the board to notice a dead gateway.

- The retained status topic `tillsyn/v1/<site>/status` says `online` while `tillsyn run`
  is connected and `offline` when it is killed (SIGKILL: the broker publishes its last
  will at once), when it hangs (SIGSTOP: within 1.5 keep-alive intervals), and when it
  stops cleanly.
- Under systemd's watchdog protocol (a notify socket of the test's own, as systemd would
  pass it): READY=1 once the API answers, WATCHDOG=1 pings while alive, none while the
  process hangs or its database does not answer, and pings again when it is back. This
  machine has no systemd as PID 1, so the unit itself is checked with systemd-analyze
  (tests/test_deploy.py) and the restart left to systemd.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.gateway_proc import GatewayProcess
from tests.homes import SITE, registry, write_config
from tests.support import Mosquitto, Postgres, free_port, wait_for

pytestmark = pytest.mark.broker
KEEPALIVE = 5
STATUS = f"tillsyn/v1/{SITE}/status"


class StatusWatcher:
    """Subscribes to the status topic and keeps (time, payload, retained) of each message."""

    def __init__(self, url: str) -> None:
        host, port = url.split("://", 1)[1].rsplit(":", 1)
        self.seen: list[tuple[float, str, bool]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"status-watch-{time.monotonic_ns()}")
        self.client.on_message = lambda _c, _u, m: self.seen.append(
            (time.monotonic(), m.payload.decode(), bool(m.retain)))
        self.client.on_connect = lambda c, *_a: c.subscribe(STATUS, qos=1)
        self.client.connect(host, int(port))
        self.client.loop_start()

    def last(self) -> str | None:
        return self.seen[-1][1] if self.seen else None

    def wait(self, payload: str, timeout: float) -> float:
        """Seconds until the status became `payload`."""
        t0 = time.monotonic()
        wait_for(lambda: self.last() == payload, timeout, what=f"status {payload}")
        return time.monotonic() - t0

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def gateway(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[GatewayProcess]:
    port = free_port()
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", reg=registry(1),
                       client_id=f"gw-live-{port}", api_port=port,
                       mqtt={"keepalive": KEEPALIVE})
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    yield gw
    if gw.proc is not None and gw.proc.poll() is None:
        gw.signal(signal.SIGCONT)
        gw.stop()


def test_status_topic_says_online_and_offline(mosquitto: Mosquitto,
                                              gateway: GatewayProcess) -> None:
    watch = StatusWatcher(mosquitto.url)
    try:
        gateway.start()
        watch.wait("online", 15)
        # Killed: the socket closes, the broker publishes the will.
        gateway.kill()
        took = watch.wait("offline", KEEPALIVE * 1.5 + 2)
        assert watch.seen[-1][2] is False  # delivered live (it is kept retained as well)
        print(f"\nSIGKILL -> offline in {took:.2f} s")
        gateway.start()
        watch.wait("online", 15)
        # Hung: the broker hears nothing for 1.5 keep-alive intervals, then says offline.
        gateway.signal(signal.SIGSTOP)
        took = watch.wait("offline", KEEPALIVE * 1.5 + 5)
        assert took >= KEEPALIVE  # not before the keep-alive has run out
        print(f"SIGSTOP -> offline in {took:.2f} s (keep-alive {KEEPALIVE} s)")
        gateway.signal(signal.SIGCONT)
        watch.wait("online", 40)  # it notices, reconnects and says so
        gateway.stop()
        watch.wait("offline", 10)
    finally:
        watch.close()
    # A monitor that connects later learns the state from the retained message.
    late = StatusWatcher(mosquitto.url)
    try:
        wait_for(lambda: late.seen, 10, what="the retained status")
        assert late.seen[0][1:] == ("offline", True)
    finally:
        late.close()


class NotifySocket:
    """Listens where systemd would: what the gateway sends over sd_notify."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.got: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            for line in data.decode().splitlines():
                self.got.append((time.monotonic(), line))

    def pings_between(self, t0: float, t1: float) -> int:
        return sum(1 for t, m in self.got if m == "WATCHDOG=1" and t0 <= t <= t1)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def test_watchdog_pings_only_while_alive(mosquitto: Mosquitto, tmp_path: Path) -> None:
    pg = Postgres()
    pg.start()
    notify = NotifySocket(tmp_path / "notify")
    port = free_port()
    cfg = write_config(tmp_path, mosquitto.url, pg.url, reg=registry(1),
                       client_id=f"gw-dog-{port}", api_port=port)
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log", env={
        "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "1500000"})
    try:
        gw.start()
        wait_for(lambda: any(m == "READY=1" for _, m in notify.got), 20, what="READY=1")
        t0 = time.monotonic()
        time.sleep(3)
        assert notify.pings_between(t0, time.monotonic()) >= 4  # every 0.5 s
        # Hung: no pings (systemd would kill it after WatchdogSec).
        gw.signal(signal.SIGSTOP)
        time.sleep(0.3)
        t0 = time.monotonic()
        time.sleep(3)
        assert notify.pings_between(t0, time.monotonic()) == 0
        gw.signal(signal.SIGCONT)
        wait_for(lambda: notify.pings_between(time.monotonic() - 1, time.monotonic()) > 0,
                 10, what="pings after SIGCONT")
        # The database stops answering: not alive, no pings, and systemd is told why.
        pg.stop_server()
        wait_for(lambda: any(m.startswith("STATUS=not alive") and "database" in m
                             for _, m in notify.got), 20, what="not alive: database")
        t0 = time.monotonic()
        time.sleep(3)
        assert notify.pings_between(t0, time.monotonic()) == 0
        pg.start_server()
        wait_for(lambda: notify.pings_between(time.monotonic() - 1, time.monotonic()) > 0,
                 30, what="pings with the database back")
        assert any(m == "STATUS=running" for _, m in notify.got[-20:])
        gw.stop()
        wait_for(lambda: any(m == "STOPPING=1" for _, m in notify.got), 10, what="STOPPING=1")
    finally:
        if gw.proc is not None and gw.proc.poll() is None:
            gw.signal(signal.SIGCONT)
            gw.stop()
        notify.close()
        pg.cleanup()
