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


def milesight(model: str) -> Codec:
    """Build the codec for one Milesight model (shared channel grammar)."""

    def decode(b: bytes, fport: int | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        i = 0
        while i < len(b):
            _need(b, i, 2, "channel header")
            cid, ctype = b[i], b[i + 1]
            i += 2
            if (cid, ctype) == (0x01, 0x75):
                _need(b, i, 1, "battery")
                out["battery"] = b[i]
                i += 1
            elif (cid, ctype) == (0xFF, 0x2E) and model == "ws101":
                _need(b, i, 1, "button press")
                out["press"] = {1: "short", 2: "long", 3: "double"}.get(b[i], "unknown")
                i += 1
            elif (cid, ctype) == (0x03, 0x00) and model == "ws301":
                _need(b, i, 1, "magnet status")
                out["magnet_status"] = "open" if b[i] else "close"
                i += 1
            elif (cid, ctype) == (0x04, 0x00) and model == "ws301":
                _need(b, i, 1, "tamper status")
                out["tamper_status"] = "uninstalled" if b[i] else "installed"
                i += 1
            elif (cid, ctype) == (0x03, 0x00) and model == "ws202":
                _need(b, i, 1, "pir")
                out["pir"] = "trigger" if b[i] else "idle"
                i += 1
            elif (cid, ctype) == (0x04, 0x00) and model == "ws202":
                _need(b, i, 1, "daylight")
                out["daylight"] = "light" if b[i] else "dark"
                i += 1
            elif (cid, ctype) == (0x03, 0x67):
                _need(b, i, 2, "temperature")
                out["temperature"] = _i16le(b, i) / 10
                i += 2
            elif (cid, ctype) == (0x04, 0x68):
                _need(b, i, 1, "humidity")
                out["humidity"] = b[i] / 2
                i += 1
            elif (cid, ctype) == (0x06, 0x00) and model == "em300-mcs":
                _need(b, i, 1, "magnet status")
                out["magnet_status"] = "open" if b[i] else "close"
                i += 1
            elif (cid, ctype) == (0x02, 0x82) and model == "vs330":
                _need(b, i, 2, "distance")
                out["distance"] = _u16le(b, i)
                i += 2
            elif (cid, ctype) == (0x03, 0x8E) and model == "vs330":
                _need(b, i, 1, "occupancy")
                out["occupancy"] = "occupied" if b[i] else "vacant"
                i += 1
            elif (cid, ctype) == (0x04, 0x8E) and model == "vs330":
                _need(b, i, 1, "calibration")
                out["calibration"] = "success" if b[i] else "failed"
                i += 1
            elif cid in (0x04, 0x84) and ctype == 0x88 and model == "at101":
                _need(b, i, 9, "location")
                out["latitude"] = _i32le(b, i) / 1_000_000
                out["longitude"] = _i32le(b, i + 4) / 1_000_000
                status = b[i + 8]
                out["motion_status"] = _MOTION.get(status & 0x0F, "unknown")
                out["geofence_status"] = _GEOFENCE.get(status >> 4, "unknown")
                i += 9
            elif (cid, ctype) == (0x05, 0x00) and model == "at101":
                _need(b, i, 1, "device position")
                out["position"] = {0: "normal", 1: "tilt"}.get(b[i], "unknown")
                i += 1
            elif (cid, ctype) == (0x06, 0xD9) and model == "at101":
                _need(b, i, 9, "wifi scan record")
                mac = ":".join(f"{x:02x}" for x in b[i + 1:i + 7])
                rssi = int.from_bytes(b[i + 7:i + 8], "little", signed=True)
                motion = _MOTION.get(b[i + 8] & 0x0F, "unknown")
                i += 9
                out["wifi_scan_result"] = "finish"
                if mac == "ff:ff:ff:ff:ff:ff":
                    out["wifi_scan_result"] = "timeout"
                    continue
                out["motion_status"] = motion
                out.setdefault("wifi", []).append(
                    {"group": b[i - 9], "mac": mac, "rssi": rssi, "motion_status": motion})
            else:
                raise DecodeError(
                    f"unknown Milesight {model} channel 0x{cid:02x} type 0x{ctype:02x} "
                    f"at byte {i - 2}")
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
