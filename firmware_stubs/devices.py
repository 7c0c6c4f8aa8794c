"""Device stubs: each returns the (topic suffix, payload) a real device of its family sends.

The payload shapes follow the real samples in tests/fixtures/payloads (zigbee2mqtt with its
`last_seen: ISO_8601` option, OwnTracks, ChirpStack v4 with Milesight frames, native).
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Message = tuple[str, bytes]


def _iso(ts_ms: int) -> str:
    """zigbee2mqtt's `last_seen: ISO_8601` form (JavaScript toISOString: milliseconds)."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass
class Stub:
    """Base: a device at a source topic."""

    source: str
    battery: float = 100.0
    linkquality: int = 120

    def event(self, ts_ms: int, kind: str, value: Any) -> Message:
        """The message a real device sends for an observation."""
        raise NotImplementedError

    def availability(self, online: bool) -> Message:
        """zigbee2mqtt availability (JSON form, retained in real life)."""
        return f"{self.source}/availability", _json({"state": "online" if online else "offline"})


def _z2m_checkin(stub: Stub, ts_ms: int, **cached: Any) -> Message:
    """The periodic attribute report (about hourly for Xiaomi/Aqara end devices): zigbee2mqtt
    publishes battery, voltage and link quality, plus the `cached` state it keeps."""
    return stub.source, _json({"battery": round(stub.battery), "voltage": 3005,
                               "linkquality": stub.linkquality, **cached,
                               "last_seen": _iso(ts_ms)})


class Z2MOccupancy(Stub):
    """Aqara RTCGQ11LM-style motion sensor. zigbee2mqtt caches `occupancy` (its default
    `cache_state: true`), so the periodic report repeats the last value: a `true` when the
    report falls inside the 90 s occupancy window, else `false`."""

    occupied = False

    def event(self, ts_ms: int, kind: str, value: Any) -> Message:
        if kind == "checkin":
            return _z2m_checkin(self, ts_ms, occupancy=self.occupied)
        self.occupied = bool(value)
        return self.source, _json({"battery": round(self.battery), "illuminance": 12,
                                   "linkquality": self.linkquality, "occupancy": bool(value),
                                   "voltage": 3005, "last_seen": _iso(ts_ms)})


class Z2MContact(Stub):
    """Aqara MCCGQ11LM-style contact: `contact` true = closed. zigbee2mqtt caches the
    state, so the periodic report carries the current `contact` too."""

    closed = True

    def event(self, ts_ms: int, kind: str, value: Any) -> Message:
        if kind == "checkin":
            return _z2m_checkin(self, ts_ms, contact=self.closed)
        closed = value == "closed" if kind == "contact" else bool(value)
        self.closed = closed
        return self.source, _json({"battery": round(self.battery), "contact": closed,
                                   "linkquality": self.linkquality, "voltage": 3025,
                                   "last_seen": _iso(ts_ms)})


class Z2MLock(Stub):
    """Yale YRD226-style lock; method keypad is action_source 0, app 1, key 2, rfid 3.

    `value["format"]` picks how the lock converter reports the operation, as real ones do:
    `source` (default: `action_source` number, `action` null, Yale YRD226), `action`
    (`"action": "keypad_unlock"` with `action_user` only) or `source_name`
    (`"action_source_name": "keypad"`). zigbee2mqtt caches the state, so the periodic
    report repeats the last lock state, source and user.
    """

    SOURCES = {"keypad": 0, "app": 1, "key": 2, "rfid": 3}
    NAMES = {"keypad": "keypad", "app": "rf", "key": "manual", "rfid": "rfid"}
    PREFIX = {"keypad": "keypad_", "key": "manual_", "rfid": "rfid_", "app": ""}

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.cached: dict[str, Any] = {}

    def event(self, ts_ms: int, kind: str, value: Any) -> Message:
        if kind == "checkin":
            return _z2m_checkin(self, ts_ms, **self.cached)
        state = value["state"]
        method = value.get("method") or "key"
        fmt = value.get("format", "source")
        verb = "lock" if state == "locked" else "unlock"
        body: dict[str, Any] = {
            "lock_state": state, "state": "LOCK" if state == "locked" else "UNLOCK",
            "action_user": value.get("user") or 0}
        if method == "auto":
            body.update(action="auto_lock", action_source=None, action_source_name=None)
        elif fmt == "action":
            body.update(action=f"{self.PREFIX.get(method, '')}{verb}")
        elif fmt == "source_name":
            body.update(action=verb, action_source_name=self.NAMES.get(method, "manual"))
        else:
            body.update(action=None, action_source=self.SOURCES.get(method, 2),
                        action_source_name=None, action_source_user=None)
        self.cached = {k: v for k, v in body.items() if k != "action"}
        return self.source, _json({"battery": round(self.battery),
                                   "linkquality": self.linkquality, **body,
                                   "last_seen": _iso(ts_ms)})


class OwnTracks(Stub):
    """OwnTracks app / position alarm."""

    def event(self, ts_ms: int, kind: str, value: Any) -> Message:
        if kind == "checkin":  # a periodic ping from home (OwnTracks t: "p")
            kind, value = "position", {"lat": 55.7047, "lon": 13.191, "acc": 10}
        if kind == "geofence":
            return f"{self.source}/event", _json({
                "_type": "transition", "event": value["event"], "desc": value["region"],
                "lat": 55.7047, "lon": 13.191, "acc": 10, "tid": "pa", "t": "c",
                "tst": ts_ms // 1000, "wtst": 1700000000})
        return self.source, _json({"_type": "location", "lat": value["lat"],
                                   "lon": value["lon"], "acc": value.get("acc") or 10,
                                   "batt": round(self.battery), "tid": "pa", "t": "p",
                                   "tst": ts_ms // 1000, "conn": "m"})


class ChirpStackMilesight(Stub):
    """ChirpStack v4 uplink of a Milesight WS202 (PIR) or WS301 (door contact)."""

    model: str = "ws202"

    def event(self, ts_ms: int, kind: str, value: Any) -> Message:
        frame = bytes([0x01, 0x75, round(self.battery)])
        if kind == "checkin":
            pass  # the periodic report: battery only
        elif kind == "motion":
            frame += bytes([0x03, 0x00, 1 if value else 0, 0x04, 0x00, 0])
        else:
            frame += bytes([0x03, 0x00, 1 if value == "open" else 0, 0x04, 0x00, 0])
        dev_eui = self.source.rsplit("/", 1)[1]
        return f"{self.source}/event/up", _json({
            "deduplicationId": str(uuid.uuid4()),
            "time": datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(),
            "deviceInfo": {"tenantName": "Tillsyn", "applicationName": "homes",
                           "deviceName": dev_eui, "devEui": dev_eui},
            "devAddr": "00189440", "fPort": 85,
            "data": base64.b64encode(frame).decode(), "fCnt": ts_ms // 1000 % 65536})


class Native(Stub):
    """Tillsyn firmware: tillsyn/v1/<site>/<device>/<channel>."""

    def event(self, ts_ms: int, kind: str, value: Any) -> Message:
        channel = "heartbeat" if kind == "heartbeat" else "event"
        body: dict[str, Any] = {"ts": ts_ms, "kind": kind, "value": value}
        if kind == "heartbeat":
            body["battery"] = round(self.battery)
        return f"{self.source}/{channel}", _json(body)


STUBS: dict[str, type[Stub]] = {
    "zigbee2mqtt.occupancy": Z2MOccupancy,
    "zigbee2mqtt.contact": Z2MContact,
    "zigbee2mqtt.bed_mat": Z2MContact,
    "zigbee2mqtt.lock": Z2MLock,
    "owntracks.location": OwnTracks,
    "chirpstack.milesight-ws202": ChirpStackMilesight,
    "chirpstack.milesight-ws301": ChirpStackMilesight,
    "tillsyn.native": Native,
}


def stub_for(profile: str, source: str) -> Stub:
    """The stub that speaks for a registered device."""
    cls = STUBS.get(profile)
    if cls is None:
        raise KeyError(f"no firmware stub for profile {profile!r}")
    stub = cls(source)
    if isinstance(stub, ChirpStackMilesight):
        stub.model = profile.rsplit("-", 1)[1]
    return stub
