"""The MQTT client side of ingest, in this process (thread) or in a child process.

Receiving and decoding share one interpreter lock with the database commit if they run in
the gateway process. The default therefore runs the MQTT client in a child process that
also does the stateless half of decoding (Pipeline.prepare), forwards the prepared messages
in batches over a pipe and sends the PUBACKs it is told to send (docs/performance.md has
the measurements). With MQTT 3.1.1 that client is wire_client.py; with MQTT 5, and in the
thread receiver, it is paho-mqtt. Either way the gateway process decides when a message is
acknowledged: only after it is committed.

Messages and connection changes reach the writer through one callback, in order:
`deliver(generation, prepared message)` and `connected(generation, up, session present,
reason)` (reason: why a connection went down: see DISCONNECT_REASONS);
a new generation starts at every (re)connect.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from gateway.ingest import pipe
from gateway.ingest.pipeline import Pipeline, Prepared, RawMessage
from gateway.ingest.settings import ClientSettings
from gateway.mqtt.paho_session import Connected, MqttSession
from gateway.mqtt.reasons import ERROR

log = logging.getLogger(__name__)
GENERATIONS_PER_CHILD = 1_000_000

Deliver = Callable[[int, list[Prepared] | bytes, int], None]  # generation, chunk, count
class ThreadReceiver:
    """paho in this process (simplest; used where one core is all there is)."""

    def __init__(self, cfg: ClientSettings, topics: list[str], pipeline: Pipeline,
                 deliver: Deliver, connected: Connected) -> None:
        prepare = pipeline.prepare
        self.session = MqttSession(
            cfg, topics, lambda gen, t: deliver(gen, [prepare(RawMessage._make(t))], 1),
            connected)

    def start(self) -> None:
        """Start the client."""
        self.session.start()

    def stop(self) -> None:
        """Stop the client."""
        self.session.stop()

    def ack(self, generation: int, mids: list[int]) -> None:
        """Send PUBACKs."""
        self.session.ack(generation, mids)


def _child_main(conn: multiprocessing.connection.Connection, cfg: ClientSettings,
                topics: list[str], pipeline: Pipeline, log_level: str,
                json_logs: bool = False) -> None:
    """Entry point of the receiver process.

    `cfg` arrives pickled, secrets included (its JSON form would mask the password).
    Ctrl-C reaches the whole process group; the parent decides when this process stops.
    """
    import signal

    from gateway.logsetup import setup_logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup_logging(log_level, json_logs)
    if cfg.protocol == "3.1.1":
        from gateway.mqtt.wire_client import WireSession

        WireSession(cfg, topics, conn, pipeline.prepare).run()
        return
    send_lock = threading.Lock()
    flush_lock = threading.Lock()
    buf: deque[tuple[int, Prepared]] = deque()

    def send(frame: bytes) -> None:
        with send_lock:
            conn.send_bytes(frame)

    def on_state(gen: int, up: bool, present: bool, why: str) -> None:
        # Flush what belongs to the old connection first, so order is kept.
        flush()
        send(pipe.control_frame(("state", gen, up, present, why)))

    def flush() -> None:
        with flush_lock:  # paho's thread (on_state) and the main loop both flush
            while buf:
                items: list[Prepared] = []
                gen = buf[0][0]
                while buf and buf[0][0] == gen and len(items) < 2000:
                    items.append(buf.popleft()[1])
                send(pipe.msgs_frame(gen, items))

    prepare = pipeline.prepare
    session = MqttSession(cfg, topics,
                          lambda gen, t: buf.append((gen, prepare(RawMessage._make(t)))),
                          on_state)
    session.start()
    try:
        while True:
            if conn.poll(0.002):
                cmd = conn.recv()
                if cmd[0] == "ack":
                    session.ack(cmd[1], cmd[2])
                elif cmd[0] == "stop":
                    flush()
                    session.stop()
                    send(pipe.control_frame(("stopped", session.generation, False)))
                    return
            if buf:
                flush()
    except (EOFError, OSError):
        # The gateway process died: leave at once, without DISCONNECT and without acking,
        # so the broker keeps and redelivers everything that was not committed.
        os._exit(0)


def json_logging_on() -> bool:
    """Whether this process logs JSON lines (the receiver then does too)."""
    from gateway.logsetup import JsonFormatter

    return any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)


class ProcessReceiver:
    """The MQTT client and decoding in a child process; batches over a pipe, PUBACKs on
    command.

    If the child dies it is started again after a second; the broker redelivers whatever
    it had not acknowledged.
    """

    def __init__(self, cfg: ClientSettings, topics: list[str], pipeline: Pipeline,
                 deliver: Deliver, connected: Connected) -> None:
        self.cfg = cfg
        self.topics = topics
        self.pipeline = pipeline
        self.deliver = deliver
        self.connected = connected
        self._ctx = multiprocessing.get_context("spawn")
        self._reader: threading.Thread | None = None
        self._send_lock = threading.Lock()
        self._stopping = False
        self.restarts = 0
        self.conn: multiprocessing.connection.Connection | None = None
        self.proc: Any = None

    def _spawn(self) -> None:
        conn, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_child_main, name="tillsyn-mqtt-receiver",
                                 args=(child, self.cfg, self.topics, self.pipeline,
                                       logging.getLevelName(logging.getLogger().level),
                                       json_logging_on()),
                                 daemon=True)
        proc.start()
        child.close()
        with self._send_lock:
            self.conn, self.proc = conn, proc

    def start(self) -> None:
        """Spawn the receiver and start reading from it."""
        self._spawn()
        self._reader = threading.Thread(target=self._read, name="tillsyn-receiver-pipe",
                                        daemon=True)
        self._reader.start()

    def _read(self) -> None:
        deliver = self.deliver
        while True:
            conn = self.conn
            assert conn is not None
            try:
                frame = conn.recv_bytes()
            except (EOFError, OSError):
                if self._stopping:
                    return
                self.proc.join(timeout=1)
                log.error("MQTT receiver process ended unexpectedly (exit code %s); "
                          "restarting it", self.proc.exitcode)
                self.connected(-1, False, False, ERROR)
                time.sleep(1.0)
                if self._stopping:
                    return
                self.restarts += 1
                self._spawn()
                continue
            # Generations restart at 1 in a new child: make them unique across restarts.
            offset = GENERATIONS_PER_CHILD * self.restarts
            if pipe.is_msgs(frame):
                gen, count = pipe.msgs_header(frame)
                deliver(gen + offset, frame, count)  # opened by the writer thread
                continue
            item = pipe.open_control(frame)
            kind, gen = item[0], item[1] + offset
            if kind == "state":
                self.connected(gen, item[2], item[3], item[4] if len(item) > 4 else "")
            elif kind == "stopped":
                return

    def ack(self, generation: int, mids: list[int]) -> None:
        """Ask the receiver to send PUBACKs."""
        try:
            child, local = divmod(generation, GENERATIONS_PER_CHILD)
            with self._send_lock:
                if self.conn is not None and child == self.restarts:
                    self.conn.send(("ack", local, mids))
        except (OSError, ValueError):
            pass  # receiver gone: the broker will redeliver

    def stop(self) -> None:
        """Stop the receiver cleanly."""
        self._stopping = True
        try:
            with self._send_lock:
                if self.conn is not None:
                    self.conn.send(("stop",))
        except (OSError, ValueError):
            pass
        if self._reader is not None:
            self._reader.join(timeout=10)
        if self.proc is not None:
            self.proc.join(timeout=10)
            if self.proc.is_alive():
                self.proc.kill()
        if self.conn is not None:
            self.conn.close()
