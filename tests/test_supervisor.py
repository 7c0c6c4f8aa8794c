"""Digital night checks on the engine's clock: pure logic, expected times worked by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from detectors.engine import ResidentEngine
from detectors.model import DeviceInfo, NightWindow, Observation, ResidentSettings, night_of
from detectors.supervisor import CheckEntry, Plan

TZ = ZoneInfo("Europe/Stockholm")
R = "r-1"


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ).astimezone(UTC)


DEVICES = {
    "bed": DeviceInfo("bed", "bedroom", False, 900, frozenset({"bed"})),
    "pir-bed": DeviceInfo("pir-bed", "bedroom", False, 4000, frozenset({"motion"})),
    "pir-bath": DeviceInfo("pir-bath", "bathroom", False, 4000, frozenset({"motion"})),
    "door": DeviceInfo("door", "entrance", True, 4000, frozenset({"contact"})),
}
SETTINGS = ResidentSettings(R, TZ, NightWindow.parse("22:00", "07:00"), DEVICES)
PLAN = Plan(("23:00", "02:00", "05:00"),
            ("in_bed", "door_closed", "not_in_bathroom_long", "sensors_online"),
            recheck_minutes=15, replaces_physical_visits=True)


def obs(device: str, kind: str, value: Any, when: datetime) -> Observation:
    return Observation(R, device, kind, value, when, DEVICES[device].room)


def asleep_night(e: ResidentEngine, evening: str = "2026-11-10",
                 until: datetime | None = None) -> list[CheckEntry]:
    """Bed at 22:10, every device reporting every 10 minutes until 07:00."""
    start = local(f"{evening} 21:00")
    e.observe(obs("door", "contact", "closed", start))
    e.observe(obs("pir-bed", "motion", True, start + timedelta(minutes=60)))
    e.observe(obs("bed", "bed", True, start + timedelta(minutes=70)))
    t = start + timedelta(minutes=80)
    end = until or start + timedelta(hours=10)
    entries: list[CheckEntry] = []
    while t < end:
        e.observe(obs("bed", "bed", True, t))
        e.seen("pir-bed", t)
        e.seen("pir-bath", t)
        e.seen("door", t)
        entries += e.take_checks()
        t += timedelta(minutes=10)
    return entries


def test_asleep_resident_is_ok_at_every_check() -> None:
    e = ResidentEngine(SETTINGS, local("2026-11-10 20:00"), PLAN)
    entries = asleep_night(e)
    assert [(x.due, x.result.outcome, x.attempt, x.alert, x.late) for x in entries] == [
        (local("2026-11-10 23:00"), "ok", 1, None, False),
        (local("2026-11-11 02:00"), "ok", 1, None, False),
        (local("2026-11-11 05:00"), "ok", 1, None, False)]
    assert all(x.night == date(2026, 11, 10) for x in entries)
    # Evaluated on the resident's clock at the first observation after the due time.
    assert entries[0].evaluated == local("2026-11-10 23:00")
    bed = next(ev for ev in entries[0].result.evidence if ev["criterion"] == "in_bed")
    assert bed["device_id"] == "bed" and bed["value"] is True


def test_long_bathroom_stay_is_attention_and_asks_for_check_failed() -> None:
    e = ResidentEngine(SETTINGS, local("2026-11-10 20:00"), PLAN)
    asleep_night(e, until=local("2026-11-11 01:20"))
    e.observe(obs("bed", "bed", False, local("2026-11-11 01:21")))
    e.observe(obs("pir-bath", "motion", True, local("2026-11-11 01:22")))
    e.seen("door", local("2026-11-11 01:50"))
    e.seen("pir-bed", local("2026-11-11 01:50"))
    e.observe(obs("bed", "bed", False, local("2026-11-11 01:59")))  # the mat reports empty
    e.tick(local("2026-11-11 02:00"))
    [entry] = e.take_checks()
    assert (entry.result.outcome, entry.alert, entry.final) == ("attention", "check_failed",
                                                                True)
    assert "in the bathroom for 38 min" in entry.result.reasons
    assert any(r.startswith("out of bed for 39 min") for r in entry.result.reasons)


def test_dead_bed_sensor_is_unknown_then_rechecked_then_check_unknown() -> None:
    e = ResidentEngine(SETTINGS, local("2026-11-10 20:00"), PLAN)
    asleep_night(e, until=local("2026-11-11 00:00"))  # last bed message 23:50
    t = local("2026-11-11 00:00")
    while t <= local("2026-11-11 02:30"):  # the others keep reporting, the bed is silent
        e.seen("pir-bed", t)
        e.seen("pir-bath", t)
        e.seen("door", t)
        t += timedelta(minutes=5)
        e.tick(t)
    first, second = e.take_checks()
    assert (first.due, first.evaluated, first.result.outcome, first.final, first.alert) == (
        local("2026-11-11 02:00"), local("2026-11-11 02:00"), "unknown", False, None)
    assert first.recheck_at == local("2026-11-11 02:15")
    assert "bed sensor bed silent" in first.result.reasons
    assert (second.due, second.attempt, second.evaluated, second.result.outcome,
            second.alert) == (local("2026-11-11 02:00"), 2, local("2026-11-11 02:15"),
                              "unknown", "check_unknown")


def test_recheck_that_finds_all_well_ends_without_alert() -> None:
    e = ResidentEngine(SETTINGS, local("2026-11-10 20:00"), PLAN)
    asleep_night(e, until=local("2026-11-11 00:00"))
    e.tick(local("2026-11-11 02:00"))
    [first] = e.take_checks()
    assert first.result.outcome == "unknown"
    e.observe(obs("bed", "bed", True, local("2026-11-11 02:10")))  # the mat is back
    for d in ("pir-bed", "pir-bath", "door"):
        e.seen(d, local("2026-11-11 02:10"))
    e.tick(local("2026-11-11 02:15"))
    [second] = e.take_checks()
    assert (second.attempt, second.result.outcome, second.alert, second.final) == (
        2, "ok", None, True)


def test_restart_skips_journaled_checks_and_marks_missed_ones_late() -> None:
    e = ResidentEngine(SETTINGS, local("2026-11-11 03:10"), PLAN)
    assert e.supervisor is not None
    # The journal holds 23:00 (done) and 02:00's first attempt (unknown, re-check 02:15).
    e.supervisor.restore([local("2026-11-10 23:00")],
                         {local("2026-11-11 02:00"): local("2026-11-11 02:15")},
                         newest=local("2026-11-11 02:00"))
    e.supervisor.started = local("2026-11-11 03:10")
    e.observe(obs("bed", "bed", True, local("2026-11-11 03:10")))
    e.tick(local("2026-11-11 03:10"))
    got = [(x.due, x.attempt, x.late) for x in e.take_checks()]
    assert got == [(local("2026-11-11 02:00"), 2, True)]
    e.tick(local("2026-11-11 05:00"))
    assert [(x.due, x.late) for x in e.take_checks()] == [(local("2026-11-11 05:00"), False)]


def test_a_restart_after_a_whole_day_down_evaluates_the_last_24_hours_only() -> None:
    e = ResidentEngine(SETTINGS, local("2026-11-13 12:00"), PLAN)
    assert e.supervisor is not None
    e.supervisor.restore([local("2026-11-10 23:00")], {}, newest=local("2026-11-10 23:00"))
    e.supervisor.started = local("2026-11-13 12:00")
    e.tick(local("2026-11-13 12:00"))
    entries = e.take_checks()
    assert [x.due for x in entries] == [local("2026-11-12 23:00"), local("2026-11-13 02:00"),
                                        local("2026-11-13 05:00")]
    assert all(x.late and x.result.outcome == "unknown" for x in entries)


def test_first_data_from_an_earlier_night_rewinds_an_idle_schedule() -> None:
    e = ResidentEngine(SETTINGS, local("2026-11-12 15:00"), PLAN)
    e.tick(local("2026-11-12 15:00"))  # wall clock before any data: nothing due
    assert e.take_checks() == []
    assert e.supervisor is not None
    e.supervisor.rewind(local("2026-11-10 21:00"))
    entries = asleep_night(e)
    assert [x.result.outcome for x in entries] == ["ok", "ok", "ok"]


def test_night_of() -> None:
    assert night_of(local("2026-11-11 02:00"), TZ) == date(2026, 11, 10)
    assert night_of(local("2026-11-10 23:00"), TZ) == date(2026, 11, 10)
    assert night_of(local("2026-11-10 12:00"), TZ) == date(2026, 11, 10)
