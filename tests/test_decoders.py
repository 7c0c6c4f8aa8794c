"""Every supported real sample decodes to what a person reads in it (values typed by hand)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import DecodeError
from gateway.profiles.decoders import DECODERS
from gateway.profiles.lorawan_codecs import CODECS
from gateway.profiles.types import Decoded
from tests.support import PAYLOADS

Z2M = PAYLOADS / "zigbee2mqtt"
OT = PAYLOADS / "owntracks"
LW = PAYLOADS / "lorawan_thingsboard_converters"


def dec(name: str, path: Path, **options: Any) -> Decoded:
    return DECODERS[name](path.read_bytes(), options)


def kv(d: Decoded) -> list[tuple[str, Any]]:
    return [(r.kind, r.value) for r in d.readings]


# --- zigbee2mqtt ------------------------------------------------------------------------

@pytest.mark.parametrize(("file", "motion", "battery", "lqi"), [
    ("RTCGQ11LM_state_occupancy_false.json", False, 100, 18),
    ("RTCGQ11LM_state_occupancy_true.json", True, 100, 26),
    ("RTCGQ11LM_state_2018_minimal.json", True, None, None),
    ("RTCGQ11LM_state_2019_no_battery.json", True, None, 15),
    ("aqara_RTCGQ12LM-13LM_state_occupancy_false_with_update.json", False, 100, 152),
    ("aqara_RTCGQ12LM-13LM_state_occupancy_true_with_update.json", True, 100, 152),
    ("philips_SML002_state_occupancy_false.json", False, 100, 57),
])
def test_z2m_occupancy(file: str, motion: bool, battery: int | None, lqi: int | None) -> None:
    d = dec("z2m.occupancy", Z2M / file)
    assert kv(d) == [("motion", motion)]
    assert d.status.get("battery") == battery
    assert d.status.get("linkquality") == lqi
    assert d.problems == []


def test_z2m_battery_as_string_keeps_motion_and_reports_problem() -> None:
    # 2018 firmware sent "battery":"100.00": a string where a number belongs.
    d = dec("z2m.occupancy", Z2M / "RTCGQ11LM_state_2018_battery_as_string.json")
    assert kv(d) == [("motion", False)]
    assert "battery" not in d.status
    assert d.problems == ["battery: expected a number, got str '100.00'"]


@pytest.mark.parametrize(("file", "expected"), [
    ("DJT11LM_vibration_state_action_vibration.json", [("bed", True)]),
    ("DJT11LM_vibration_state_action_cleared.json", []),
    ("DJT11LM_vibration_state_2024_with_device_info.json", []),
])
def test_z2m_vibration(file: str, expected: list[tuple[str, Any]]) -> None:
    d = dec("z2m.vibration", Z2M / file)
    assert kv(d) == expected
    assert d.status["battery"] == 100
    assert d.problems == []


def test_z2m_vibration_action_subtopic_plain_string() -> None:
    assert kv(dec("z2m.action", Z2M / "DJT11LM_action_subtopic_plain_string.txt")) == [
        ("bed", True)]


@pytest.mark.parametrize(("file", "state", "method", "user", "cred", "battery"), [
    ("yale_YRD226_lock_state_unlocked_keypad_user2.json", "unlocked", "keypad", 2,
     "keypad:2", 100),
    ("yale_YDM4109_lock_state_auto_lock_action.json", "locked", "auto", None, None, None),
    ("yale_YDM4109_lock_state_action_cleared.json", "unlocked", None, None, None, None),
    ("yale_YRD226-246_lock_state_2019_legacy_user_source.json", "locked", "key", None, None,
     95),
])
def test_z2m_lock(file: str, state: str, method: str | None, user: int | None,
                  cred: str | None, battery: int | None) -> None:
    d = dec("z2m.lock", Z2M / file)
    assert kv(d) == [("lock", {"state": state, "method": method, "user": user,
                                "credential": cred})]
    assert d.status.get("battery") == battery


@pytest.mark.parametrize(("file", "state"), [
    ("availability_json_online.json", "online"),
    ("availability_json_offline.json", "offline"),
    ("availability_legacy_online.txt", "online"),
    ("availability_legacy_offline.txt", "offline"),
])
def test_z2m_availability(file: str, state: str) -> None:
    assert kv(dec("z2m.availability", Z2M / file)) == [("availability", state)]


def test_z2m_bridge_messages_are_not_device_states() -> None:
    # Bridge events are not a lock or occupancy state: no observation, no crash.
    for file in ("bridge_event_device_joined.json", "bridge_logging_info.json"):
        d = dec("z2m.occupancy", Z2M / file)
        assert kv(d) == []


# --- OwnTracks ----------------------------------------------------------------------------

def test_owntracks_location() -> None:
    d = dec("owntracks", OT / "location_quicksetup.json")
    assert kv(d) == [("position", {"lat": 48.856826, "lon": 2.292713, "acc": None})]
    assert d.readings[0].ts is not None
    assert d.readings[0].ts.timestamp() == 1706856298
    assert d.status["battery"] == 53


def test_owntracks_location_battery_unknown() -> None:
    d = dec("owntracks", OT / "location_trigger_user_batt_unknown.json")
    assert kv(d) == [("position", {"lat": 48.85833, "lon": 2.29513, "acc": None})]
    assert "battery" not in d.status  # batt -1 = unknown


def test_owntracks_transitions() -> None:
    d = dec("owntracks", OT / "transition_enter_region.json")
    assert kv(d) == [("geofence", {"event": "enter",
                                   "region": "My favorite coffee shop (Delaville)",
                                   "rid": "f7676c"})]
    assert d.readings[0].ts is not None and d.readings[0].ts.timestamp() == 1707057574
    d = dec("owntracks", OT / "transition_enter_beacon.json")
    assert kv(d) == [("geofence", {"event": "enter", "region": "Main@WestWing", "rid": None})]


def test_owntracks_waypoint_definition_is_ignored() -> None:
    d = dec("owntracks", OT / "waypoint_region_definition.json")
    assert kv(d) == [] and d.ignored


# --- LoRaWAN ------------------------------------------------------------------------------

MODELS = {"WS301": "milesight-ws301", "WS202": "milesight-ws202", "WS101": "milesight-ws101",
          "EM300-MCS": "milesight-em300-mcs", "VS330": "milesight-vs330",
          "AT101": "milesight-at101", "R311A": "netvox-r311a", "Vivid": "tektelic-vivid"}
LW_CASES = sorted((m, p.name) for m in MODELS for p in (LW / m).glob("*_payload*.json"))


@pytest.mark.parametrize(("model", "file"), LW_CASES)
def test_lorawan_raw_bytes_match_vendor_reference(model: str, file: str) -> None:
    """Raw bytes decode to the same values as ThingsBoard's published result file."""
    payload = json.loads((LW / model / file).read_text())
    if "data" in payload:
        raw, port = payload["data"], payload["fPort"]
    else:
        raw, port = payload["uplink_message"]["frm_payload"], payload["uplink_message"]["f_port"]
    reference = json.loads((LW / model / file.replace("payload", "result")).read_text())
    assert CODECS[MODELS[model]](base64.b64decode(raw), port) == \
        reference["telemetry"][0]["values"]


# Observations read by hand from the vendor result of each sample.
LW_OBS: dict[tuple[str, str], tuple[list[tuple[str, Any]], float | None]] = {
    ("WS301", ""): ([("contact", "open")], 100),
    ("EM300-MCS", ""): ([("contact", "open")], 92),
    ("WS202", ""): ([("motion", True)], 16),
    ("VS330", ""): ([("motion", True)], 98),
    ("WS101", ""): ([("sos", True)], 16),
    ("AT101", ""): ([("position", {"lat": 24.62435, "lon": 118.030088, "acc": None})], 100),
    ("AT101", "_1"): ([], 100),  # Wi-Fi scan only: no position without a lookup service
    ("R311A", ""): ([("contact", "open")], 66.7),  # 2.8 V on a 2.4-3.0 V scale
    ("R311A", "_1"): ([], None),
    ("R311A", "_2"): ([], None),
    ("Vivid", ""): ([], 94.8),  # 2.974 V on a 2.5-3.0 V scale
}


@pytest.mark.parametrize(("model", "suffix"), sorted(LW_OBS))
@pytest.mark.parametrize("lns", ["ChirpStack", "ThingsStackCommunity"])
def test_lorawan_observations(model: str, suffix: str, lns: str) -> None:
    path = LW / model / f"{lns}_uplink_payload{suffix}.json"
    name = "chirpstack.up" if lns == "ChirpStack" else "tts.up"
    d = dec(name, path, codec=MODELS[model])
    expected, battery = LW_OBS[(model, suffix)]
    assert kv(d) == expected
    assert d.status.get("battery") == battery
    for r in d.readings:
        assert r.ts is not None


def test_chirpstack_status_battery() -> None:
    d = dec("chirpstack.status", PAYLOADS / "chirpstack_v4" / "event_status.json")
    assert kv(d) == [] and d.status["battery"] == 88.3


@pytest.mark.parametrize("file", ["event_join.json", "event_ack.json", "event_txack.json",
                                  "event_log.json", "event_location.json",
                                  "event_integration.json"])
def test_chirpstack_other_events_are_proof_of_life(file: str) -> None:
    d = dec("chirpstack.meta", PAYLOADS / "chirpstack_v4" / file)
    assert kv(d) == [] and d.problems == []


def test_chirpstack_docs_uplink_for_unknown_model_is_a_dead_letter() -> None:
    # The docs' example uplink (fPort 1, one byte 0xaa) is no WS301 frame.
    with pytest.raises(DecodeError, match="payload ends inside channel header"):
        dec("chirpstack.up", PAYLOADS / "chirpstack_v4" / "event_up.json",
            codec="milesight-ws301")


def test_tts_decoded_payload_used_when_present() -> None:
    # The Things Uno example: temperature/luminosity, nothing a WS301 profile stores.
    d = dec("tts.up", PAYLOADS / "ttn_v3" / "uplink_message.json", codec="milesight-ws301")
    assert kv(d) == [] and d.ignored


def test_tts_uplink_with_missing_comma_is_rejected() -> None:
    with pytest.raises(DecodeError, match="invalid JSON"):
        dec("tts.up", PAYLOADS / "ttn_v3" / "uplink_verbatim_INVALID_missing_comma.json.txt",
            codec="milesight-ws301")


# --- native -------------------------------------------------------------------------------

def native(body: dict[str, Any]) -> Decoded:
    return DECODERS["native"](json.dumps(body).encode(), {})


def test_native_spec_examples() -> None:
    assert kv(native({"ts": 1763852400000, "kind": "bed", "value": True})) == [("bed", True)]
    d = native({"ts": "2025-11-22T23:00:00Z", "kind": "position",
                "value": {"lat": 55.7047, "lon": 13.191, "acc": 12}})
    assert kv(d) == [("position", {"lat": 55.7047, "lon": 13.191, "acc": 12})]
    assert kv(native({"ts": 1763852400000, "kind": "sos", "value": True})) == [("sos", True)]
    d = native({"ts": 1763852400000, "kind": "heartbeat", "value": None, "battery": 87})
    assert kv(d) == [("heartbeat", None)] and d.status["battery"] == 87


@pytest.mark.parametrize(("body", "reason"), [
    ({"ts": 1, "kind": "teleport", "value": 1}, "is not one of"),
    ({"kind": "bed", "value": True}, "ts is missing"),
    ({"ts": "yesterday", "kind": "bed", "value": True}, "not RFC 3339"),
    ({"ts": 1763852400000, "kind": "bed", "value": "yes"}, "must be true or false"),
    ({"ts": 1763852400000, "kind": "position", "value": {"lat": "55", "lon": 13}},
     "position.lat must be a number"),
    ({"ts": 1763852400000, "kind": "position", "value": {"lat": 95, "lon": 13}}, "out of range"),
])
def test_native_invalid(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        native(body)


@pytest.mark.parametrize("payload", [b"", b"\xff\xfe", b"[1,2]", b"null", b"[" * 100000])
@pytest.mark.parametrize("name", sorted(DECODERS))
def test_hostile_payloads_raise_decode_error_only(name: str, payload: bytes) -> None:
    try:
        DECODERS[name](payload, {"codec": "milesight-ws301"})
    except DecodeError:
        pass


@pytest.mark.parametrize(("body", "state", "method", "cred"), [
    # The converters that report only the action (issue 21): method from its prefix.
    ({"action": "keypad_unlock", "action_user": 2}, "unlocked", "keypad", "keypad:2"),
    ({"action": "rfid_unlock", "action_user": 7}, "unlocked", "rfid", "rfid:7"),
    ({"action": "manual_lock", "action_user": 0}, "locked", "key", None),
    ({"action": "auto_lock", "action_source": 2}, "locked", "auto", None),
    # zigbee-herdsman-converters' lock_operation_event: the source's name beside it.
    ({"action": "unlock", "action_user": 2, "action_source_name": "keypad"}, "unlocked",
     "keypad", "keypad:2"),
    ({"action": "unlock", "action_user": 4, "action_source_name": "rfid"}, "unlocked",
     "rfid", "rfid:4"),
    ({"action": "lock", "action_user": 1, "action_source_name": "rf"}, "locked", "app",
     "app:1"),
    # action_source wins over the others; RFID is source 3.
    ({"action": "unlock", "action_source": 3, "action_source_name": "keypad",
      "action_user": 5}, "unlocked", "rfid", "rfid:5"),
])
def test_z2m_lock_method_from_source_name_or_action_prefix(
        body: dict[str, Any], state: str, method: str, cred: str | None) -> None:
    d = DECODERS["z2m.lock"](json.dumps(body).encode(), {})
    value = kv(d)[0][1]
    assert (value["state"], value["method"], value["credential"]) == (state, method, cred)
