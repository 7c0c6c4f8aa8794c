"""Turn a batch of raw MQTT messages into rows to commit (pure apart from the clock).

Decoding, the consent filter, the device-clock rule and battery change detection live
here; the MQTT client and the database are elsewhere, so this is tested without either.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from gateway.config.registry import TECHNICAL_KINDS
from gateway.errors import DecodeError
from gateway.ingest.router import Router, consent_kinds
from gateway.profiles.decoders import DECODERS
from gateway.profiles.types import Decoded

NONE: frozenset[str] = frozenset()

log = logging.getLogger(__name__)


class RawMessage(NamedTuple):
    """One message as it came from the broker (a tuple: made for every message)."""

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


class Prepared(NamedTuple):
    """One message decoded against the registry, before the stateful rules (battery
    changes, device status, counters) are applied. Made wherever the message is received
    (the receiver process, normally) and small to send between processes."""

    mid: int
    qos: int
    dup: bool
    received_ms: int
    digest: str
    route: tuple[str, str, str | None] | None  # resident, device, room; None = unknown device
    readings: tuple[tuple[str, Any, int, bool], ...]  # kind, value, ts_ms, clock overridden
    ignored: bool
    battery: float | None  # battery level in the message's status, if any
    battery_read: bool  # the battery level is one of the readings already
    status: dict[str, Any] | None  # battery, linkquality, availability for the device link
    msg_ts_ms: int
    dead: tuple[str, bytes, int, str, bool] | None  # topic, payload, size, reason, partial


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
    """Decode messages against the registry.

    Two halves: `prepare` is stateless (registry lookup, payload limit, decoding, the
    device-clock rule) and may run in another process; `assemble` applies the consent in
    force (changed live through the API), what needs the history of earlier messages
    (battery changes, device status), and builds the rows of one transaction. `process`
    does both.
    """

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
        # Consent in force per resident (the writer's copy: changed live by set_consent).
        self.consent: dict[str, frozenset[str]] = dict(router.consent)

    def set_consent(self, resident_id: str, kinds: Iterable[str]) -> None:
        """Consent changed: it applies from the next batch assembled."""
        self.consent[resident_id] = consent_kinds(kinds)

    def process(self, messages: list[RawMessage]) -> BatchRows:
        """Decode every message; never raises for a bad message."""
        return self.assemble([self.prepare(m) for m in messages])

    # --- stateless half -------------------------------------------------------------------

    def prepare(self, msg: RawMessage) -> Prepared:
        """Decode one message; never raises for a bad message."""
        try:
            return self._prepare(msg)
        except Exception as exc:  # a decoder bug must not stop ingest
            log.exception("internal error decoding message on %s", msg.topic)
            route = self.router.lookup(msg.topic)
            where = None if route is None else (route.resident_id, route.device_id, route.room)
            return self._dead(msg, f"internal decoder error: {type(exc).__name__}", where,
                              seen=False)

    def _dead(self, msg: RawMessage, reason: str,
              route: tuple[str, str, str | None] | None = None, *, seen: bool = True) -> Prepared:
        """A message that gives no readings. `seen`: it still counts as a sign of life of
        its (registered) device."""
        return Prepared(msg.mid, msg.qos, msg.dup, msg.received_ms, msg.digest(), route, (),
                        False, None, False, {} if seen and route is not None else None,
                        msg.received_ms, self._dead_letter(msg, reason, partial=False))

    def _dead_letter(self, msg: RawMessage, reason: str, *,
                     partial: bool) -> tuple[str, bytes, int, str, bool]:
        return (msg.topic[:1024], msg.payload[:self.dead_letter_max_bytes], len(msg.payload),
                reason[:1000], partial)

    def _prepare(self, msg: RawMessage) -> Prepared:
        route = self.router.lookup(msg.topic)
        if route is None:
            return self._dead(msg, "unknown device: topic matches no registered device")
        where = (route.resident_id, route.device_id, route.room)
        if len(msg.payload) > self.max_payload_bytes:
            return self._dead(msg, f"payload of {len(msg.payload)} bytes exceeds the limit of "
                                   f"{self.max_payload_bytes}", where, seen=False)
        try:
            decoded: Decoded = DECODERS[route.decoder](msg.payload, route.options)
        except DecodeError as exc:
            log.info("dead letter on %s: %s", msg.topic, exc)
            return self._dead(msg, str(exc), where)
        # The message's own time, for readings derived from its status (battery) and for
        # the detectors' device link: its device time if trusted, else receive time.
        msg_ts_ms = self._trusted(decoded.ts, msg.received_ms)[0]
        readings: list[tuple[str, Any, int, bool]] = []
        for reading in decoded.readings:
            ts_ms, overridden = self._trusted(reading.ts, msg.received_ms)
            readings.append((reading.kind, reading.value, ts_ms, overridden))
        battery = decoded.status.get("battery")
        status = dict(decoded.status)
        for reading in decoded.readings:
            if reading.kind == "availability":
                status["availability"] = reading.value
        dead: tuple[str, bytes, int, str, bool] | None = None
        if decoded.problems:
            dead = self._dead_letter(msg, "; ".join(decoded.problems),
                                     partial=bool(decoded.readings))
        return Prepared(
            msg.mid, msg.qos, msg.dup, msg.received_ms, msg.digest(), where, tuple(readings),
            bool(decoded.ignored) and not decoded.readings,
            None if battery is None else float(battery),
            any(r.kind == "battery" for r in decoded.readings), status, msg_ts_ms, dead)

    def _trusted(self, ts: datetime | None, received_ms: int) -> tuple[int, bool]:
        if ts is None:
            return received_ms, False
        ts_ms = int(ts.timestamp() * 1000)
        if ts_ms - received_ms > self.max_ahead_ms or received_ms - ts_ms > self.max_behind_ms:
            return received_ms, True
        return ts_ms, False

    # --- stateful half --------------------------------------------------------------------

    def assemble(self, prepared: list[Prepared]) -> BatchRows:
        """Rows of one transaction from prepared messages, in order."""
        rows = BatchRows()
        c = rows.counters
        observations = rows.observations
        consent = self.consent
        for p in prepared:
            c.messages += 1
            route = p.route
            if p.dead is not None:
                topic, payload, size, reason, partial = p.dead
                c.dead_letters += 1
                rows.dead_letters.append({
                    "topic": topic, "payload": payload, "payload_size": size, "reason": reason,
                    "device_id": None if route is None else route[1], "partial": partial,
                    "received_ms": p.received_ms})
            if route is None:
                c.unknown_device += 1
                continue
            resident_id, device_id, room = route
            c.ignored += p.ignored
            allowed = consent.get(resident_id, NONE)
            for kind, value, ts_ms, overridden in p.readings:
                if kind not in allowed and kind not in TECHNICAL_KINDS:
                    c.consent_filtered += 1  # consent in force now decides: no-one's data
                    continue  # is stored after its consent was withdrawn
                c.clock_overrides += overridden
                observations.append({
                    "resident_id": resident_id, "device_id": device_id, "kind": kind,
                    "value": value, "ts_ms": ts_ms, "received_ms": p.received_ms, "room": room,
                    "clock_override": overridden})
                c.observations += 1
            battery = p.battery
            if battery is not None and p.battery_read:
                self.last_battery[device_id] = battery  # stored as a reading above
            elif battery is not None:
                # Stored only when it changed by a point or more since the last stored level.
                previous = self.last_battery.get(device_id)
                if previous is None or abs(previous - battery) >= 1.0:
                    observations.append({
                        "resident_id": resident_id, "device_id": device_id, "kind": "battery",
                        "value": battery, "ts_ms": p.msg_ts_ms, "received_ms": p.received_ms,
                        "room": room, "clock_override": False})
                    c.observations += 1
                    # Compare with the last *stored* level, so slow drift is still recorded.
                    self.last_battery[device_id] = battery
            if p.status is not None:
                self._seen(rows, device_id, resident_id, p.received_ms, p.status, p.msg_ts_ms)
        return rows

    @staticmethod
    def _seen(rows: BatchRows, device_id: str, resident_id: str, received_ms: int,
              status: dict[str, Any], event_ms: int) -> None:
        """Device link entry: receive time for the link table, event time for detectors."""
        entry = rows.status.get(device_id)
        if entry is None:
            entry = rows.status[device_id] = {"device_id": device_id,
                                              "resident_id": resident_id,
                                              "last_seen_ms": 0, "event_ms": 0}
        entry["last_seen_ms"] = max(entry["last_seen_ms"], received_ms)
        entry["event_ms"] = max(entry["event_ms"], event_ms)
        for key in ("battery", "linkquality", "availability"):
            if key in status:
                entry[key] = status[key]
