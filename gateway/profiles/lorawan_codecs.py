"""Byte-level payload codecs for supported LoRaWAN device models.

Each codec turns the raw FRMPayload into the vendor's documented field dictionary (the same
names and values as the vendors' reference decoders and ThingsBoard's converters), and
`readings_for` maps that dictionary to Tillsyn observations. Pure functions, no I/O.
Milesight frames are (channel id, channel type, value) triples; multi-byte values are
little-endian. Netvox and Tektelic frames are big-endian.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.errors import DecodeError

Codec = Callable[[bytes, int | None], dict[str, Any]]


def _u16le(b: bytes, i: int) -> int:
    return int.from_bytes(b[i:i + 2], "little")


def _i16le(b: bytes, i: int) -> int:
    return int.from_bytes(b[i:i + 2], "little", signed=True)


def _i32le(b: bytes, i: int) -> int:
    return int.from_bytes(b[i:i + 4], "little", signed=True)


def _need(b: bytes, i: int, n: int, what: str) -> None:
    if i + n > len(b):
        raise DecodeError(f"payload ends inside {what} (byte {i}, need {n}, have {len(b) - i})")


_MOTION = {1: "start", 2: "moving", 3: "stop"}
_GEOFENCE = {0: "inside", 1: "outside", 2: "unset"}

# Milesight channels: (channel id, channel type) -> (field, bytes, value from bytes).
Field = tuple[str, int, Callable[[bytes], Any]]


def _flag(off: str, on: str) -> Callable[[bytes], str]:
    return lambda v: on if v[0] else off


_BATTERY: dict[tuple[int, int], Field] = {(0x01, 0x75): ("battery", 1, lambda v: v[0])}
_TEMP_HUM: dict[tuple[int, int], Field] = {
    (0x03, 0x67): ("temperature", 2, lambda v: _i16le(v, 0) / 10),
    (0x04, 0x68): ("humidity", 1, lambda v: v[0] / 2),
}
MILESIGHT_CHANNELS: dict[str, dict[tuple[int, int], Field]] = {
    "ws301": {**_BATTERY, (0x03, 0x00): ("magnet_status", 1, _flag("close", "open")),
              (0x04, 0x00): ("tamper_status", 1, _flag("installed", "uninstalled"))},
    "ws202": {**_BATTERY, (0x03, 0x00): ("pir", 1, _flag("idle", "trigger")),
              (0x04, 0x00): ("daylight", 1, _flag("dark", "light"))},
    "ws101": {**_BATTERY, (0xFF, 0x2E): (
        "press", 1, lambda v: {1: "short", 2: "long", 3: "double"}.get(v[0], "unknown"))},
    "em300-mcs": {**_BATTERY, **_TEMP_HUM,
                  (0x06, 0x00): ("magnet_status", 1, _flag("close", "open"))},
    "vs330": {**_BATTERY, (0x02, 0x82): ("distance", 2, lambda v: _u16le(v, 0)),
              (0x03, 0x8E): ("occupancy", 1, _flag("vacant", "occupied")),
              (0x04, 0x8E): ("calibration", 1, _flag("failed", "success"))},
    "at101": {**_BATTERY, (0x03, 0x67): _TEMP_HUM[(0x03, 0x67)],
              (0x05, 0x00): ("position", 1,
                             lambda v: {0: "normal", 1: "tilt"}.get(v[0], "unknown"))},
}


def _at101_location(v: bytes, out: dict[str, Any]) -> None:
    out["latitude"] = _i32le(v, 0) / 1_000_000
    out["longitude"] = _i32le(v, 4) / 1_000_000
    out["motion_status"] = _MOTION.get(v[8] & 0x0F, "unknown")
    out["geofence_status"] = _GEOFENCE.get(v[8] >> 4, "unknown")


def _at101_wifi(v: bytes, out: dict[str, Any]) -> None:
    mac = ":".join(f"{x:02x}" for x in v[1:7])
    out["wifi_scan_result"] = "finish"
    if mac == "ff:ff:ff:ff:ff:ff":
        out["wifi_scan_result"] = "timeout"
        return
    motion = _MOTION.get(v[8] & 0x0F, "unknown")
    out["motion_status"] = motion
    out.setdefault("wifi", []).append({"group": v[0], "mac": mac,
                                       "rssi": int.from_bytes(v[7:8], "little", signed=True),
                                       "motion_status": motion})


# Channels that set several fields: (channel id, channel type) -> (bytes, handler).
MILESIGHT_RECORDS: dict[str, dict[tuple[int, int], tuple[int, Callable[..., None]]]] = {
    "at101": {(0x04, 0x88): (9, _at101_location), (0x84, 0x88): (9, _at101_location),
              (0x06, 0xD9): (9, _at101_wifi)},
}


def milesight(model: str) -> Codec:
    """Build the codec for one Milesight model from its channel table."""
    fields = MILESIGHT_CHANNELS[model]
    records = MILESIGHT_RECORDS.get(model, {})

    def decode(b: bytes, fport: int | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        i = 0
        while i < len(b):
            _need(b, i, 2, "channel header")
            key = (b[i], b[i + 1])
            i += 2
            if key in fields:
                name, size, conv = fields[key]
                _need(b, i, size, name)
                out[name] = conv(b[i:i + size])
                i += size
            elif key in records:
                size, handler = records[key]
                _need(b, i, size, f"channel 0x{key[0]:02x}")
                handler(b[i:i + size], out)
                i += size
            else:
                raise DecodeError(f"unknown Milesight {model} channel 0x{key[0]:02x} "
                                  f"type 0x{key[1]:02x} at byte {i - 2}")
        if not out:
            raise DecodeError("empty payload")
        return out

    return decode


def netvox_r311a(b: bytes, fport: int | None) -> dict[str, Any]:
    """Netvox R311A door/window contact (ports 6: report, 7: configuration responses)."""
    if len(b) < 4:
        raise DecodeError(f"Netvox frame too short ({len(b)} bytes)")
    if fport == 6:
        if b[1] != 0x02:
            raise DecodeError(f"Netvox device type 0x{b[1]:02x} is not R311A (0x02)")
        if b[2] != 0x01:
            raise DecodeError(f"Netvox report type 0x{b[2]:02x} not supported")
        _need(b, 0, 5, "R311A report")
        return {"battery_voltage": b[3] / 10, "contact_switch": "on" if b[4] else "off"}
    if fport == 7:
        _need(b, 0, 7, "R311A config response")
        cmd = b[0]
        if cmd == 0x82:
            return {"cmd": "readConfigReportRsp", "minTime": int.from_bytes(b[2:4], "big"),
                    "maxTime": int.from_bytes(b[4:6], "big"), "batteryChange": b[6] / 10}
        if cmd == 0x84:
            return {"cmd": "getOnOffStateDurationRsp",
                    "on_state_duration": int.from_bytes(b[2:4], "big"),
                    "off_state_duration": int.from_bytes(b[4:6], "big")}
        if cmd == 0x81:
            return {"cmd": "configReportRsp", "status": "success" if b[2] == 0 else "failure"}
        raise DecodeError(f"Netvox command 0x{cmd:02x} not supported")
    raise DecodeError(f"Netvox R311A sends on ports 6 and 7, not {fport}")


def tektelic_vivid(b: bytes, fport: int | None) -> dict[str, Any]:
    """Tektelic Vivid / Smart Room sensor, port 10 (big-endian channel/type frames)."""
    if fport != 10:
        raise DecodeError(f"Tektelic Vivid reports on port 10, not {fport}")
    out: dict[str, Any] = {}
    i = 0
    while i < len(b):
        _need(b, i, 2, "channel header")
        cid, ctype = b[i], b[i + 1]
        i += 2
        if (cid, ctype) == (0x03, 0x67):
            _need(b, i, 2, "temperature")
            out["ambient_temperature"] = int.from_bytes(b[i:i + 2], "big", signed=True) / 10
            i += 2
        elif (cid, ctype) == (0x04, 0x68):
            _need(b, i, 1, "humidity")
            out["relative_humidity"] = b[i] / 2
            i += 1
        elif (cid, ctype) == (0x00, 0xBA):
            _need(b, i, 2, "battery voltage")
            out["battery_voltage"] = int.from_bytes(b[i:i + 2], "big") / 1000
            i += 2
        elif (cid, ctype) == (0x0A, 0x00):
            # Motion event state (Tektelic TRM): 0x00 no motion, 0xFF motion detected.
            _need(b, i, 1, "motion state")
            out["motion_event_state"] = "motion" if b[i] else "no_motion"
            i += 1
        elif (cid, ctype) == (0x0D, 0x04):
            _need(b, i, 2, "motion count")
            out["motion_event_count"] = int.from_bytes(b[i:i + 2], "big")
            i += 2
        else:
            raise DecodeError(f"unknown Tektelic channel 0x{cid:02x} type 0x{ctype:02x}")
    if not out:
        raise DecodeError("empty payload")
    return out


CODECS: dict[str, Codec] = {
    "milesight-ws301": milesight("ws301"),
    "milesight-ws202": milesight("ws202"),
    "milesight-ws101": milesight("ws101"),
    "milesight-em300-mcs": milesight("em300-mcs"),
    "milesight-vs330": milesight("vs330"),
    "milesight-at101": milesight("at101"),
    "netvox-r311a": netvox_r311a,
    "tektelic-vivid": tektelic_vivid,
}


def _pct_from_volts(volts: float, empty: float, full: float) -> float:
    return round(max(0.0, min(100.0, (volts - empty) / (full - empty) * 100)), 1)


def readings_for(model: str, fields: dict[str, Any]
                 ) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """Map a decoded field dictionary to (kind, value) pairs and device status.

    Netvox R311A `contact_switch` "on" means the magnet is away, i.e. the door is open
    (Netvox R311A user manual: "On" = alarm/separated).
    """
    out: list[tuple[str, Any]] = []
    status: dict[str, Any] = {}
    if "battery" in fields:
        status["battery"] = float(fields["battery"])
    if model in ("milesight-ws301", "milesight-em300-mcs") and "magnet_status" in fields:
        out.append(("contact", "open" if fields["magnet_status"] == "open" else "closed"))
    elif model == "milesight-ws202" and "pir" in fields:
        out.append(("motion", fields["pir"] == "trigger"))
    elif model == "milesight-ws101" and "press" in fields:
        out.append(("sos", True))
    elif model == "milesight-vs330" and "occupancy" in fields:
        out.append(("motion", fields["occupancy"] == "occupied"))
    elif model == "milesight-at101" and "latitude" in fields:
        out.append(("position", {"lat": fields["latitude"], "lon": fields["longitude"],
                                 "acc": None}))
    elif model == "netvox-r311a":
        if "contact_switch" in fields:
            out.append(("contact", "open" if fields["contact_switch"] == "on" else "closed"))
        if "battery_voltage" in fields:
            # R311A runs on 2 x 1.5 V cells: 3.0 V full, 2.4 V empty.
            status["battery"] = _pct_from_volts(fields["battery_voltage"], 2.4, 3.0)
            status["battery_voltage"] = fields["battery_voltage"]
    elif model == "tektelic-vivid":
        if "motion_event_state" in fields:
            out.append(("motion", fields["motion_event_state"] == "motion"))
        if "battery_voltage" in fields:
            # Vivid runs on 2 x AA lithium: 3.0 V full, 2.5 V low.
            status["battery"] = _pct_from_volts(fields["battery_voltage"], 2.5, 3.0)
            status["battery_voltage"] = fields["battery_voltage"]
    return out, status
