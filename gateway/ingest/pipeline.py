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

from gateway.errors import DecodeError
from gateway.ingest.router import Router, consent_kinds
from gateway.kinds import TECHNICAL_KINDS
from gateway.profiles.decoders import DECODERS
from gateway.profiles.types import Decoded

NONE: frozenset[str] = frozenset()
_LINK_KEYS = ("battery", "linkquality", "availability")

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
        return hashlib.blake2b(b"%s\0%s" % (self.topic.encode("utf-8", "surrogateescape"),
                                             self.payload), digest_size=16).hexdigest()


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
            where = None if route is None else route.place
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
        # The receiver's hot path (docs/performance.md): no per-message copies of what the
        # decoder already made fresh for this message (its readings and status).
        route = self.router.lookup(msg.topic)
        if route is None:
            return self._dead(msg, "unknown device: topic matches no registered device")
        where = route.place
        if len(msg.payload) > self.max_payload_bytes:
            return self._dead(msg, f"payload of {len(msg.payload)} bytes exceeds the limit of "
                                   f"{self.max_payload_bytes}", where, seen=False)
        try:
            decoded: Decoded = DECODERS[route.decoder](msg.payload, route.options)
        except DecodeError as exc:
            log.info("dead letter on %s: %s", msg.topic, exc)
            return self._dead(msg, str(exc), where)
        received = msg.received_ms
        # The message's own time, for readings derived from its status (battery) and for
        # the detectors' device link: its device time if trusted, else receive time.
        msg_ts_ms = self._trusted(decoded.ts, received)[0]
        status = decoded.status  # the decoder's own, made for this message
        battery_read = False
        readings: list[tuple[str, Any, int, bool]] = []
        for kind, value, ts in decoded.readings:
            readings.append((kind, value, *self._trusted(ts, received)))
            if kind == "availability":
                status["availability"] = value
            elif kind == "battery":
                battery_read = True
        battery = status.get("battery")
        dead: tuple[str, bytes, int, str, bool] | None = None
        if decoded.problems:
            dead = self._dead_letter(msg, "; ".join(decoded.problems),
                                     partial=bool(readings))
        return Prepared(
            msg.mid, msg.qos, msg.dup, received, msg.digest(), where, tuple(readings),
            bool(decoded.ignored) and not readings,
            None if battery is None else float(battery), battery_read, status, msg_ts_ms, dead)

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
        append = observations.append
        links = rows.status
        consent = self.consent
        last_battery = self.last_battery
        stored = overrides = ignored_n = filtered = 0
        for (_mid, _qos, _dup, received_ms, _digest, route, readings, ignored, battery,
             battery_read, status, msg_ts_ms, dead) in prepared:
            if dead is not None:
                topic, payload, size, reason, partial = dead
                c.dead_letters += 1
                rows.dead_letters.append({
                    "topic": topic, "payload": payload, "payload_size": size, "reason": reason,
                    "device_id": None if route is None else route[1], "partial": partial,
                    "received_ms": received_ms})
            if route is None:
                c.unknown_device += 1
                continue
            resident_id, device_id, room = route
            ignored_n += ignored
            allowed = consent.get(resident_id, NONE)
            for kind, value, ts_ms, overridden in readings:
                if kind not in allowed and kind not in TECHNICAL_KINDS:
                    filtered += 1  # consent in force now decides: no-one's data is
                    continue  # stored after its consent was withdrawn
                overrides += overridden
                append({"resident_id": resident_id, "device_id": device_id, "kind": kind,
                        "value": value, "ts_ms": ts_ms, "received_ms": received_ms,
                        "room": room, "clock_override": overridden})
                stored += 1
            if battery is not None and battery_read:
                last_battery[device_id] = battery  # stored as a reading above
            elif battery is not None:
                # Stored only when it changed by a point or more since the last stored level.
                previous = last_battery.get(device_id)
                if previous is None or abs(previous - battery) >= 1.0:
                    append({"resident_id": resident_id, "device_id": device_id,
                            "kind": "battery", "value": battery, "ts_ms": msg_ts_ms,
                            "received_ms": received_ms, "room": room,
                            "clock_override": False})
                    stored += 1
                    # Compare with the last *stored* level, so slow drift is still recorded.
                    last_battery[device_id] = battery
            if status is not None:
                # Device link entry: receive time for the link table, event time for the
                # detectors; the newest status values of the batch win.
                entry = links.get(device_id)
                if entry is None:
                    entry = links[device_id] = {"device_id": device_id,
                                                "resident_id": resident_id,
                                                "last_seen_ms": received_ms,
                                                "event_ms": msg_ts_ms}
                else:
                    if received_ms > entry["last_seen_ms"]:
                        entry["last_seen_ms"] = received_ms
                    if msg_ts_ms > entry["event_ms"]:
                        entry["event_ms"] = msg_ts_ms
                if status:
                    for key in _LINK_KEYS:
                        if key in status:
                            entry[key] = status[key]
        c.messages = len(prepared)
        c.observations = stored
        c.clock_overrides = overrides
        c.ignored = ignored_n
        c.consent_filtered = filtered
        return rows
