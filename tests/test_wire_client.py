"""Tillsyn's own MQTT 3.1.1 client without a broker: a scripted peer on a local socket
answers exactly as a misbehaving or refusing broker would, and the client must say what
happened: a refused CONNECT (the CONNACK return code in words), no CONNACK at all, a
refused subscription (reported to the gateway, which turns /healthz degraded), and a broker
that stops answering (keep-alive timeout). The same client against a real Mosquitto is in
test_receiver_wire.py and every broker test."""

from __future__ import annotations

import multiprocessing
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.ingest import pipe
from gateway.ingest.pipeline import Prepared, RawMessage
from gateway.ingest.settings import ClientSettings
from gateway.mqtt.wire_client import Refused, WireSession

Script = Callable[[socket.socket], None]


def read_packet(conn: socket.socket) -> tuple[int, bytes]:
    """One MQTT packet from the client: (type, body)."""
    head = conn.recv(1)
    if not head:
        raise ConnectionError("client closed")
    length, shift = 0, 0
    while True:
        b = conn.recv(1)[0]
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    body = b""
    while len(body) < length:
        body += conn.recv(length - len(body))
    return head[0] >> 4, body


class Peer:
    """A TCP server that runs a script against the first client that connects."""

    def __init__(self, script: Script) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.seen: list[int] = []
        self.error: BaseException | None = None

        def run() -> None:
            conn, _ = self.server.accept()
            try:
                script(conn)
            except (OSError, IndexError) as exc:
                self.error = exc
            finally:
                time.sleep(0.2)
                conn.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.close()


def settings(port: int, keepalive: int = 30) -> ClientSettings:
    return ClientSettings("127.0.0.1", port, "gw-test", None, None, False, None, keepalive,
                          "3.1.1", 0, 100, None)


def prepare(raw: RawMessage) -> Prepared:
    raise AssertionError("no messages in these scripts")


@pytest.fixture
def pipe_pair() -> Iterator[tuple[Any, Any]]:
    gateway_end, client_end = multiprocessing.Pipe()
    yield gateway_end, client_end
    gateway_end.close()
    client_end.close()


def session(port: int, conn: Any, keepalive: int = 30) -> WireSession:
    s = WireSession(settings(port, keepalive), ["zigbee2mqtt/a", "zigbee2mqtt/b"], conn,
                    prepare)
    s.connect_timeout = 1.5
    return s


def frames(gateway_end: Any) -> list[tuple[Any, ...]]:
    out = []
    while gateway_end.poll(0.5):
        out.append(pipe.open_control(gateway_end.recv_bytes()))
    return out


def test_refused_connect_names_the_reason(pipe_pair: tuple[Any, Any]) -> None:
    def script(conn: socket.socket) -> None:
        kind, _ = read_packet(conn)
        assert kind == 1  # CONNECT
        conn.sendall(b"\x20\x02\x00\x05")  # CONNACK: not authorised

    peer = Peer(script)
    s = session(peer.port, pipe_pair[1])
    with pytest.raises(Refused, match="not authori"):
        s._connect()
    s._close()
    peer.close()


def test_no_connack_is_a_timeout(pipe_pair: tuple[Any, Any]) -> None:
    def script(conn: socket.socket) -> None:
        read_packet(conn)
        time.sleep(3)  # says nothing

    peer = Peer(script)
    s = session(peer.port, pipe_pair[1])
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="no CONNACK within 1.5 s"):
        s._connect()
    assert 1.4 < time.monotonic() - t0 < 3
    s._close()
    peer.close()


def test_refused_subscription_is_reported_to_the_gateway(pipe_pair: tuple[Any, Any]) -> None:
    def script(conn: socket.socket) -> None:
        read_packet(conn)
        conn.sendall(b"\x20\x02\x00\x00")  # accepted, no session
        kind, body = read_packet(conn)
        assert kind == 8  # SUBSCRIBE
        packet_id = body[:2]
        conn.sendall(b"\x90\x04" + packet_id + b"\x01\x80")  # one granted, one refused
        time.sleep(1)

    peer = Peer(script)
    gateway_end, client_end = pipe_pair
    s = session(peer.port, client_end)
    s._connect()
    s.sock.settimeout(2)  # type: ignore[union-attr]
    publishes: list[Any] = []
    others: list[tuple[int, bytes]] = []
    while not others:
        s._read(publishes, others)
    s._others(others)
    got = frames(gateway_end)
    assert got[0][:4] == ("state", 1, True, False)  # connected
    assert got[-1] == ("state", 1, True, True, "subscribe_refused:1")
    s._close()
    peer.close()


def test_silent_broker_is_a_keepalive_timeout(pipe_pair: tuple[Any, Any]) -> None:
    pings: list[float] = []

    def script(conn: socket.socket) -> None:
        read_packet(conn)
        conn.sendall(b"\x20\x02\x00\x00")
        _, body = read_packet(conn)
        conn.sendall(b"\x90\x04" + body[:2] + b"\x01\x01")
        conn.settimeout(6)
        while True:  # PINGREQs go unanswered
            kind, _ = read_packet(conn)
            if kind == 12:
                pings.append(time.monotonic())

    peer = Peer(script)
    s = session(peer.port, pipe_pair[1], keepalive=2)
    first = s._connect()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="no answer from the broker for 3 s"):
        s._serve(first)
    took = time.monotonic() - t0
    assert 2.5 < took < 5, took  # 1.5 keep-alive intervals, not later
    assert pings, "it asked (PINGREQ) before giving up"
    s._close()
    peer.close()


def test_the_gateway_counts_refused_subscriptions_and_is_degraded() -> None:
    """The reported refusal reaches the ingest service: counted, and /healthz degraded."""
    from pathlib import Path
    from tempfile import TemporaryDirectory

    from fastapi.testclient import TestClient

    from gateway.api.app import create_app
    from gateway.runtime import build_ingest, load_runtime
    from tests.homes import write_config

    with TemporaryDirectory() as tmp:
        rt = load_runtime(write_config(Path(tmp), "mqtt://127.0.0.1:1",
                                       f"sqlite:///{tmp}/t.db"))
        ingest = build_ingest(rt)
        ingest._connection(1, True, False, "")
        ingest._connection(1, True, True, "subscribe_refused:3")
        assert ingest.subscriptions_refused == 3
        health = TestClient(create_app(rt)).get("/healthz")
        assert health.status_code == 503
        assert health.json()["mqtt_subscriptions_refused"] == 3
        assert b"tillsyn_mqtt_subscriptions_refused_total 3.0" in rt.metrics.render()
        assert ingest.sessions_lost == 0  # a refusal is not a lost session
        ingest._connection(2, True, True, "")  # a new connection starts afresh
        assert ingest.subscriptions_refused == 0
        rt.store.close()
