"""The one library of named decoders that device profiles refer to.

A decoder is a pure function `(payload: bytes, options: dict) -> Decoded`. It raises
DecodeError when the message as a whole is unusable; a single bad field is reported in
`Decoded.problems` so the rest of the message is still kept (a sensor's occupancy must not
be lost because its battery field is malformed).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson

from gateway.errors import DecodeError
from gateway.kinds import OBSERVATION_KINDS
from gateway.profiles.lorawan_codecs import CODECS, readings_for
from gateway.profiles.types import Decoded, Reading
from gateway.timeutil import parse_ts

DecoderFn = Callable[[bytes, Mapping[str, Any]], Decoded]
_LONG_DIGITS = re.compile(rb"[0-9]{19}").search
DECODERS: dict[str, DecoderFn] = {}


def decoder(name: str) -> Callable[[DecoderFn], DecoderFn]:
    """Register a decoder under a name that profiles use."""

    def register(fn: DecoderFn) -> DecoderFn:
        DECODERS[name] = fn
        return fn

    return register


def load_json(payload: bytes) -> Any:
    """Parse JSON, converting every failure into a DecodeError with the reason.

    orjson parses the payloads that make up nearly all of the traffic (a seventh of the
    standard library's time, docs/performance.md), but the standard library decides:
    - whatever orjson refuses is parsed again by the standard library, which accepts NaN
      and lone surrogates, and words the error of a bad payload the way operators see it
      in the dead letters;
    - a payload with a run of 19 or more digits goes to the standard library at once:
      orjson turns an integer beyond 64 bits into a float, and 19 digits is the shortest
      such integer.
    So the result is always the standard library's (tests/test_pipeline.py checks this on
    generated payloads).
    """
    if not _LONG_DIGITS(payload):
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"payload is not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") \
            from None
    except RecursionError:
        raise DecodeError("invalid JSON: nested too deeply") from None


def _object(payload: bytes) -> dict[str, Any]:
    data = load_json(payload)
    if not isinstance(data, dict):
        raise DecodeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _number(data: Mapping[str, Any], key: str, problems: list[str]) -> float | None:
    if key not in data or data[key] is None:
        return None
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{key}: expected a number, got {type(value).__name__} {value!r}")
        return None
    return float(value)


def _bool(data: Mapping[str, Any], key: str, problems: list[str]) -> bool | None:
    if key not in data or data[key] is None:
        return None
    value = data[key]
    if not isinstance(value, bool):
        problems.append(f"{key}: expected true or false, got {value!r}")
        return None
    return value


def _battery_status(data: Mapping[str, Any], out: Decoded, field: str = "battery") -> None:
    battery = _number(data, field, out.problems)
    if battery is not None:
        if not 0 <= battery <= 100:
            out.problems.append(f"{field}: {battery} is not a percentage 0-100")
        else:
            out.status["battery"] = battery
    lqi = _number(data, "linkquality", out.problems)
    if lqi is not None:
        out.status["linkquality"] = int(lqi)


# --- zigbee2mqtt -------------------------------------------------------------------------


def _z2m_ts(data: Mapping[str, Any], out: Decoded) -> datetime | None:
    """zigbee2mqtt's optional `last_seen` (ISO 8601 or epoch ms, per its config)."""
    value = data.get("last_seen")
    if value is None:
        return None
    try:
        return parse_ts(value)
    except DecodeError as exc:
        out.problems.append(f"last_seen: {exc}")
        return None


LOCK_METHODS = ("keypad", "app", "key", "auto", "rfid", "fingerprint")
# zigbee-herdsman-converters `lock_operation_event`: `action_source` is the ZCL operation
# event source (0 keypad, 1 RF, 2 manual, 3 RFID) and `action_source_name` its name.
Z2M_LOCK_SOURCE = {0: "keypad", 1: "app", 2: "key", 3: "rfid"}
Z2M_LOCK_SOURCE_NAME = {"keypad": "keypad", "rf": "app", "manual": "key", "rfid": "rfid",
                        "fingerprint": "fingerprint", "auto": "auto"}
# Converters that report only the action name say the source in its prefix.
Z2M_LOCK_ACTION_PREFIX = (("keypad_", "keypad"), ("rfid_", "rfid"), ("manual_", "key"),
                          ("key_", "key"), ("rf_", "app"), ("auto_", "auto"),
                          ("fingerprint_", "fingerprint"))
Z2M_LOCK_ACTIONS = {
    "lock": "locked", "unlock": "unlocked", "auto_lock": "locked",
    "keypad_lock": "locked", "keypad_unlock": "unlocked", "manual_lock": "locked",
    "manual_unlock": "unlocked", "rfid_lock": "locked", "rfid_unlock": "unlocked",
    "one_touch_lock": "locked", "lock_failure_invalid_pin_or_id": None,
    "key_lock": "locked", "key_unlock": "unlocked", "schedule_lock": "locked",
    "schedule_unlock": "unlocked", "rf_lock": "locked", "rf_unlock": "unlocked",
    "fingerprint_unlock": "unlocked",
}


@decoder("z2m.occupancy")
def z2m_occupancy(payload: bytes, options: Mapping[str, Any]) -> Decoded:
    """zigbee2mqtt motion sensor state: `occupancy` true/false -> motion."""
    data = _object(payload)
    out = Decoded()
    out.ts = _z2m_ts(data, out)
    _battery_status(data, out)
    occ = _bool(data, "occupancy", out.problems)
    if occ is not None:
        out.readings.append(Reading(str(options.get("kind", "motion")), occ, out.ts))
    elif "occupancy" not in data:
        out.ignored = "no occupancy field"
    return out


@decoder("z2m.contact")
def z2m_contact(payload: bytes, options: Mapping[str, Any]) -> Decoded:
    """zigbee2mqtt contact sensor: `contact` true = closed, false = open (z2m docs).

    With option `as: bed` a pressure mat wired as a contact gives bed = occupied.
    """
    data = _object(payload)
    out = Decoded()
    out.ts = _z2m_ts(data, out)
    _battery_status(data, out)
    closed = _bool(data, "contact", out.problems)
    if closed is not None:
        if options.get("as") == "bed":
            out.readings.append(Reading("bed", closed, out.ts))
        else:
            out.readings.append(Reading("contact", "closed" if closed else "open", out.ts))
    elif "contact" not in data:
        out.ignored = "no contact field"
    return out


@decoder("z2m.vibration")
def z2m_vibration(payload: bytes, options: Mapping[str, Any]) -> Decoded:
    """Aqara vibration sensor used under a mattress: movement means someone is in bed.

    `action: vibration|tilt` or `vibration: true` -> bed occupied (true). The cleared states
    (`action: ""`, `vibration: false`) say only that movement stopped, not that the bed
    is empty, so they produce no observation.
    """
    data = _object(payload)
    out = Decoded()
    out.ts = _z2m_ts(data, out)
    _battery_status(data, out)
    action = data.get("action")
    if action is not None and not isinstance(action, str):
        out.problems.append(f"action: expected a string, got {action!r}")
        action = None
    vibration = _bool(data, "vibration", out.problems)
    if action in ("vibration", "tilt") or vibration is True:
        out.readings.append(Reading(str(options.get("kind", "bed")), True, out.ts))
    else:
        out.ignored = "movement cleared"
    return out


@decoder("z2m.action")
def z2m_action(payload: bytes, options: Mapping[str, Any]) -> Decoded:
    """zigbee2mqtt `<device>/action` sub-topic: a plain string such as `vibration`."""
    try:
        action = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise DecodeError("action is not UTF-8 text") from None
    out = Decoded()
    if action in ("vibration", "tilt"):
        out.readings.append(Reading(str(options.get("kind", "bed")), True))
    elif action in ("single", "double", "hold", "sos", "emergency"):
        out.readings.append(Reading("sos", True))
    elif action == "":
        out.ignored = "empty action"
    else:
        raise DecodeError(f"unknown action {action[:40]!r}")
    return out


@decoder("z2m.lock")
def z2m_lock(payload: bytes, options: Mapping[str, Any]) -> Decoded:
    """zigbee2mqtt door lock (Yale, ID Lock, Danalock...).

    The state is taken from `action` when the message reports a lock operation (the
    `lock_state` in the same message can still hold the previous value), else from
    `lock_state`, else from the legacy `state` LOCK/UNLOCK. The method comes from
    `action_source` (0 keypad, 1 RF/app, 2 manual/key, 3 RFID; old firmware: `source`),
    else from `action_source_name` (`keypad`, `rf`, `manual`, `rfid`), else from the
    action's prefix (`keypad_unlock`, `rfid_`, `manual_`, `rf_`, `auto_lock`). User 65535
    (0xFFFF) means "no user".
    """
    data = _object(payload)
    out = Decoded()
    out.ts = _z2m_ts(data, out)
    _battery_status(data, out)
    action = data.get("action")
    state: str | None = None
    if isinstance(action, str) and action in Z2M_LOCK_ACTIONS:
        state = Z2M_LOCK_ACTIONS[action]
    if state is None:
        ls = data.get("lock_state")
        if ls in ("locked", "unlocked"):
            state = ls
        elif data.get("state") in ("LOCK", "UNLOCK"):
            state = "locked" if data["state"] == "LOCK" else "unlocked"
        elif ls is not None:
            out.problems.append(f"lock_state: unknown value {ls!r}")
    if state is None:
        out.ignored = "no lock state"
        return out
    user = data.get("action_user", data.get("user"))
    method = _lock_method(data, action)
    if isinstance(user, bool) or not isinstance(user, int) or user in (0, 65535):
        user = None
    credential = f"{method}:{user}" if method and user is not None else None
    out.readings.append(Reading("lock", {"state": state, "method": method, "user": user,
                                         "credential": credential}, out.ts))
    return out


def _lock_method(data: Mapping[str, Any], action: Any) -> str | None:
    """How the lock was operated (see z2m_lock): the first of the three fields that says."""
    if action == "auto_lock":
        return "auto"
    source = data.get("action_source", data.get("source"))
    if isinstance(source, int) and not isinstance(source, bool) and source in Z2M_LOCK_SOURCE:
        return Z2M_LOCK_SOURCE[source]
    name = data.get("action_source_name")
    if isinstance(name, str) and name.lower() in Z2M_LOCK_SOURCE_NAME:
        return Z2M_LOCK_SOURCE_NAME[name.lower()]
    if isinstance(action, str):
        for prefix, method in Z2M_LOCK_ACTION_PREFIX:
            if action.startswith(prefix):
                return method
    return None


@decoder("z2m.availability")
def z2m_availability(payload: bytes, options: Mapping[str, Any]) -> Decoded:
    """`<device>/availability`: JSON `{"state": "online"}` or legacy plain `online`."""
    text = payload.decode("utf-8", errors="replace").strip()
    state: Any = text
    if text.startswith("{"):
        state = _object(payload).get("state")
    if state not in ("online", "offline"):
        raise DecodeError(f"availability must be online or offline, got {str(state)[:40]!r}")
    return Decoded(readings=[Reading("availability", state)])


# --- OwnTracks ---------------------------------------------------------------------------


@decoder("owntracks")
def owntracks(payload: bytes, options: Mapping[str, Any]) -> Decoded:
    """OwnTracks JSON: `location` -> position, `transition` -> geofence enter/leave."""
    data = _object(payload)
    kind = data.get("_type")
    out = Decoded()
    if kind not in ("location", "transition"):
        out.ignored = f"OwnTracks _type {kind!r} carries no observation"
        return out
    if "tst" not in data:
        raise DecodeError("tst (timestamp) is missing")
    if isinstance(data["tst"], str):
        raise DecodeError(f"tst: expected a number, got string {data['tst']!r}")
    ts = parse_ts(data["tst"])
    out.ts = ts
    lat = _number(data, "lat", out.problems)
    lon = _number(data, "lon", out.problems)
    acc = _number(data, "acc", out.problems)
    if kind == "location":
        if lat is None or lon is None:
            raise DecodeError("location without numeric lat/lon")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise DecodeError(f"lat/lon out of range: {lat}, {lon}")
        out.readings.append(Reading("position", {"lat": lat, "lon": lon, "acc": acc}, ts))
        batt = _number(data, "batt", out.problems)
        if batt is not None and batt >= 0:  # -1 means unknown (OwnTracks docs)
            out.status["battery"] = batt
    else:
        event = data.get("event")
        if event not in ("enter", "leave"):
            raise DecodeError(f"transition event must be enter or leave, got {event!r}")
        region = data.get("desc")
        out.readings.append(Reading("geofence", {
            "event": event, "region": region if isinstance(region, str) else None,
            "rid": data.get("rid") if isinstance(data.get("rid"), str) else None}, ts))
    return out


# --- LoRaWAN network servers ------------------------------------------------------------


def _lorawan(fields: dict[str, Any] | None, raw: str | None, fport: Any,
             options: Mapping[str, Any]) -> Decoded:
    model = str(options.get("codec", ""))
    if model not in CODECS:
        raise DecodeError(f"profile names unknown codec {model!r}")
    if fields is None:
        if not isinstance(raw, str) or not raw:
            raise DecodeError("uplink has neither a decoded object nor raw data")
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise DecodeError("uplink data is not valid base64") from None
        if fport is not None and (isinstance(fport, bool) or not isinstance(fport, int)):
            raise DecodeError(f"fPort: expected a number, got {fport!r}")
        fields = CODECS[model](data, fport)
    pairs, status = readings_for(model, fields)
    out = Decoded(readings=[Reading(k, v) for k, v in pairs], status=status)
    if not pairs:
        out.ignored = "uplink carries no observation for this model"
    return out


@decoder("chirpstack.up")
def chirpstack_up(payload: bytes, options: Mapping[str, Any]) -> Decoded:
    """ChirpStack v4 `.../event/up`: the decoded `object` if present, else the raw `data`."""
    data = _object(payload)
    obj = data.get("object")
    out = _lorawan(obj if isinstance(obj, dict) and obj else None, data.get("data"),
                   data.get("fPort"), options)
    ts = parse_ts(data["time"]) if "time" in data else None
    out.readings = [Reading(r.kind, r.value, ts) for r in out.readings]
    out.ts = ts
    return out


@decoder("chirpstack.status")
def chirpstack_status(payload: bytes, options: Mapping[str, Any]) -> Decoded:
    """ChirpStack v4 `.../event/status`: battery level (percent) and link margin."""
    data = _object(payload)
    out = Decoded()
    if data.get("externalPowerSource") is True:
        out.ignored = "mains powered"
        return out
    _battery_status(data, out, "batteryLevel")
    if "batteryLevel" in out.status:
        out.status["battery"] = out.status.pop("batteryLevel")
    if "batteryLevelUnavailable" in data and data["batteryLevelUnavailable"]:
        out.ignored = "battery level unavailable"
    return out


@decoder("chirpstack.meta")
def chirpstack_meta(payload: bytes, options: Mapping[str, Any]) -> Decoded:
    """ChirpStack v4 join/ack/txack/log/location/integration: proof of life only."""
    _object(payload)
    return Decoded(ignored="network event")


@decoder("tts.up")
def tts_up(payload: bytes, options: Mapping[str, Any]) -> Decoded:
    """The Things Stack v3 `.../up`: `decoded_payload` if present, else `frm_payload`."""
    data = _object(payload)
    up = data.get("uplink_message")
    if not isinstance(up, dict):
        raise DecodeError("uplink_message is missing")
    dec = up.get("decoded_payload")
    if isinstance(dec, dict) and dec and options.get("trust_decoded", True):
        pairs, status = readings_for(str(options.get("codec", "")), dec)
        out = Decoded(readings=[Reading(k, v) for k, v in pairs], status=status)
        if not pairs:
            out.ignored = "decoded payload carries no observation for this model"
    else:
        out = _lorawan(None, up.get("frm_payload"), up.get("f_port"), options)
    when = up.get("received_at") or data.get("received_at")
    ts = parse_ts(when) if when is not None else None
    out.readings = [Reading(r.kind, r.value, ts) for r in out.readings]
    out.ts = ts
    return out


# --- Tillsyn native -----------------------------------------------------------------------

_BOOL_KINDS = frozenset({"motion", "bed", "sos", "fall"})


def native_value(kind: str, value: Any) -> Any:
    """Check and normalise the value of a native observation."""
    if kind in _BOOL_KINDS:
        if not isinstance(value, bool):
            raise DecodeError(f"value of {kind} must be true or false, got {value!r}")
        return value
    if kind == "contact":
        if value in ("open", "closed"):
            return value
        if isinstance(value, bool):
            return "open" if value else "closed"
        raise DecodeError(f"value of contact must be open/closed, got {value!r}")
    if kind == "position":
        if not isinstance(value, dict):
            raise DecodeError("value of position must be an object with lat and lon")
        lat, lon, acc = value.get("lat"), value.get("lon"), value.get("acc")
        for name, v in (("lat", lat), ("lon", lon)):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise DecodeError(f"position.{name} must be a number, got {v!r}")
        assert isinstance(lat, int | float) and isinstance(lon, int | float)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise DecodeError(f"position out of range: {lat}, {lon}")
        if acc is not None and (isinstance(acc, bool) or not isinstance(acc, int | float)):
            raise DecodeError(f"position.acc must be a number, got {acc!r}")
        return {"lat": float(lat), "lon": float(lon), "acc": acc}
    if kind == "geofence":
        if not isinstance(value, dict) or value.get("event") not in ("enter", "leave"):
            raise DecodeError("value of geofence must be {event: enter|leave, region}")
        return {"event": value["event"], "region": str(value.get("region") or "") or None}
    if kind == "lock":
        if not isinstance(value, dict) or value.get("state") not in ("locked", "unlocked"):
            raise DecodeError("value of lock must be {state: locked|unlocked, method, user}")
        method = value.get("method")
        if method not in (None, *LOCK_METHODS):
            raise DecodeError(f"lock method {method!r} is not one of {', '.join(LOCK_METHODS)}")
        user = value.get("user")
        cred = f"{method}:{user}" if method and user is not None else None
        return {"state": value["state"], "method": method, "user": user, "credential": cred}
    if kind == "availability":
        if value not in ("online", "offline"):
            raise DecodeError(f"availability must be online or offline, got {value!r}")
        return value
    if kind == "battery":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            raise DecodeError(f"battery must be a percentage 0-100, got {value!r}")
        return float(value)
    return None  # heartbeat


@decoder("native")
def native(payload: bytes, options: Mapping[str, Any]) -> Decoded:
    """Tillsyn native body `{"ts", "kind", "value"}` on channels event, state, heartbeat."""
    data = _object(payload)
    kind = data.get("kind")
    if kind not in OBSERVATION_KINDS:
        raise DecodeError(f"kind {str(kind)[:40]!r} is not one of {', '.join(OBSERVATION_KINDS)}")
    if "ts" not in data:
        raise DecodeError("ts is missing")
    ts = parse_ts(data["ts"])
    out = Decoded(ts=ts)
    _battery_status(data, out)
    value = native_value(str(kind), data.get("value"))
    if kind == "battery":
        out.status["battery"] = value
    out.readings.append(Reading(str(kind), value, ts))
    return out
