"""The receiver process's MQTT 3.1.1 client: one socket, one loop, batches over a pipe.

It connects with a persistent session (clean session 0), subscribes to the device topics
at QoS 1, forwards every PUBLISH to the gateway process in batches and sends a PUBACK only
when the gateway says the message is committed. It keeps the connection alive with PINGREQ,
and when the connection breaks it tells the gateway (a new generation starts at every
connect) and reconnects with back-off from 1 to 30 s. Packets are parsed by wire.py; each
message is decoded here (Pipeline.prepare), so the gateway process only commits.

Frames to the gateway process (pipe.py; the same as the paho receiver's): ("state", gen,
up, session present), batches of prepared messages, ("stopped", gen, False). Commands from
it: ("ack", gen, [packet ids]) and ("stop",).
"""

from __future__ import annotations

import logging
import multiprocessing.connection
import os
import selectors
import socket
import ssl
import time
from collections.abc import Callable

from gateway.ingest import pipe
from gateway.ingest.pipeline import Prepared, RawMessage
from gateway.ingest.settings import ClientSettings
from gateway.mqtt import wire
from gateway.mqtt.reasons import refused_reason

log = logging.getLogger(__name__)

READ_SIZE = 1 << 18
BATCH = 2000


class Stop(Exception):
    """The gateway asked the receiver to stop."""


class Refused(Exception):
    """The broker answered CONNECT with a refusal (CONNACK return code)."""


class WireSession:
    """Run the connection until told to stop."""

    connect_timeout = 10.0  # seconds to wait for the CONNACK (and for a socket read)

    def __init__(self, cfg: ClientSettings, topics: list[str],
                 conn: multiprocessing.connection.Connection,
                 prepare: Callable[[RawMessage], Prepared]) -> None:
        self.cfg = cfg
        self.prepare = prepare
        self.topics = topics
        self.conn = conn
        self.generation = 0
        self.sock: socket.socket | None = None
        self.pending = b""
        self._chunks: list[bytes] = []  # reads of a large packet not yet complete
        self._have = 0
        self._need = 0
        self.last_sent = 0.0
        self.last_heard = 0.0

    # --- pipe to the gateway process ------------------------------------------------------

    def _send(self, frame: bytes) -> None:
        try:
            self.conn.send_bytes(frame)
        except (OSError, ValueError):
            self._orphaned()

    @staticmethod
    def _orphaned() -> None:
        # The gateway process died: leave at once, without DISCONNECT and without acking,
        # so the broker keeps and redelivers everything that was not committed.
        os._exit(0)

    def _commands(self) -> None:
        """Handle every command waiting on the pipe."""
        while True:
            try:
                if not self.conn.poll():
                    return
                cmd = self.conn.recv()
            except (EOFError, OSError):
                self._orphaned()
            if cmd[0] == "ack":
                if cmd[1] == self.generation and self.sock is not None and cmd[2]:
                    self._write(wire.pubacks(cmd[2]))
            elif cmd[0] == "stop":
                raise Stop

    # --- socket ---------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(data)
        self.last_sent = time.monotonic()

    def _open(self) -> socket.socket:
        cfg = self.cfg
        sock = socket.create_connection((cfg.host, cfg.port), timeout=self.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if cfg.tls:
            context = ssl.create_default_context(cafile=cfg.ca_file)
            sock = context.wrap_socket(sock, server_hostname=cfg.host)
        return sock

    def _connect(self) -> list[wire.Publish]:
        """Connect and subscribe; returns publishes that arrived with the CONNACK."""
        cfg = self.cfg
        self.sock = sock = self._open()
        self.pending = b""
        self._chunks, self._have, self._need = [], 0, 0
        self._write(wire.connect_packet(cfg.client_id, cfg.keepalive, clean_session=False,
                                        username=cfg.username,
                                        password=cfg.password if cfg.password else None))
        publishes: list[wire.Publish] = []
        others: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + self.connect_timeout
        while not others:
            try:
                if time.monotonic() > deadline:
                    raise TimeoutError
                self._read(publishes, others)
            except TimeoutError:
                raise TimeoutError(f"no CONNACK within {self.connect_timeout:g} s") from None
        kind, body = others.pop(0)
        if kind != wire.CONNACK:
            raise wire.ProtocolError(f"expected CONNACK, got packet type {kind}")
        present, code = wire.connack(body)
        if code:
            raise Refused(wire.CONNACK_REASONS.get(code, f"return code {code}"))
        self.generation += 1
        self.last_heard = time.monotonic()
        log.info("MQTT connected to %s:%s (session present: %s)", cfg.host, cfg.port, present)
        self._send(pipe.control_frame(("state", self.generation, True, present)))
        for n, chunk in enumerate(wire.subscription_chunks(self.topics, cfg.shared_group)):
            self._write(wire.subscribe_packet(n % 65535 + 1, chunk))
        log.info("subscribed to %d device topics", len(self.topics))
        sock.settimeout(self.connect_timeout)
        self._others(others)
        return publishes

    def _read(self, publishes: list[wire.Publish], others: list[tuple[int, bytes]]) -> None:
        assert self.sock is not None
        data = self.sock.recv(READ_SIZE)
        if not data:
            raise ConnectionError("the broker closed the connection")
        if isinstance(self.sock, ssl.SSLSocket):
            while self.sock.pending():
                data += self.sock.recv(READ_SIZE)
        self.last_heard = time.monotonic()
        if self._need:
            # Collect the reads of a packet larger than one read without copying the bytes
            # so far at every read (a hostile 200 MB message would otherwise cost minutes).
            self._chunks.append(data)
            self._have += len(data)
            if self._have < self._need:
                return
            data = b"".join(self._chunks)
            self._chunks, self._have = [], 0
        elif self.pending:
            data = self.pending + data
        used = wire.parse(data, int(time.time() * 1000), publishes, others)
        self.pending = data[used:]
        size = wire.packet_size(self.pending) if self.pending else None
        self._need = size if size is not None and size > len(self.pending) + READ_SIZE else 0
        if self._need:
            self._chunks, self._have = [self.pending], len(self.pending)

    def _others(self, others: list[tuple[int, bytes]]) -> None:
        for kind, body in others:
            if kind == wire.SUBACK:
                packet_id, refused = wire.suback_failures(body)
                if refused:
                    log.error("the broker refused %d topic subscriptions (SUBACK %d): check "
                              "the ACL for client %s", refused, packet_id, self.cfg.client_id)
                    self._send(pipe.control_frame(("state", self.generation, True, True,
                                                   refused_reason(refused))))
            elif kind != wire.PINGRESP:
                raise wire.ProtocolError(f"unexpected packet type {kind} from the broker")

    def _forward(self, publishes: list[wire.Publish]) -> None:
        prepare, make = self.prepare, RawMessage._make
        for i in range(0, len(publishes), BATCH):
            self._send(pipe.msgs_frame(self.generation,
                                       [prepare(make(t)) for t in publishes[i:i + BATCH]]))

    def _serve(self, first: list[wire.Publish]) -> None:
        """Until the connection breaks (raises) or the gateway says stop (Stop)."""
        assert self.sock is not None
        self._forward(first)
        keepalive = float(self.cfg.keepalive)
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ, "mqtt")
        selector.register(self.conn, selectors.EVENT_READ, "pipe")
        try:
            while True:
                for key, _ in selector.select(timeout=min(1.0, keepalive / 4)):
                    if key.data == "pipe":
                        self._commands()
                        continue
                    publishes: list[wire.Publish] = []
                    others: list[tuple[int, bytes]] = []
                    try:
                        self._read(publishes, others)
                    except ssl.SSLWantReadError:
                        continue
                    self._others(others)
                    self._forward(publishes)
                now = time.monotonic()
                if now - self.last_sent >= keepalive / 2:
                    self._write(wire.PINGREQ)
                if now - self.last_heard > keepalive * 1.5:
                    raise TimeoutError(f"no answer from the broker for {keepalive * 1.5:.0f} s")
        finally:
            selector.close()

    def _close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    def _wait(self, seconds: float) -> None:
        """Back-off pause that still answers the gateway (stop)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                ready = self.conn.poll(left)
            except (EOFError, OSError):
                self._orphaned()
            if ready:
                self._commands()

    def run(self) -> None:
        """Connect, serve, reconnect with back-off; returns after a stop command."""
        delay = 1.0
        try:
            while True:
                up = False
                try:
                    first = self._connect()
                    up = True
                    delay = 1.0
                    self._serve(first)
                except Stop:
                    raise
                except Refused as exc:
                    log.error("MQTT connection refused by %s:%s: %s", self.cfg.host,
                              self.cfg.port, exc)
                except (OSError, wire.ProtocolError, ValueError) as exc:
                    if up:
                        why = "keepalive_timeout" if isinstance(exc, TimeoutError) else \
                            "closed_by_broker" if isinstance(exc, ConnectionError) else "error"
                        self._send(pipe.control_frame(("state", self.generation, False, False,
                                                       why)))
                        log.warning("MQTT connection lost (%s); reconnecting with back-off "
                                    "1-30 s", _describe(exc))
                    else:
                        log.warning("MQTT connection to %s:%s failed (%s); retrying in %.0f s",
                                    self.cfg.host, self.cfg.port, _describe(exc), delay)
                self._close()
                self._wait(delay)
                delay = min(delay * 2, 30.0)
        except Stop:
            if self.sock is not None:
                try:
                    self._write(wire.DISCONNECT)
                except OSError:
                    pass
            self._close()
            self._send(pipe.control_frame(("stopped", self.generation, False)))


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
