"""The MQTT side of ingest: persistent QoS 1 session, acknowledge only after commit.

paho-mqtt's network loop runs in its own thread and only appends raw messages to a deque.
A writer thread takes batches, decodes them, commits them in one transaction and then
sends the PUBACKs (paho's `manual_ack`). If the database is down the batch is retried and
nothing is acknowledged, so the broker keeps the messages and stops sending once
`receive_maximum` are in flight: back-pressure without loss.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import deque
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.config.gateway import MqttConfig
from gateway.config.loader import secret
from gateway.errors import StorageError
from gateway.ingest.pipeline import Pipeline, RawMessage
from gateway.ingest.router import Router
from gateway.metrics import Metrics
from gateway.storage.store import Store

log = logging.getLogger(__name__)

SUBSCRIBE_CHUNK = 500
# A redelivered message can only be one of the last `in-flight window` messages committed
# before the connection broke; the broker's packet ids cycle through 65535 values, so a row
# older than this window with the same id belongs to an earlier, acknowledged message.
DEDUP_WINDOW = 30000


class IngestService:
    """Receive, decode, commit, acknowledge."""

    def __init__(self, mqtt_config: MqttConfig, router: Router, pipeline: Pipeline,
                 store: Store, metrics: Metrics, *, batch_max: int = 1000) -> None:
        self.cfg = mqtt_config
        self.router = router
        self.pipeline = pipeline
        self.store = store
        self.metrics = metrics
        self.batch_max = batch_max
        self.client_id = mqtt_config.client_id
        self._queue: deque[tuple[int, RawMessage]] = deque()
        self._generation = 0
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self.connected = False
        self.db_ok = True
        self.last_commit_ms = 0
        self.committed_messages = 0
        self._seq = 0
        self._min_dup_seq = 0
        self.client = self._make_client()

    # --- MQTT -----------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        v5 = self.cfg.protocol == "5"
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                             clean_session=None if v5 else False, manual_ack=True)
        if self.cfg.username:
            client.username_pw_set(self.cfg.username, secret(self.cfg.password))
        if self.cfg.tls:
            client.tls_set(ca_certs=self.cfg.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.cfg.session_expiry_seconds
        props.ReceiveMaximum = self.cfg.receive_maximum
        return props

    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any,
                    _props: Any) -> None:
        if reason.is_failure:
            log.error("MQTT connection refused by %s:%s: %s", self.cfg.host, self.cfg.port,
                      reason)
            return
        # Messages queued from the previous connection will be redelivered by the broker;
        # processing them twice would only cost work, so drop them here.
        self._generation += 1
        self._min_dup_seq = self._seq - DEDUP_WINDOW
        self.connected = True
        self.metrics.mqtt_connected.set(1)
        log.info("MQTT connected to %s:%s (session present: %s)", self.cfg.host, self.cfg.port,
                 getattr(flags, "session_present", "?"))
        prefix = f"$share/{self.cfg.shared_group}/" if self.cfg.shared_group else ""
        topics = self.router.topics()
        for i in range(0, len(topics), SUBSCRIBE_CHUNK):
            opts: Any = SubscribeOptions(qos=1) if self.cfg.protocol == "5" else 1
            client.subscribe([(prefix + t, opts) for t in topics[i:i + SUBSCRIBE_CHUNK]])
        log.info("subscribed to %d device topics", len(topics))

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                       _props: Any) -> None:
        self.connected = False
        self.metrics.mqtt_connected.set(0)
        if not self._stop.is_set():
            log.warning("MQTT connection lost (%s); reconnecting with back-off 1-30 s", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # Hot path: keep it to one append.
        self._queue.append((self._generation, RawMessage(
            msg.topic, msg.payload, msg.mid, msg.qos, bool(msg.dup), int(time.time() * 1000))))

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (in the background, retrying) and start the writer."""
        self._seq = self.store.last_seq(self.client_id)
        self._min_dup_seq = self._seq - DEDUP_WINDOW
        self.pipeline.last_battery.update(self.store.battery_levels())
        self._writer = threading.Thread(target=self._write_loop, name="tillsyn-writer",
                                        daemon=True)
        self._writer.start()
        if self.cfg.protocol == "5":
            self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive,
                                      clean_start=False, properties=self._connect_properties())
        else:
            self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive)
        self.client.loop_start()

    def stop(self) -> None:
        """Finish the batch in hand, disconnect; the broker keeps what was not acknowledged."""
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout=30)
        self.client.disconnect()
        self.client.loop_stop()

    # --- writer ---------------------------------------------------------------------------

    def _take(self) -> list[tuple[int, RawMessage]]:
        q = self._queue
        batch: list[tuple[int, RawMessage]] = []
        while q and len(batch) < self.batch_max:
            batch.append(q.popleft())
        return batch

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            self.metrics.queue_depth.set(len(self._queue))
            if not batch:
                time.sleep(0.005)
                continue
            generation = self._generation
            current = [m for g, m in batch if g == generation]
            if current:
                self._commit(current, generation)

    def _commit(self, batch: list[RawMessage], generation: int) -> None:
        digests = [m.digest() for m in batch]
        dup_candidates = [(m.mid, d) for m, d in zip(batch, digests, strict=True) if m.dup]
        fresh: list[RawMessage] = []
        inflight: list[tuple[int, str, int]] = []
        redelivered: set[int] = set()
        seen_here: set[tuple[int, str]] = set()
        while True:
            try:
                redelivered = self.store.redelivered(self.client_id, dup_candidates,
                                                     self._min_dup_seq)
                break
            except Exception as exc:  # database down: wait, never ack
                self._db_down(exc)
                if self._stop.is_set():
                    return
        seq = self._seq
        for m, d in zip(batch, digests, strict=True):
            if (m.dup and m.mid in redelivered) or (m.mid, d) in seen_here:
                continue
            seen_here.add((m.mid, d))
            seq += 1
            fresh.append(m)
            inflight.append((m.mid, d, seq))
        rows = self.pipeline.process(fresh)
        rows.counters.redeliveries = len(batch) - len(fresh)
        while True:
            try:
                self.store.commit_batch(self.client_id, rows, inflight)
                break
            except StorageError as exc:
                self._db_down(exc)
                if self._stop.is_set():
                    return
        self._seq = seq
        if not self.db_ok:
            log.warning("database reachable again; ingest resumed")
        self.db_ok = True
        self.metrics.db_ok.set(1)
        now = int(time.time() * 1000)
        self.last_commit_ms = now
        self.committed_messages += len(batch)
        self.metrics.ingest_lag.set((now - batch[0].received_ms) / 1000)
        self.metrics.add(rows.counters)
        if generation == self._generation:
            for m in batch:
                if m.qos > 0:
                    self.client.ack(m.mid, m.qos)

    def _db_down(self, exc: Exception) -> None:
        if self.db_ok:
            log.error("database commit failed, holding acknowledgements and retrying: %s", exc)
        self.db_ok = False
        self.metrics.db_ok.set(0)
        self.metrics.commit_failures.inc()
        self._stop.wait(1.0)
