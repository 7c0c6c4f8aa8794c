"""Load and listeners for tests under load: a steady publisher of unique motion events
(the sequence number is in the device time, so lost and doubled messages are counted
exactly) and a staff client following every alert topic."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from sqlalchemy import select

from gateway.storage.schema import observations
from gateway.storage.store import Store
from tests.homes import SITE
from tests.support import wait_for

MOTION_TOPIC = f"tillsyn/v1/{SITE}/bed-0/event"


class Load:
    """Publishes unique motion events at a steady rate on its own thread (paho, QoS 1,
    reconnecting by itself); records which the broker acknowledged."""

    def __init__(self, url: str, client_id: str, rate: float = 200.0,
                 topics: list[str] | None = None) -> None:
        host, port = url.split("://", 1)[1].rsplit(":", 1)
        self.topics = topics or [MOTION_TOPIC]
        self.devices = [t.split("/")[-2] for t in self.topics]
        self.base = int(time.time() * 1000) - 120_000
        self.rate = rate
        self.sent = 0
        self.acked: set[int] = set()
        self._mids: dict[int, int] = {}
        self._early: set[int] = set()  # acknowledged before publish() returned its mid
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5)
        self.c.max_inflight_messages_set(10)  # at most 10 could be resent after a restart
        self.c.max_queued_messages_set(0)
        self.c.reconnect_delay_set(0.2, 2)
        self.c.on_publish = self._on_publish
        self.c.connect(host, int(port))
        self.c.loop_start()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _on_publish(self, c: Any, u: Any, mid: int, rc: Any, p: Any) -> None:
        with self._lock:
            seq = self._mids.pop(mid, None)
            if seq is not None:
                self.acked.add(seq)
            else:
                self._early.add(mid)

    def _run(self) -> None:
        while not self._stop.is_set():
            body = json.dumps({"ts": self.base + self.sent, "kind": "motion", "value": True})
            # Not under self._lock: paho calls on_publish holding its own lock (deadlock).
            info = self.c.publish(self.topics[self.sent % len(self.topics)], body, qos=1)
            with self._lock:
                if info.mid in self._early:
                    self._early.discard(info.mid)
                    self.acked.add(self.sent)
                else:
                    self._mids[info.mid] = self.sent
            self.sent += 1
            time.sleep(1 / self.rate)

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop publishing and wait until the broker acknowledged everything sent."""
        self._stop.set()
        self._thread.join()
        wait_for(lambda: len(self.acked) == self.sent, 60, what="publisher acks")
        self.c.disconnect()
        self.c.loop_stop()

    def stored(self, store: Store) -> list[int]:
        """Sequence numbers of the stored load rows (with repeats, if any were doubled)."""
        with store.engine.connect() as conn:
            rows = conn.execute(select(observations.c.ts_ms).where(
                observations.c.device_id.in_(self.devices), observations.c.kind == "motion")
            ).scalars().all()
        return [int(ts) - self.base for ts in rows]


class Nurse:
    """A staff client subscribed to every alert topic of the site."""

    def __init__(self, url: str) -> None:
        host, port = url.split("://", 1)[1].rsplit(":", 1)
        self.messages: list[dict[str, Any]] = []
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="nurse",
                             protocol=mqtt.MQTTv5)
        self.c.on_message = lambda c, u, m: self.messages.append(json.loads(m.payload))
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe(f"tillsyn/v1/{SITE}/alerts/#", 1)
        self.c.connect(host, int(port))
        self.c.loop_start()

    def transitions(self, alert_id: int | None = None) -> list[str]:
        return [m["transition"] for m in list(self.messages)
                if alert_id is None or m["alert"]["id"] == alert_id]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()
