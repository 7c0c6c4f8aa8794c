"""Repeated states are not transitions: each zigbee profile's real check-in behaviour (the
periodic report that repeats the cached state), decoded through the profile and fed to the
detectors, must start nothing and count as no activity and no passage.

The messages are the firmware stubs' (firmware_stubs/devices.py), which send what
zigbee2mqtt publishes with its default `cache_state: true`: battery, voltage and link
quality with the last state. Each case first sends a real change, then the hourly reports.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from detectors.engine import ResidentEngine
from detectors.model import DeviceInfo, NightWindow, Observation, ResidentSettings
from detectors.signals import Transitions, classify
from firmware_stubs.devices import stub_for
from gateway.profiles.decoders import DECODERS
from gateway.profiles.loader import load_profiles

TZ = ZoneInfo("Europe/Stockholm")
LIB = load_profiles(None)


def decode(profile: str, source: str, topic: str, payload: bytes) -> list[tuple[str, Any]]:
    prof = LIB.get(profile)
    channel = next(c for c in prof.channels if source + c.suffix == topic)
    d = DECODERS[channel.decoder](payload, channel.options)
    return [(r.kind, r.value) for r in d.readings]


@pytest.mark.parametrize(("profile", "kind", "change", "room", "exterior"), [
    ("zigbee2mqtt.occupancy", "motion", False, "hall", False),
    ("zigbee2mqtt.contact", "contact", "closed", "entrance", True),
    ("zigbee2mqtt.contact", "contact", "open", "kitchen", False),
    ("zigbee2mqtt.bed_mat", "bed", False, "bedroom", False),
    ("zigbee2mqtt.bed_mat", "bed", True, "bedroom", False),
    ("zigbee2mqtt.lock", "lock", {"state": "locked", "method": "keypad", "user": 2},
     "entrance", True),
])
def test_hourly_checkins_repeat_the_state_and_change_nothing(
        profile: str, kind: str, change: Any, room: str, exterior: bool) -> None:
    source = f"zigbee2mqtt/dev-{kind}"
    stub = stub_for(profile, source)
    t0 = datetime(2026, 11, 10, 21, 0, tzinfo=UTC)
    ms = int(t0.timestamp() * 1000)
    first = decode(profile, source, *stub.event(ms, kind, change))
    checkins = [decode(profile, source, *stub.event(ms + k * 3_600_000, "checkin", None))
                for k in range(1, 6)]
    # zigbee2mqtt repeats the state in every report (the lock: state, source and user).
    for readings in checkins:
        assert [(k, v) for k, v in readings if k == kind] == [
            (k, v) for k, v in first if k == kind], readings
    info = DeviceInfo("dev", room, exterior, 90000, frozenset(LIB.get(profile).kinds))
    tr = Transitions()
    signals = []
    for k, readings in enumerate([first, *checkins]):
        for rk, value in readings:
            if rk != kind:
                continue
            obs = Observation("r-1", "dev", rk, value, t0 + timedelta(hours=k), room)
            changed = tr.update(obs)
            signals.append(classify(obs, info, changed, tr.first))
    assert len(signals) == 6
    for sig in signals[1:]:
        assert not sig.changed and not sig.passage
        assert not sig.inside or (kind == "motion" and change is True)


def test_a_night_of_checkins_raises_nothing() -> None:
    """Up late with a bed mat whose hourly report says "not in bed", the door's report says
    "closed", the lock's "locked by keypad user 2" (a nurse's code): no bed exit, no door
    alert, no staff visit, no passage that could make the resident "away"."""
    devices = {
        "bed": DeviceInfo("bed", "bedroom", False, 90000, frozenset({"bed"})),
        "door": DeviceInfo("door", "entrance", True, 90000, frozenset({"contact"})),
        "lock": DeviceInfo("lock", "entrance", True, 90000, frozenset({"lock"})),
        "hall": DeviceInfo("hall", "hall", False, 90000, frozenset({"motion"})),
    }
    s = ResidentSettings("r-1", TZ, NightWindow.parse("22:00", "07:00"), devices,
                         staff_credentials={"keypad:2": "s-17"})
    e = ResidentEngine(s, datetime(2026, 11, 10, 18, 0, tzinfo=UTC))
    lock = {"state": "locked", "method": "keypad", "user": 2, "credential": "keypad:2"}
    t = datetime(2026, 11, 10, 19, 0, tzinfo=UTC)  # 20:00 local
    out = []
    out += e.observe(Observation("r-1", "bed", "bed", False, t, "bedroom"))
    out += e.observe(Observation("r-1", "door", "contact", "closed", t, "entrance"))
    out += e.observe(Observation("r-1", "lock", "lock", lock, t, "entrance"))
    out += e.observe(Observation("r-1", "hall", "motion", True, t + timedelta(minutes=5),
                                 "hall"))
    for hour in range(1, 10):
        at = t + timedelta(hours=hour)
        out += e.observe(Observation("r-1", "bed", "bed", False, at, "bedroom"))
        out += e.observe(Observation("r-1", "door", "contact", "closed", at, "entrance"))
        out += e.observe(Observation("r-1", "lock", "lock", lock, at, "entrance"))
    assert [d for d in out if d.action == "raise"] == []
    assert e.visits.in_progress() is None and e.last_visit is None
    assert e.occupancy.at(t + timedelta(hours=9)).state == "home"
