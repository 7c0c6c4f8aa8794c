"""Occupancy, state-based timed rules and repeated states: pure logic, times worked by hand.

Every case here is one the real-home replays showed (docs/detectors.md, "Real homes"):
a daytime absence, a multi-day absence with stray pulses, a stray bathroom pulse while
asleep, a shower, someone up at a desk, getting up for the day, a bed check-in repeating
"not in bed", a visiting nurse leaving while the resident sleeps.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from detectors.engine import ResidentEngine
from detectors.model import (
    Decision,
    DeviceInfo,
    NightWindow,
    Observation,
    PlannedAbsence,
    ResidentSettings,
)

TZ = ZoneInfo("Europe/Stockholm")
R = "r-1"
DEVICES = {
    "bed": DeviceInfo("bed", "bedroom", False, 90000, frozenset({"bed", "availability"})),
    "hall": DeviceInfo("hall", "hall", False, 90000, frozenset({"motion"})),
    "kitchen": DeviceInfo("kitchen", "kitchen", False, 90000, frozenset({"motion"})),
    "bath": DeviceInfo("bath", "bathroom", False, 90000, frozenset({"motion"})),
    "fridge": DeviceInfo("fridge", "kitchen", False, 90000, frozenset({"contact"})),
    "door": DeviceInfo("door", "entrance", True, 90000, frozenset({"contact"})),
    "lock": DeviceInfo("lock", "entrance", False, 90000, frozenset({"lock"})),
}
SETTINGS = ResidentSettings(R, TZ, NightWindow.parse("22:00", "07:00"), DEVICES,
                            staff_credentials={"keypad:2": "s-17"})


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ).astimezone(UTC)


def obs(device: str, kind: str, value: Any, when: str,
        devices: dict[str, DeviceInfo] = DEVICES) -> Observation:
    return Observation(R, device, kind, value, local(when), devices[device].room)


def feed(e: ResidentEngine, items: list[tuple[str, str, Any, str]],
         devices: dict[str, DeviceInfo] = DEVICES) -> list[Decision]:
    out: list[Decision] = []
    for device, kind, value, when in items:
        out += e.observe(obs(device, kind, value, when, devices))
    return out


def raised(ds: list[Decision]) -> list[tuple[str, datetime, int]]:
    return [(d.kind, d.ts, d.priority) for d in ds
            if d.action == "raise" and d.kind != "device_offline"]


def engine(settings: ResidentSettings = SETTINGS) -> ResidentEngine:
    return ResidentEngine(settings, local("2026-11-10 06:00"))


def leave(e: ResidentEngine, when: str) -> None:
    """Hall movement, then the front door opens and closes behind the resident."""
    t = datetime.fromisoformat(when)
    feed(e, [("hall", "motion", True, str(t - timedelta(seconds=40))),
             ("door", "contact", "open", str(t)),
             ("door", "contact", "closed", str(t + timedelta(seconds=15)))])


# --- occupancy ---------------------------------------------------------------------------------

def test_door_then_silence_is_away_and_door_then_movement_is_home() -> None:
    e = engine()
    feed(e, [("door", "contact", "closed", "2026-11-10 07:00")])  # first reading: no passage
    feed(e, [("kitchen", "motion", True, "2026-11-10 08:00")])
    assert e.occupancy.at(local("2026-11-10 08:00")).state == "home"
    leave(e, "2026-11-10 09:00")
    e.tick(local("2026-11-10 09:10:14"))
    assert e.occupancy.at(local("2026-11-10 09:10:14")).state == "home"  # not 10 min yet
    e.tick(local("2026-11-10 09:10:15"))
    occ = e.occupancy.at(local("2026-11-10 09:10:15"))
    assert (occ.state, occ.source, occ.since) == ("away", "door", local("2026-11-10 09:00:15"))
    # Back: the door, then movement inside within 5 minutes.
    feed(e, [("door", "contact", "open", "2026-11-10 12:00"),
             ("door", "contact", "closed", "2026-11-10 12:00:10"),
             ("hall", "motion", True, "2026-11-10 12:00:30")])
    occ = e.occupancy.at(local("2026-11-10 12:01"))
    assert (occ.state, occ.source, occ.since) == ("home", "door", local("2026-11-10 12:00:30"))
    changes, _ = e.take_facts()
    assert [(c.state, c.source) for c in changes] == [
        ("home", "movement"), ("away", "door"), ("home", "door")]


def test_stray_pulses_do_not_bring_anyone_home() -> None:
    """The CASAS tm000 pattern: one sensor pulsing on its own, three times in 20 minutes,
    during a multi-day absence."""
    e = engine()
    feed(e, [("kitchen", "motion", True, "2026-11-10 07:00")])
    leave(e, "2026-11-10 07:21")
    for when in ("2026-11-10 22:44", "2026-11-10 22:49", "2026-11-10 23:03",
                 "2026-11-11 09:13"):
        feed(e, [("kitchen", "motion", True, when)])
    assert e.occupancy.at(local("2026-11-11 10:00")).state == "away"
    # Two sensors within ten minutes (a return the door sensor missed) is home.
    feed(e, [("hall", "motion", True, "2026-11-11 18:54"),
             ("kitchen", "motion", True, "2026-11-11 18:55"),
             ("hall", "motion", True, "2026-11-11 18:57")])
    assert e.occupancy.at(local("2026-11-11 19:00")).state == "home"


def test_a_nurse_leaving_while_the_resident_sleeps_is_not_the_resident_leaving() -> None:
    e = engine()
    feed(e, [("bed", "bed", True, "2026-11-10 22:30"),
             ("lock", "lock", {"state": "locked", "method": "key", "user": None,
                               "credential": None}, "2026-11-10 22:31")])
    unlock = {"state": "unlocked", "method": "keypad", "user": 2, "credential": "keypad:2"}
    lock = {"state": "locked", "method": "keypad", "user": 2, "credential": "keypad:2"}
    feed(e, [("lock", "lock", unlock, "2026-11-11 02:00"),
             ("door", "contact", "open", "2026-11-11 02:00:05"),
             ("door", "contact", "closed", "2026-11-11 02:00:15"),
             ("hall", "motion", True, "2026-11-11 02:00:20"),
             ("door", "contact", "open", "2026-11-11 02:08"),
             ("door", "contact", "closed", "2026-11-11 02:08:10"),
             ("lock", "lock", lock, "2026-11-11 02:08:20")])
    e.tick(local("2026-11-11 03:00"))
    assert e.occupancy.at(local("2026-11-11 03:00")).state == "home"


def test_no_inactivity_during_a_daytime_absence_and_the_clock_restarts_at_home() -> None:
    e = engine()
    feed(e, [("kitchen", "motion", True, "2026-11-10 08:00")])
    e.observe(obs("door", "contact", "closed", "2026-11-10 08:01"))
    leave(e, "2026-11-10 09:00")
    assert raised(e.tick(local("2026-11-10 17:00"))) == []
    feed(e, [("door", "contact", "open", "2026-11-10 17:30"),
             ("hall", "motion", True, "2026-11-10 17:30:40")])
    assert raised(e.tick(local("2026-11-10 21:30:39"))) == []
    assert raised(e.tick(local("2026-11-10 21:30:40"))) == [
        ("inactivity", local("2026-11-10 21:30:40"), 2)]


def test_not_home_at_night_once_a_night_cleared_by_coming_home() -> None:
    e = engine()
    feed(e, [("kitchen", "motion", True, "2026-11-10 18:00"),
             ("door", "contact", "closed", "2026-11-10 18:01")])
    leave(e, "2026-11-10 20:00")
    assert raised(e.tick(local("2026-11-10 22:59"))) == []
    got = e.tick(local("2026-11-10 23:00"))
    assert raised(got) == [("not_home_at_night", local("2026-11-10 23:00"), 2)]
    assert got[0].key == "not_home_at_night:2026-11-10"
    assert got[0].detail["away_since"] == local("2026-11-10 20:00:15").isoformat()
    assert raised(e.tick(local("2026-11-11 03:00"))) == []  # judged once a night
    back = feed(e, [("door", "contact", "open", "2026-11-11 03:10"),
                    ("hall", "motion", True, "2026-11-11 03:10:30")])
    assert [(d.action, d.key) for d in back if d.kind == "not_home_at_night"] == [
        ("clear", "not_home_at_night:2026-11-10")]


def test_planned_absence_raises_nothing_and_says_so() -> None:
    e = engine()
    e.set_planned([PlannedAbsence(local("2026-11-10 10:00"), local("2026-11-12 12:00"),
                                  "korttidsboende")])
    feed(e, [("kitchen", "motion", True, "2026-11-10 08:00"),
             ("door", "contact", "closed", "2026-11-10 08:01")])
    leave(e, "2026-11-10 10:30")
    assert raised(e.tick(local("2026-11-11 12:00"))) == []
    occ = e.occupancy.at(local("2026-11-11 12:00"))
    assert (occ.state, occ.source) == ("away", "planned")
    assert occ.planned is not None and occ.planned.reason == "korttidsboende"
    # The planned absence is over and she is not back: tonight that is an alert.
    assert raised(e.tick(local("2026-11-12 23:00"))) == [
        ("not_home_at_night", local("2026-11-12 23:00"), 2)]


def test_a_home_that_cannot_tell_away_stays_unknown_and_says_why() -> None:
    devices = {k: v for k, v in DEVICES.items() if k not in ("door", "lock")}
    e = engine(replace(SETTINGS, devices=devices))
    e.observe(obs("kitchen", "motion", True, "2026-11-10 08:00"))
    occ = e.occupancy.at(local("2026-11-10 09:00"))
    assert (occ.state, occ.can_tell) == ("unknown", False)
    assert occ.reason is not None and "exterior door" in occ.reason


# --- bathroom ---------------------------------------------------------------------------------

def test_a_stray_bathroom_pulse_while_asleep_is_nothing() -> None:
    e = engine()
    feed(e, [("kitchen", "motion", True, "2026-11-10 21:30"),
             ("bed", "bed", True, "2026-11-10 22:30"),
             ("bath", "motion", True, "2026-11-11 02:00")])
    assert raised(e.tick(local("2026-11-11 04:00"))) == []
    # No bed sensor and nothing moved for hours before: a lone pulse starts nothing either.
    e = engine(replace(SETTINGS, devices={k: v for k, v in DEVICES.items() if k != "bed"}))
    feed(e, [("kitchen", "motion", True, "2026-11-10 22:00"),
             ("bath", "motion", True, "2026-11-11 02:00")])
    assert raised(e.tick(local("2026-11-11 04:00"))) == []


def test_a_shower_with_movement_is_not_an_alert_until_twice_the_limit() -> None:
    e = engine()
    feed(e, [("hall", "motion", True, "2026-11-10 09:00")])
    t = local("2026-11-10 09:01")
    got: list[Decision] = []
    while t < local("2026-11-10 10:30"):
        got += e.observe(Observation(R, "bath", "motion", True, t, "bathroom"))
        t += timedelta(minutes=2)
    # 30 min in at 09:31 but moving all along; 2 x 30 min after the entry: 10:01.
    assert raised(got) == [("bathroom_long", local("2026-11-10 10:01"), 2)]
    assert next(d for d in got if d.kind == "bathroom_long").detail["moving"] is True


def test_bathroom_stay_ends_with_movement_elsewhere_and_says_what_started_it() -> None:
    e = engine()
    feed(e, [("hall", "motion", True, "2026-11-10 09:00"),
             ("bath", "motion", True, "2026-11-10 09:02"),
             ("fridge", "contact", "open", "2026-11-10 09:20")])  # a cupboard is elsewhere
    assert raised(e.tick(local("2026-11-10 10:30"))) == []
    e = engine()
    got = feed(e, [("hall", "motion", True, "2026-11-10 09:00"),
                   ("bath", "motion", True, "2026-11-10 09:02"),
                   ("bath", "motion", True, "2026-11-10 09:10"),
                   ("hall", "motion", True, "2026-11-10 09:45")])
    d = next(x for x in got if x.kind == "bathroom_long")
    assert d.ts == local("2026-11-10 09:32")
    assert d.detail["started_by"] == "movement elsewhere, then here"
    assert d.detail["last_movement_there"] == local("2026-11-10 09:10").isoformat()


# --- bed exits ----------------------------------------------------------------------------------

def test_bed_exit_graded_by_movement() -> None:
    e = engine()
    got = feed(e, [("bed", "bed", True, "2026-11-10 22:30"),
                   ("bed", "bed", False, "2026-11-11 01:00"),
                   ("kitchen", "motion", True, "2026-11-11 01:05"),
                   ("kitchen", "motion", True, "2026-11-11 01:15")])
    got += e.tick(local("2026-11-11 02:00"))
    # Up and moving at 01:20 (priority 3); no movement since 01:15: 01:25 priority 2,
    # 01:55 priority 1.
    assert raised(got) == [("bed_exit_no_return", local("2026-11-11 01:20"), 3),
                           ("bed_exit_no_return", local("2026-11-11 01:25"), 2),
                           ("bed_exit_no_return", local("2026-11-11 01:55"), 1)]
    quiet = engine(replace(SETTINGS, bed_exit_when_moving="none"))
    got = feed(quiet, [("bed", "bed", True, "2026-11-10 22:30"),
                       ("bed", "bed", False, "2026-11-11 01:00"),
                       ("kitchen", "motion", True, "2026-11-11 01:18"),
                       ("bed", "bed", True, "2026-11-11 01:26")])
    assert raised(got) == []  # up and moving at the limit, back before ten still minutes


def test_a_repeated_not_in_bed_report_is_not_a_bed_exit() -> None:
    """The zigbee bed mat's hourly report repeats `false` while the resident is still up."""
    e = engine()
    feed(e, [("bed", "bed", False, "2026-11-10 20:00"),
             ("kitchen", "motion", True, "2026-11-10 22:20"),
             ("bed", "bed", False, "2026-11-10 22:30")])  # the check-in
    assert raised(e.tick(local("2026-11-10 23:30"))) == []


def test_getting_up_for_the_day_at_the_usual_time_is_not_watched() -> None:
    e = engine(replace(SETTINGS, rise_time=time(5, 0)))
    feed(e, [("bed", "bed", True, "2026-11-10 22:30"),
             ("bed", "bed", False, "2026-11-11 04:31")])  # 29 min before 05:00: up
    assert raised(e.tick(local("2026-11-11 06:00"))) == []
    e = engine(replace(SETTINGS, rise_time=time(5, 0)))
    feed(e, [("bed", "bed", True, "2026-11-10 22:30"),
             ("bed", "bed", False, "2026-11-11 04:29")])
    assert raised(e.tick(local("2026-11-11 06:00")))[0][:2] == (
        "bed_exit_no_return", local("2026-11-11 04:49"))


def test_the_usual_rise_is_learnt_from_fourteen_nights() -> None:
    e = engine()
    day = date(2026, 11, 1)
    for n in range(6):  # up at 05:00-05:10 on six mornings
        evening = day + timedelta(days=n)
        feed(e, [("bed", "bed", True, f"{evening} 22:30"),
                 ("bed", "bed", False, f"{evening + timedelta(days=1)} 05:0{n}"),
                 ("kitchen", "motion", True, f"{evening + timedelta(days=1)} 05:1{n}")])
        e.tick(local(f"{evening + timedelta(days=1)} 12:30"))
    _, rises = e.take_facts()
    assert [r.at.astimezone(TZ).strftime("%H:%M") for r in rises] == [
        f"05:0{n}" for n in range(6)]
    assert e.rise.usual(day + timedelta(days=6)) == 7 * 60 + 2.5  # minutes after 22:00
    evening = day + timedelta(days=6)
    feed(e, [("bed", "bed", True, f"{evening} 22:30"),
             ("bed", "bed", False, f"{evening + timedelta(days=1)} 04:40")])
    assert raised(e.tick(local(f"{evening + timedelta(days=1)} 06:00"))) == []


def test_a_bed_sensed_by_motion_over_it() -> None:
    """CASAS homes: movement over the bed is in bed, movement outside the bedroom is out."""
    devices = {k: v for k, v in DEVICES.items() if k != "bed"}
    devices["bed-pir"] = DeviceInfo("bed-pir", "bedroom", False, 90000, frozenset({"motion"}),
                                    bed=True)
    devices["bedroom"] = DeviceInfo("bedroom", "bedroom", False, 90000, frozenset({"motion"}))
    e = engine(replace(SETTINGS, devices=devices))
    got = feed(e, [("bed-pir", "motion", True, "2026-11-10 23:00"),
                   ("bedroom", "motion", True, "2026-11-11 01:00"),  # same room: no change
                   ("kitchen", "motion", True, "2026-11-11 02:00")], devices)
    assert e.bed.in_bed is False and e.bed.since == local("2026-11-11 02:00")
    got += e.tick(local("2026-11-11 02:30"))
    assert raised(got)[0] == ("bed_exit_no_return", local("2026-11-11 02:20"), 2)
    back = feed(e, [("bed-pir", "motion", True, "2026-11-11 02:35")], devices)
    assert [d.action for d in back if d.kind == "bed_exit_no_return"] == ["clear"]
