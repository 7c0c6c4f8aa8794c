"""The decode pipeline without broker or database: clock rule, consent, battery, fuzzing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config.registry import Registry
from gateway.errors import DecodeError
from gateway.ingest import pipe
from gateway.ingest.pipeline import Pipeline, Prepared, RawMessage
from gateway.ingest.router import Router
from gateway.profiles.decoders import DECODERS, load_json
from gateway.profiles.loader import load_profiles
from gateway.storage.store import value_json
from tests.homes import SITE, registry

LIB = load_profiles()


def pipeline(consent: list[str] | None = None) -> Pipeline:
    return Pipeline(Router(Registry.model_validate(registry(1, consent=consent)), LIB))


def msg(topic: str, body: Any, received_ms: int, mid: int = 1) -> RawMessage:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RawMessage(topic, payload, mid, 1, False, received_ms)


NOW = 1_763_852_400_000  # 2025-11-22T23:00:00Z
BED = f"tillsyn/v1/{SITE}/bed-0/event"


def test_device_clock_rule() -> None:
    p = pipeline()
    rows = p.process([
        msg(BED, {"ts": NOW - 60_000, "kind": "bed", "value": True}, NOW),          # trusted
        msg(BED, {"ts": NOW + 6 * 60_000, "kind": "bed", "value": True}, NOW),      # > 5 min ahead
        msg(BED, {"ts": NOW + 4 * 60_000, "kind": "bed", "value": True}, NOW),      # < 5 min ahead
        msg(BED, {"ts": NOW - 8 * 86_400_000, "kind": "bed", "value": True}, NOW),  # > 7 d behind
    ])
    got = [(o["ts_ms"], o["clock_override"]) for o in rows.observations]
    assert got == [(NOW - 60_000, False), (NOW, True), (NOW + 240_000, False), (NOW, True)]
    assert rows.counters.clock_overrides == 2


def test_z2m_last_seen_is_the_event_time() -> None:
    p = pipeline()
    rows = p.process([msg("zigbee2mqtt/hall-pir-0",
                          {"occupancy": True, "last_seen": "2025-11-22T23:59:00+01:00"}, NOW)])
    assert rows.observations[0]["ts_ms"] == NOW - 60_000


def test_consent_and_technical_kinds() -> None:
    p = pipeline(consent=["bed"])
    rows = p.process([
        msg("zigbee2mqtt/hall-pir-0", {"occupancy": True, "battery": 90}, NOW),
        msg("zigbee2mqtt/door-0/availability", b"offline", NOW),
    ])
    # motion is not consented; battery and availability describe the device, not the person
    assert sorted(o["kind"] for o in rows.observations) == ["availability", "battery"]
    assert rows.counters.consent_filtered == 1


def test_battery_stored_only_when_it_changes() -> None:
    p = pipeline()
    topic = "zigbee2mqtt/hall-pir-0"
    rows = p.process([msg(topic, {"occupancy": True, "battery": b}, NOW)
                      for b in (90, 90, 89.5, 89, 70)])
    assert [o["value"] for o in rows.observations if o["kind"] == "battery"] == [90.0, 89.0, 70.0]


def test_unknown_device_is_a_counted_dead_letter() -> None:
    p = pipeline()
    rows = p.process([msg("zigbee2mqtt/stranger", {"occupancy": True}, NOW)])
    assert rows.observations == []
    assert rows.counters.unknown_device == 1
    assert rows.dead_letters[0]["reason"].startswith("unknown device")


def test_partial_message_keeps_good_readings() -> None:
    p = pipeline()
    rows = p.process([msg("zigbee2mqtt/hall-pir-0", {"occupancy": False, "battery": "100.00"},
                          NOW)])
    assert [o["kind"] for o in rows.observations] == ["motion"]
    assert rows.dead_letters[0]["partial"] is True


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(DECODERS)), payload=st.binary(max_size=300))
def test_decoders_survive_arbitrary_bytes(name: str, payload: bytes) -> None:
    try:
        DECODERS[name](payload, {"codec": "milesight-at101"})
    except DecodeError:
        pass


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(), c,
                                                                               max_size=3),
                           max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(body=st.fixed_dictionaries({}, optional={
    "ts": json_values, "kind": st.sampled_from(["bed", "position", "lock", "contact", "x"]),
    "value": json_values, "battery": json_values, "occupancy": json_values,
    "contact": json_values, "lock_state": json_values, "action": json_values,
    "action_source": json_values, "_type": st.sampled_from(["location", "transition"]),
    "lat": json_values, "lon": json_values, "tst": json_values, "last_seen": json_values,
    "data": json_values, "fPort": json_values, "uplink_message": json_values}),
    name=st.sampled_from(sorted(DECODERS)))
def test_decoders_with_right_shape_wrong_values(body: dict[str, Any], name: str) -> None:
    try:
        DECODERS[name](json.dumps(body).encode(), {"codec": "milesight-ws301"})
    except DecodeError:
        pass


def test_pipeline_never_raises_on_garbage() -> None:
    p = pipeline()
    t = int(time.time() * 1000)
    rows = p.process([msg(BED, b"\xff" * 10, t), msg(BED, {"ts": [], "kind": "bed"}, t)])
    assert rows.counters.dead_letters == 2


def test_invalid_ttn_sample_becomes_a_dead_letter_with_reason() -> None:
    from tests.support import PAYLOADS

    reg = registry(1)
    reg["residents"][0]["devices"].append({
        "id": "door-lora", "profile": "tts.milesight-ws301",
        "source": "v3/app1@ttn/devices/dev1", "room": "entrance"})
    p = Pipeline(Router(Registry.model_validate(reg), LIB))
    raw = (PAYLOADS / "ttn_v3" / "uplink_verbatim_INVALID_missing_comma.json.txt").read_bytes()
    rows = p.process([msg("v3/app1@ttn/devices/dev1/up", raw, NOW)])
    assert rows.observations == []
    assert rows.dead_letters[0]["reason"] == \
        "invalid JSON: Expecting ',' delimiter at line 79 column 5"
    assert rows.dead_letters[0]["device_id"] == "door-lora"


def stdlib_json(payload: bytes) -> tuple[str, Any]:
    """What the standard library makes of a payload: ("ok", value) or ("error", None)."""
    try:
        return "ok", json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "error", None


@settings(max_examples=400, deadline=None)
@given(value=json_values, junk=st.binary(max_size=4), cut=st.integers(0, 40))
def test_json_fast_path_gives_the_standard_librarys_answer(value: Any, junk: bytes,
                                                           cut: int) -> None:
    # orjson parses first (docs/performance.md); whatever it refuses goes to the standard
    # library, so the result is always the standard library's: NaN, integers beyond 64
    # bits and lone surrogates included, and damaged payloads fail the same way.
    text = json.dumps(value).encode()
    for payload in (text, text[:cut] + junk + text[cut:], text[:cut]):
        kind, expected = stdlib_json(payload)
        try:
            got = load_json(payload)
        except DecodeError:
            assert kind == "error", payload
            continue
        assert kind == "ok", payload
        assert json.dumps(got) == json.dumps(expected)  # NaN != NaN: compare the text
        assert type(got) is type(expected)


def test_json_fast_path_keeps_the_standard_librarys_reasons() -> None:
    assert load_json(b'{"battery": NaN}')["battery"] != 0  # accepted, as json.loads does
    assert load_json(b'{"n": 123456789012345678901234567890}')["n"] == \
        123456789012345678901234567890
    # Where orjson and the standard library differ, or might: the library's answer wins.
    for payload in (b"1e400", b"[-1e400]", b"1e-400", b'"\\ud800"', b'{"a": 1, "a": 2}',
                    b"9223372036854775807", b"-9223372036854775809",
                    b"18446744073709551616", b"\xef\xbb\xbf{}", b"{}\x00", b"  {} "):
        kind, expected = stdlib_json(payload)
        if kind == "error":
            with pytest.raises(DecodeError):
                load_json(payload)
        else:
            got = load_json(payload)
            assert (json.dumps(got), type(got)) == (json.dumps(expected), type(expected))
    with pytest.raises(DecodeError, match=r"^invalid JSON: Expecting value at line 1 column 1$"):
        load_json(b"")
    with pytest.raises(DecodeError, match=r"^payload is not UTF-8 \(byte 2\)$"):
        load_json(b'{"\xff": 1}')


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_stored_value_text_is_what_json_dumps_writes(value: Any) -> None:
    assert value_json(value) == json.dumps(value)
    assert value_json(value) == json.dumps(value)  # the second time from the lookup


def test_prepared_messages_cross_the_pipe_unchanged() -> None:
    p = pipeline()
    t = int(time.time() * 1000)
    items = [p.prepare(msg(BED, {"ts": t, "kind": "bed", "value": True}, t, mid=7)),
             p.prepare(RawMessage("nobody/knows", b"\xff", 8, 1, True, t)),
             p.prepare(msg(BED, {"ts": t, "kind": "bed", "value": "x"}, t, mid=9))]
    frame = pipe.msgs_frame(5, items)
    assert pipe.is_msgs(frame)
    assert pipe.msgs_header(frame) == (5, 3)
    back = pipe.open_msgs(frame)
    assert back == items
    assert all(type(m) is Prepared for m in back)
    assert back[0].readings[0][:2] == ("bed", True)
    assert back[1].dead is not None and back[1].dead[3].startswith("unknown device")
