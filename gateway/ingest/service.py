"""Ingest service: receive, decode, commit, then acknowledge.

A receiver (paho in a child process by default, see receiver.py) hands over messages
tagged with the connection generation. A writer thread takes batches, recognises broker
redeliveries, decodes, commits observations, dead letters, device status and the
redelivery log in one transaction, and only then asks the receiver to send the PUBACKs.
If the database is down the batch is retried and nothing is acknowledged, so the broker
keeps the messages and stops sending once `receive_maximum` are in flight.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from gateway.config.gateway import MqttConfig
from gateway.errors import Fenced, StorageError
from gateway.ingest import pipe
from gateway.ingest.pipeline import Pipeline, Prepared
from gateway.ingest.receiver import ProcessReceiver, ThreadReceiver
from gateway.ingest.router import Router
from gateway.ingest.settings import ClientSettings
from gateway.metrics import Metrics
from gateway.mqtt.reasons import CLOSED_BY_BROKER, SESSION_TAKEN_OVER, SUBSCRIBE_REFUSED
from gateway.storage.store import Store

log = logging.getLogger(__name__)
WRITER_STALL_S = 20.0
T = TypeVar("T")

# A redelivered message can only be one of the last in-flight-window messages committed
# before the connection broke; the broker's packet ids cycle through 65535 values, so a row
# older than this window with the same id belongs to an earlier, acknowledged message.
DEDUP_WINDOW = 30000
# Another client with our client id: the broker closes our connection each time it
# connects. This many closes within the window is reported (/healthz degraded, log).
SUSPECT_CLOSES = 3
SUSPECT_WINDOW_S = 600


class IngestService:
    """Receive, decode, commit, acknowledge."""

    def __init__(self, mqtt_config: MqttConfig, router: Router, pipeline: Pipeline,
                 store: Store, metrics: Metrics, *, batch_max: int = 2000,
                 receiver: str = "process") -> None:
        self.cfg = mqtt_config
        self.router = router
        self.pipeline = pipeline
        self.store = store
        self.metrics = metrics
        self.batch_max = batch_max
        self.client_id = mqtt_config.client_id
        # (generation, prepared messages or a batch frame the writer opens, see pipe.py)
        self._queue: deque[tuple[int, list[Prepared] | bytes]] = deque()
        self._delivered = 0  # messages put in the queue (receiver side only)
        self._taken = 0  # messages taken out (writer only)
        self._generation = 0
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self.connected = False
        self.db_ok = True
        self.writer_beat = time.monotonic()  # each turn of the writer loop
        self.last_commit_ms = 0
        self.last_lag_s = 0.0
        self.committed_messages = 0
        self.delivered_messages = 0
        self.sessions_lost = 0  # reconnects that found no session at the broker
        self.subscriptions_refused = 0  # on the current connection (SUBACK failures)
        self.disconnects: deque[tuple[float, str]] = deque()  # recent (time, reason)
        self._expect_session = False  # a session should exist (we connected or committed)
        # Several workers: (slot lease name, worker id); commits only while it is held.
        self.fence: tuple[str, str] | None = None
        self._seq = 0
        self._min_dup_seq = 0
        # Called with each committed batch (observations, device last-seen), in order.
        self.on_committed: Callable[[list[dict[str, Any]], dict[str, dict[str, Any]]],
                                    None] | None = None
        cls = ProcessReceiver if receiver == "process" else ThreadReceiver
        self.receiver: ProcessReceiver | ThreadReceiver = cls(
            ClientSettings.of(mqtt_config), router.topics(), pipeline, self._deliver,
            self._connection)

    # --- from the receiver ----------------------------------------------------------------

    def _deliver(self, generation: int, chunk: list[Prepared] | bytes, count: int) -> None:
        self._queue.append((generation, chunk))
        self._delivered += count

    def _connection(self, generation: int, up: bool, session_present: bool,
                    reason: str = "") -> None:
        if up and reason.startswith(SUBSCRIBE_REFUSED):
            n = int(reason.split(":", 1)[1])
            self.subscriptions_refused += n
            self.metrics.subscriptions_refused.inc(n)
            return
        if not up and reason:
            now = time.monotonic()
            self.disconnects.append((now, reason))
            while self.disconnects and now - self.disconnects[0][0] > SUSPECT_WINDOW_S:
                self.disconnects.popleft()
            self.metrics.mqtt_disconnects.labels(reason=reason).inc()
            if reason == SESSION_TAKEN_OVER:
                log.error("the broker gave our session (client id %s) to another client: a "
                          "device or a second gateway uses the gateway's client id",
                          self.client_id)
            elif self.takeover_suspected():
                log.error("the broker closed our connection %d times in %d s: another client "
                          "may be using the gateway's client id %s", len(self.disconnects),
                          SUSPECT_WINDOW_S, self.client_id)
        if up and not session_present and self._expect_session:
            # The broker no longer had our persistent session (its persistence failed or is
            # off, or the session expired): whatever was published for us while we were
            # away is gone, and nobody else can tell. Say so loudly and count it.
            self.sessions_lost += 1
            self.metrics.sessions_lost.inc()
            log.error("the broker had no session for client %s: messages published while "
                      "the gateway was disconnected may be lost (check the broker's "
                      "persistence and session expiry)", self.client_id)
        if up:
            self.subscriptions_refused = 0
            self._expect_session = True
            # Messages queued from the previous connection will be redelivered by the
            # broker; the writer drops them (generation check) rather than handling twice.
            self._min_dup_seq = self._seq - DEDUP_WINDOW
            self._generation = generation
        self.connected = up
        self.metrics.mqtt_connected.set(1 if up else 0)

    def takeover_suspected(self) -> bool:
        """Another client seems to be taking the gateway's session: the broker said so (MQTT
        5), or closed our connection SUSPECT_CLOSES times within SUSPECT_WINDOW_S."""
        now = time.monotonic()
        recent = [r for t, r in self.disconnects if now - t <= SUSPECT_WINDOW_S]
        return SESSION_TAKEN_OVER in recent or \
            recent.count(CLOSED_BY_BROKER) >= SUSPECT_CLOSES

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer and the receiver (which connects in the background)."""
        self._seq = self.store.last_seq(self.client_id)
        self._expect_session = self._seq > 0
        self._min_dup_seq = self._seq - DEDUP_WINDOW
        self.pipeline.last_battery.update(self.store.battery_levels())
        self._writer = threading.Thread(target=self._write_loop, name="tillsyn-writer",
                                        daemon=True)
        self._writer.start()
        self.receiver.start()

    def stop(self) -> None:
        """Finish the batch in hand, disconnect; the broker keeps what was not acknowledged."""
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout=30)
        self.receiver.stop()
        self.connected = False

    def queue_depth(self) -> int:
        """Messages received but not yet taken for a commit."""
        return self._delivered - self._taken

    # --- writer ---------------------------------------------------------------------------

    def _take(self) -> list[tuple[int, list[Prepared]]]:
        """Up to batch_max messages, as (generation, messages) runs in arrival order."""
        q = self._queue
        runs: list[tuple[int, list[Prepared]]] = []
        n = 0
        while q and n < self.batch_max:
            generation, chunk = q.popleft()
            items = pipe.open_msgs(chunk) if isinstance(chunk, bytes) else chunk
            room = self.batch_max - n
            if len(items) > room:
                q.appendleft((generation, items[room:]))
                items = items[:room]
            runs.append((generation, items))
            n += len(items)
        self._taken += n
        return runs

    def problems(self) -> list[str]:
        """Why this ingest is not alive (empty when it is): the writer has stopped, or has
        not come round for WRITER_STALL_S (a commit that does not come back)."""
        if self._writer is None or not self._writer.is_alive():
            return ["ingest writer stopped"]
        stalled = time.monotonic() - self.writer_beat
        if stalled > WRITER_STALL_S:
            return [f"ingest writer stuck for {stalled:.0f} s"]
        return []

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            self.writer_beat = time.monotonic()
            runs = self._take()
            self.metrics.queue_depth.set(self.queue_depth())
            if not runs:
                time.sleep(0.002)
                continue
            generation = self._generation
            current = [m for g, items in runs if g == generation for m in items]
            if current:
                self._commit(current, generation)

    def _commit(self, batch: list[Prepared], generation: int) -> None:
        dup_candidates = [(m.mid, m.digest) for m in batch if m.dup]
        redelivered = self._until_stored(lambda: self.store.redelivered(
            self.client_id, dup_candidates, self._min_dup_seq))
        if redelivered is None:
            return
        fresh: list[Prepared] = []
        inflight: list[tuple[int, str, int]] = []
        seen_here: set[tuple[int, str]] = set()
        seq = self._seq
        for m in batch:
            key = (m.mid, m.digest)
            if (m.dup and m.mid in redelivered) or key in seen_here:
                continue
            seen_here.add(key)
            seq += 1
            fresh.append(m)
            inflight.append((m.mid, m.digest, seq))
        rows = self.pipeline.assemble(fresh)
        rows.counters.redeliveries = len(batch) - len(fresh)
        if self._until_stored(
                lambda: self.store.commit_batch(self.client_id, rows, inflight,
                                                 self.fence)) is None:
            return
        self._seq = seq
        if not self.db_ok:
            log.warning("database reachable again; ingest resumed")
        self.db_ok = True
        self.metrics.db_ok.set(1)
        now = int(time.time() * 1000)
        self.last_commit_ms = now
        self.committed_messages += len(batch)
        self.last_lag_s = (now - batch[0].received_ms) / 1000
        self.metrics.ingest_lag.set(self.last_lag_s)
        self.metrics.add(rows.counters)
        self.receiver.ack(generation, [m.mid for m in batch if m.qos > 0])
        if self.on_committed is not None:
            try:
                self.on_committed(rows.observations, rows.status)
            except Exception:  # detectors must never stop ingest; they rebuild at start
                log.exception("detectors failed on a committed batch")
        # Handed to the detectors too (tests and benches wait for this before they look
        # at alerts: the commit count alone runs ahead of the detectors).
        self.delivered_messages += len(batch)

    def _until_stored(self, step: Callable[[], T]) -> T | None:
        """Run a database step until it succeeds, holding every acknowledgement meanwhile;
        None if the service is stopped first."""
        while True:
            try:
                return step()
            except Fenced as exc:
                # Another worker may own this session now: acknowledge nothing more; the
                # broker redelivers what we did not acknowledge to whoever holds it.
                log.error("ingest stopped: %s", exc)
                self._stop.set()
                return None
            except StorageError as exc:
                self._db_down(exc)
                if self._stop.is_set():
                    return None

    def _db_down(self, exc: Exception) -> None:
        if self.db_ok:
            log.error("database commit failed, holding acknowledgements and retrying: %s", exc)
        self.db_ok = False
        self.metrics.db_ok.set(0)
        self.metrics.commit_failures.inc()
        self._stop.wait(1.0)
