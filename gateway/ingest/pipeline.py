"""Turn a batch of raw MQTT messages into rows to commit (pure apart from the clock).

Decoding, the consent filter, the device-clock rule and battery change detection live
here; the MQTT client and the database are elsewhere, so this is tested without either.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway.config.registry import TECHNICAL_KINDS
from gateway.errors import DecodeError
from gateway.ingest.router import Router
from gateway.profiles.decoders import DECODERS
from gateway.profiles.types import Decoded

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One message as it came from the broker."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    dup: bool
    received_ms: int

    def digest(self) -> str:
        """Content digest used, with the packet id, to recognise a redelivery."""
        h = hashlib.blake2b(self.topic.encode("utf-8", "surrogateescape"), digest_size=16)
        h.update(b"\0")
        h.update(self.payload)
        return h.hexdigest()


@dataclass
class Counters:
    """What happened to the messages of one batch (fed to /metrics)."""

    messages: int = 0
    observations: int = 0
    dead_letters: int = 0
    unknown_device: int = 0
    consent_filtered: int = 0
    ignored: int = 0
    clock_overrides: int = 0
    redeliveries: int = 0


@dataclass
class BatchRows:
    """Rows to write in one transaction."""

    observations: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)


class Pipeline:
    """Decode messages against the registry."""

    def __init__(self, router: Router, *, max_payload_bytes: int = 262_144,
                 dead_letter_max_bytes: int = 4096,
                 max_ahead: timedelta = timedelta(minutes=5),
                 max_behind: timedelta = timedelta(days=7)) -> None:
        self.router = router
        self.max_payload_bytes = max_payload_bytes
        self.dead_letter_max_bytes = dead_letter_max_bytes
        self.max_ahead_ms = int(max_ahead.total_seconds() * 1000)
        self.max_behind_ms = int(max_behind.total_seconds() * 1000)
        self.last_battery: dict[str, float] = {}

    def process(self, messages: list[RawMessage]) -> BatchRows:
        """Decode every message; never raises for a bad message."""
        rows = BatchRows()
        for msg in messages:
            rows.counters.messages += 1
            try:
                self._one(msg, rows)
            except Exception as exc:  # a decoder bug must not stop ingest
                log.exception("internal error decoding message on %s", msg.topic)
                self._dead(rows, msg, f"internal decoder error: {type(exc).__name__}", None,
                           partial=False)
        return rows

    def _dead(self, rows: BatchRows, msg: RawMessage, reason: str, device_id: str | None,
              *, partial: bool) -> None:
        rows.counters.dead_letters += 1
        rows.dead_letters.append({
            "topic": msg.topic[:1024], "payload": msg.payload[:self.dead_letter_max_bytes],
            "payload_size": len(msg.payload), "reason": reason[:1000],
            "device_id": device_id, "partial": partial, "received_ms": msg.received_ms,
        })

    def _one(self, msg: RawMessage, rows: BatchRows) -> None:
        route = self.router.lookup(msg.topic)
        if route is None:
            rows.counters.unknown_device += 1
            self._dead(rows, msg, "unknown device: topic matches no registered device", None,
                       partial=False)
            return
        if len(msg.payload) > self.max_payload_bytes:
            self._dead(rows, msg, f"payload of {len(msg.payload)} bytes exceeds the limit of "
                       f"{self.max_payload_bytes}", route.device_id, partial=False)
            return
        try:
            decoded: Decoded = DECODERS[route.decoder](msg.payload, route.options)
        except DecodeError as exc:
            log.info("dead letter on %s: %s", msg.topic, exc)
            self._dead(rows, msg, str(exc), route.device_id, partial=False)
            self._seen(rows, route.device_id, route.resident_id, msg, {})
            return
        if decoded.ignored and not decoded.readings:
            rows.counters.ignored += 1
        stored = 0
        # The message's own time, for readings derived from its status (battery) and for
        # the detectors' device link: its device time if trusted, else receive time.
        msg_ts_ms = self._trusted(decoded.ts, msg.received_ms)[0]
        for reading in decoded.readings:
            if reading.kind not in TECHNICAL_KINDS and reading.kind not in route.consent:
                rows.counters.consent_filtered += 1
                continue
            ts_ms, overridden = self._trusted(reading.ts, msg.received_ms)
            rows.counters.clock_overrides += overridden
            rows.observations.append({
                "resident_id": route.resident_id, "device_id": route.device_id,
                "kind": reading.kind, "value": reading.value, "ts_ms": ts_ms,
                "received_ms": msg.received_ms, "room": route.room,
                "clock_override": overridden,
            })
            stored += 1
        battery = decoded.status.get("battery")
        if battery is not None and any(r.kind == "battery" for r in decoded.readings):
            self.last_battery[route.device_id] = float(battery)  # stored as a reading above
        elif battery is not None:
            # Stored only when it changed by a point or more since the last stored level.
            previous = self.last_battery.get(route.device_id)
            if previous is None or abs(previous - float(battery)) >= 1.0:
                rows.observations.append({
                    "resident_id": route.resident_id, "device_id": route.device_id,
                    "kind": "battery", "value": float(battery), "ts_ms": msg_ts_ms,
                    "received_ms": msg.received_ms, "room": route.room,
                    "clock_override": False,
                })
                stored += 1
                # Compare with the last *stored* level, so slow drift is still recorded.
                self.last_battery[route.device_id] = float(battery)
        rows.counters.observations += stored
        if decoded.problems:
            self._dead(rows, msg, "; ".join(decoded.problems), route.device_id,
                       partial=bool(decoded.readings))
        status = dict(decoded.status)
        for reading in decoded.readings:
            if reading.kind == "availability":
                status["availability"] = reading.value
        self._seen(rows, route.device_id, route.resident_id, msg, status, msg_ts_ms)

    def _trusted(self, ts: datetime | None, received_ms: int) -> tuple[int, bool]:
        if ts is None:
            return received_ms, False
        ts_ms = int(ts.timestamp() * 1000)
        if ts_ms - received_ms > self.max_ahead_ms or received_ms - ts_ms > self.max_behind_ms:
            return received_ms, True
        return ts_ms, False

    @staticmethod
    def _seen(rows: BatchRows, device_id: str, resident_id: str, msg: RawMessage,
              status: dict[str, Any], event_ms: int | None = None) -> None:
        """Device link entry: receive time for the link table, event time for detectors."""
        entry = rows.status.setdefault(device_id, {"device_id": device_id,
                                                   "resident_id": resident_id})
        entry["last_seen_ms"] = max(entry.get("last_seen_ms", 0), msg.received_ms)
        entry["event_ms"] = max(entry.get("event_ms", 0),
                                msg.received_ms if event_ms is None else event_ms)
        for key in ("battery", "linkquality", "availability"):
            if key in status:
                entry[key] = status[key]
