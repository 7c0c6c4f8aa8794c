"""Rule detectors and staff visits: pure logic, event time, expected times worked by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.engine import ResidentEngine
from detectors.model import Decision, DeviceInfo, NightWindow, Observation, ResidentSettings
from detectors.rules import Context, DeviceOffline

TZ = ZoneInfo("Europe/Stockholm")
R = "r-1"


def local(text: str) -> datetime:
    """A local Stockholm wall-clock time as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ).astimezone(UTC)


DEVICES = {
    "bed": DeviceInfo("bed", "bedroom", False, 900, frozenset({"bed", "fall", "heartbeat"})),
    "hall": DeviceInfo("hall", "hall", False, 90000, frozenset({"motion", "battery"})),
    "bath": DeviceInfo("bath", "bathroom", False, 90000, frozenset({"motion"})),
    "door": DeviceInfo("door", "entrance", True, 90000, frozenset({"contact", "availability"})),
    "lock": DeviceInfo("lock", "entrance", False, 90000, frozenset({"lock"})),
    "alarm": DeviceInfo("alarm", None, False, 7200, frozenset({"position", "geofence", "sos"})),
}
SETTINGS = ResidentSettings(R, TZ, NightWindow.parse("22:00", "07:00"), DEVICES,
                            staff_credentials={"keypad:2": "s-17"})


def engine(settings: ResidentSettings = SETTINGS,
           start: str = "2026-11-10 20:00") -> ResidentEngine:
    return ResidentEngine(settings, local(start))


def obs(device: str, kind: str, value: Any, when: str) -> Observation:
    return Observation(R, device, kind, value, local(when), DEVICES[device].room)


def raised(decisions: list[Decision], offline: bool = False) -> list[tuple[str, datetime]]:
    """Raised kinds and times; link supervision only where a test is about it."""
    return [(d.kind, d.ts) for d in decisions
            if d.action == "raise" and (offline or d.kind != "device_offline")]


def test_sos_and_fall_raise_at_once() -> None:
    e = engine()
    assert raised(e.observe(obs("alarm", "sos", True, "2026-11-10 21:00"))) == [
        ("sos", local("2026-11-10 21:00"))]
    assert raised(e.observe(obs("bed", "fall", True, "2026-11-10 21:01"))) == [
        ("fall", local("2026-11-10 21:01"))]
    assert raised(e.observe(obs("alarm", "sos", False, "2026-11-10 21:02"))) == []


def test_bed_exit_no_return_after_20_minutes_at_night() -> None:
    e = engine()
    e.observe(obs("bed", "bed", True, "2026-11-10 22:30"))
    e.observe(obs("bed", "bed", False, "2026-11-11 02:00"))
    assert raised(e.tick(local("2026-11-11 02:19:59"))) == []
    assert raised(e.tick(local("2026-11-11 02:20:00"))) == [
        ("bed_exit_no_return", local("2026-11-11 02:20"))]
    assert raised(e.tick(local("2026-11-11 02:30"))) == []  # once per occurrence
    back = e.observe(obs("bed", "bed", True, "2026-11-11 02:35"))
    assert [(d.action, d.kind) for d in back if d.kind != "device_offline"] == [
        ("clear", "bed_exit_no_return")]


def test_toilet_visit_that_returns_is_not_an_alert() -> None:
    e = engine()
    e.observe(obs("bed", "bed", False, "2026-11-11 03:00"))
    e.observe(obs("bath", "motion", True, "2026-11-11 03:01"))
    e.observe(obs("bed", "bed", True, "2026-11-11 03:12"))
    assert raised(e.tick(local("2026-11-11 04:00"))) == []


def test_getting_up_at_the_end_of_the_night_is_not_an_alert() -> None:
    e = engine()
    e.observe(obs("bed", "bed", False, "2026-11-11 06:45"))  # deadline 07:05, after 07:00
    assert raised(e.tick(local("2026-11-11 08:00"))) == []
    e2 = engine()
    e2.observe(obs("bed", "bed", False, "2026-11-11 06:39"))  # deadline 06:59, in the night
    assert raised(e2.tick(local("2026-11-11 06:59"))) == [
        ("bed_exit_no_return", local("2026-11-11 06:59"))]


def test_bed_exit_by_day_is_not_watched() -> None:
    e = engine()
    e.observe(obs("bed", "bed", False, "2026-11-11 14:00"))
    assert raised(e.tick(local("2026-11-11 15:00"))) == []


def test_door_open_night_unless_staff_visit() -> None:
    e = engine()
    assert raised(e.observe(obs("door", "contact", "open", "2026-11-11 01:00"))) == [
        ("door_open_night", local("2026-11-11 01:00"))]
    e.observe(obs("door", "contact", "closed", "2026-11-11 01:01"))
    # Staff visit: keypad user 2 = s-17 unlocks, opens, ... locks again.
    unlock = {"state": "unlocked", "method": "keypad", "user": 2, "credential": "keypad:2"}
    lock = {"state": "locked", "method": "keypad", "user": 2, "credential": "keypad:2"}
    e.observe(obs("lock", "lock", unlock, "2026-11-11 03:00"))
    assert raised(e.observe(obs("door", "contact", "open", "2026-11-11 03:00:05"))) == []
    sos = e.observe(obs("alarm", "sos", True, "2026-11-11 03:02"))
    assert sos[0].detail["during_visit"] == "s-17"
    e.observe(obs("door", "contact", "closed", "2026-11-11 03:07:50"))
    e.observe(obs("lock", "lock", lock, "2026-11-11 03:08"))
    visit = e.last_visit
    assert visit is not None
    assert (visit.staff_id, visit.seconds) == ("s-17", 480.0)
    assert raised(e.observe(obs("door", "contact", "open", "2026-11-11 04:00"))) == [
        ("door_open_night", local("2026-11-11 04:00"))]


def test_resident_unlocking_is_not_a_staff_visit() -> None:
    e = engine()
    own = {"state": "unlocked", "method": "keypad", "user": 7, "credential": "keypad:7"}
    e.observe(obs("lock", "lock", own, "2026-11-11 02:00"))
    assert raised(e.observe(obs("door", "contact", "open", "2026-11-11 02:00:10"))) == [
        ("door_open_night", local("2026-11-11 02:00:10"))]


def test_left_geofence() -> None:
    e = engine()
    leave = {"event": "leave", "region": "home"}
    enter = {"event": "enter", "region": "home"}
    assert raised(e.observe(obs("alarm", "geofence", leave, "2026-11-11 15:00"))) == []
    e.observe(obs("alarm", "geofence", enter, "2026-11-11 16:00"))
    assert raised(e.observe(obs("alarm", "geofence", leave, "2026-11-11 23:00"))) == [
        ("left_geofence", local("2026-11-11 23:00"))]
    back = e.observe(obs("alarm", "geofence", enter, "2026-11-11 23:30"))
    assert [d.action for d in back] == ["clear"]
    always = engine(replace(SETTINGS, geofence_alert="always"))
    assert raised(always.observe(obs("alarm", "geofence", leave, "2026-11-11 15:00"))) == [
        ("left_geofence", local("2026-11-11 15:00"))]


def test_inactivity_by_day() -> None:
    e = engine()
    e.observe(obs("hall", "motion", True, "2026-11-11 09:00"))
    assert raised(e.tick(local("2026-11-11 12:59"))) == []
    assert raised(e.tick(local("2026-11-11 13:00"))) == [("inactivity", local("2026-11-11 13:00"))]
    assert [d.action for d in e.observe(obs("hall", "motion", True, "2026-11-11 13:05"))] == [
        "clear"]


def test_a_door_repeating_its_state_is_not_activity() -> None:
    # zigbee2mqtt repeats a contact's cached state in every hourly battery report.
    e = engine()
    e.observe(obs("door", "contact", "closed", "2026-11-11 08:00"))
    e.observe(obs("hall", "motion", True, "2026-11-11 09:00"))
    for hour in (10, 11, 12):
        e.observe(obs("door", "contact", "closed", f"2026-11-11 {hour}:30"))
    assert raised(e.tick(local("2026-11-11 13:00"))) == [("inactivity", local("2026-11-11 13:00"))]
    back = e.observe(obs("door", "contact", "open", "2026-11-11 13:10"))  # a change is
    assert [d.action for d in back] == ["clear"]


def test_sleeping_late_counts_from_the_end_of_the_night() -> None:
    e = engine()
    e.observe(obs("bed", "bed", True, "2026-11-10 23:00"))
    assert raised(e.tick(local("2026-11-11 07:00"))) == []
    assert raised(e.tick(local("2026-11-11 10:59"))) == []
    assert raised(e.tick(local("2026-11-11 11:00"))) == [("inactivity", local("2026-11-11 11:00"))]


def test_no_inactivity_alert_while_away() -> None:
    e = engine()
    e.observe(obs("hall", "motion", True, "2026-11-11 09:00"))
    e.observe(obs("alarm", "geofence", {"event": "leave", "region": "home"}, "2026-11-11 09:05"))
    assert raised(e.tick(local("2026-11-11 15:00"))) == []


def test_bathroom_long() -> None:
    """Walked there (the hall 2 min before), then nothing moves: 30 minutes in, and more than
    10 minutes without movement there, is the alert."""
    e = engine()
    e.observe(obs("hall", "motion", True, "2026-11-11 01:58"))
    e.observe(obs("bath", "motion", True, "2026-11-11 02:00"))
    e.observe(obs("bath", "motion", False, "2026-11-11 02:01:30"))
    assert raised(e.tick(local("2026-11-11 02:29"))) == []
    assert raised(e.tick(local("2026-11-11 02:30"))) == [
        ("bathroom_long", local("2026-11-11 02:30"))]
    assert [d.action for d in e.observe(obs("hall", "motion", True, "2026-11-11 02:40"))] == [
        "clear"]


def test_device_offline_silent_and_availability() -> None:
    e = engine(start="2026-11-10 20:00")
    e.observe(obs("bed", "heartbeat", None, "2026-11-10 20:00"))
    # bed: 900 s interval; others are battery zigbee (25 h) or the alarm (2 h).
    assert raised(e.tick(local("2026-11-10 20:15")), offline=True) == []
    got = raised(e.tick(local("2026-11-10 20:15:01")), offline=True)
    assert got == [("device_offline", local("2026-11-10 20:15"))]
    assert raised(e.tick(local("2026-11-10 22:00:01")), offline=True) == [
        ("device_offline", local("2026-11-10 22:00"))]  # the alarm, never heard
    back = e.seen("bed", local("2026-11-10 22:10"))
    assert [(d.action, d.device_id) for d in back] == [("clear", "bed")]
    off = e.observe(obs("door", "availability", "offline", "2026-11-10 22:20"))
    assert [(d.action, d.kind, d.device_id) for d in off] == [
        ("raise", "device_offline", "door")]


def test_battery_low_with_hysteresis() -> None:
    e = engine()
    seq = [(50, []), (19, ["raise"]), (18, []), (25, []), (30, ["clear"]), (10, ["raise"])]
    for i, (pct, actions) in enumerate(seq):
        got = e.observe(obs("hall", "battery", pct, f"2026-11-11 12:0{i}"))
        assert [d.action for d in got if d.kind == "battery_low"] == actions, pct


def test_same_decisions_whatever_the_tick_rate() -> None:
    """A night replayed fast (ticks only at observations) raises what a live one does."""
    events = [obs("bed", "bed", True, "2026-11-10 22:30"),
              obs("bed", "bed", False, "2026-11-11 01:00"),
              obs("bath", "motion", True, "2026-11-11 01:01"),
              obs("hall", "motion", True, "2026-11-11 01:45"),
              obs("bed", "bed", True, "2026-11-11 01:46")]

    def run(step: timedelta | None) -> list[tuple[str, str, datetime]]:
        e = engine()
        out: list[Decision] = []
        now = events[0].ts
        for ev in events:
            while step is not None and now + step < ev.ts:
                now += step
                out += e.tick(now)
            out += e.observe(ev)
        return [(d.action, d.kind, d.ts, d.priority) for d in out
                if d.kind != "device_offline"]

    live = run(timedelta(seconds=1))
    assert live == run(None)
    # Out of bed 01:00, last movement 01:01 (the bathroom): 20 min out at 01:20 with 19 min
    # still (priority 2), 40 min still at 01:41 (priority 1); in the bathroom since 01:01,
    # 30 min at 01:31 with 30 min still there.
    assert live == [("raise", "bed_exit_no_return", local("2026-11-11 01:20"), 2),
                    ("raise", "bathroom_long", local("2026-11-11 01:31"), 2),
                    ("raise", "bed_exit_no_return", local("2026-11-11 01:41"), 1),
                    ("clear", "bathroom_long", local("2026-11-11 01:45"), 2),
                    ("clear", "bed_exit_no_return", local("2026-11-11 01:46"), 2)]


def test_night_window_across_dst_change() -> None:
    night = NightWindow.parse("22:00", "07:00")
    # 2026-10-25: clocks go back at 03:00 CEST to 02:00 CET; both 02:30s are night.
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)   # 02:30 CEST
    second = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET
    assert night.contains(first, TZ)
    assert night.contains(second, TZ)
    assert not night.contains(datetime(2026, 10, 25, 6, 30, tzinfo=UTC), TZ)  # 07:30 CET
    assert night.last_end_before(datetime(2026, 10, 25, 10, 0, tzinfo=UTC), TZ) == \
        datetime(2026, 10, 25, 6, 0, tzinfo=UTC)  # 07:00 CET


class _ExactOffline(DeviceOffline):
    """Reference: the silence check as first written, every link at every tick."""

    def tick(self, now: datetime, ctx: Context) -> list[Decision]:
        out = []
        for device_id, link in self.links.items():
            interval = timedelta(seconds=self.s.devices[device_id].report_interval_s)
            if not link.offline and now - link.last_seen > interval:
                link.offline, link.reason = True, "silent"
                out.append(self._decision("raise", f"{self.kind}:{device_id}",
                                          link.last_seen + interval, device_id,
                                          reason="silent", last_seen=link.last_seen.isoformat()))
        return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4000), st.sampled_from(["tick", *DEVICES]),
                          st.booleans()), max_size=60))
def test_device_offline_bound_gives_the_exact_answers(
        steps: list[tuple[int, str, bool]]) -> None:
    """tick() skips the links while the earliest deadline is ahead (a lower bound kept as
    messages arrive): it must raise exactly what checking every link every time raises,
    whatever the order of messages (late ones too), availability changes and ticks."""
    start = local("2026-11-10 20:00")
    fast, exact = DeviceOffline(SETTINGS, start), _ExactOffline(SETTINGS, start)
    ctx = Context(SETTINGS)
    now = start
    for seconds, what, flag in steps:
        now += timedelta(seconds=seconds)
        if what == "tick":
            got = [(d.key, d.ts) for d in fast.tick(now, ctx)]
            assert got == [(d.key, d.ts) for d in exact.tick(now, ctx)]
        else:
            when = now - timedelta(seconds=seconds // 2) if flag else now  # some arrive late
            available = seconds % 7 != 0
            assert [(d.action, d.key) for d in fast.seen(what, when, available)] == \
                [(d.action, d.key) for d in exact.seen(what, when, available)]
