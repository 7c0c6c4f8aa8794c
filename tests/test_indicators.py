"""IBIC indicators, follow-up proposals and goal links as pure functions, on hand-made
facts whose right answers are worked out in the comments (no database, no broker)."""

from __future__ import annotations

from datetime import date

import pytest

from detectors.absence import out_of_home
from gateway.config.registry import Goal
from gateway.ibic.followup import propose
from gateway.ibic.indicators import (
    AlertFact,
    CheckFact,
    Facts,
    MovementFact,
    OutFact,
    Span,
    Value,
    VisitFact,
    compute,
)
from gateway.ibic.links import goals_for_alert

H = 3_600_000
M = 60_000
BASE = 1_793_577_600_000  # 2026-11-02 00:00 UTC
D = [date(2026, 11, 2 + i) for i in range(4)]


def at(day: int, hours: float) -> int:
    return BASE + day * 24 * H + int(hours * H)


def facts() -> Facts:
    """Four dates; nights and days 0-2 have data, night and day 3 have none.

    night 0: in bed 22:30, up 23:00, back 23:10 (independent); staff visit 01:00-01:08
             while in bed (disturbed); checks ok, ok, ok
    night 1: up 02:00, back 02:45 (not within 20 min); two alerts, outcomes called and
             no_action_needed (no intervention); checks ok, attention, ok
    night 2: up 03:00, staff visit 03:02-03:06, back 03:05 (returned, not independent);
             up 06:50 for the day (no return); checks unknown
    days: 0 out 15:00-16:00 (geofence), 1 out 10:00-10:30 (door), 2 out from 20:00 and
          not back
    """
    nights = {d: Span(at(i, 22), at(i, 31)) for i, d in enumerate(D)}
    days = {d: Span(at(i, 0), at(i + 1, 0)) for i, d in enumerate(D)}
    observed = sorted([at(i, h) for i in range(3) for h in (9, 23)])
    bed = [(at(0, 22.5), True), (at(0, 23), False), (at(0, 23) + 10 * M, True),
           (at(1, 26), False), (at(1, 26) + 45 * M, True),
           (at(2, 27), False), (at(2, 27) + 5 * M, True), (at(2, 30) + 50 * M, False)]
    return Facts(
        resident_id="r-1", nights=nights, days=days, observed_ms=observed, bed=bed,
        has_bed_sensor=True,
        out=[OutFact(at(0, 15), at(0, 16), "geofence"), OutFact(at(1, 10), at(1, 10.5), "door"),
             OutFact(at(2, 20), None, "geofence")],
        visits=[VisitFact(at(0, 25), at(0, 25) + 8 * M),
                VisitFact(at(2, 27) + 2 * M, at(2, 27) + 6 * M)],
        alerts=[AlertFact(1, "bed_exit_no_return", at(1, 26.4), at(1, 26.4) + 10_000,
                          at(1, 26.4) + 70_000, at(1, 26.4) + 600_000, "no_action_needed"),
                # resolved (called) after 120 s without being acknowledged first
                AlertFact(2, "door_open_night", at(1, 27), at(1, 27), None,
                          at(1, 27) + 120_000, "called")],
        checks=[CheckFact(D[0], 0, "ok"), CheckFact(D[0], 1, "ok"), CheckFact(D[0], 2, "ok"),
                CheckFact(D[1], 3, "ok"), CheckFact(D[1], 4, "attention"),
                CheckFact(D[1], 5, "ok"), CheckFact(D[2], 6, "unknown"),
                # during a planned absence: judged nothing, neither passed nor failed
                CheckFact(D[2], 7, "away")],
        bed_exit_limit_ms=20 * M)


@pytest.mark.parametrize(("ident", "kind", "value", "n", "details"), [
    # nights 0 and 2 had staff visits; night 1's alerts did not bring staff in: 1 of 3
    ("nights_without_staff_intervention", None, 0.3333, 3,
     {"nights_without_data": 1, "nights": 3, "with_intervention": 2}),
    ("digital_checks_passed", None, 0.7143, 7,
     {"ok": 5, "attention": 1, "unknown": 1, "away": 1}),
    ("alerts_per_night", None, 0.6667, 3,
     {"nights_without_data": 1, "alerts": 2,
      "by_kind": {"bed_exit_no_return": 1, "door_open_night": 1}}),
    ("alerts_per_night", "door_open_night", 0.3333, 3,
     {"nights_without_data": 1, "alerts": 1, "by_kind": {"door_open_night": 1}}),
    ("night_alerts_per_week", None, 4.6667, 3,
     {"nights_without_data": 1, "alerts": 2,
      "by_kind": {"bed_exit_no_return": 1, "door_open_night": 1}}),
    # exits: 23:00 (back in 10 min, alone), 02:00 (45 min), 03:00 (5 min, staff there),
    # 06:50 (for the day)
    ("independent_bed_exits_returned", None, 0.3333, 3,
     {"nights_without_data": 1, "exits": 4, "returned_within_limit": 2,
      "independent_returned": 1, "limit_minutes": 20}),
    ("physical_night_visits", None, 0.6667, 3,
     {"nights_without_data": 1, "visits": 2, "disturbed_nights": 1}),
    ("sleep_disturbed_nights", None, 0.3333, 3,
     {"nights_without_data": 1, "visits": 2, "disturbed_nights": 1}),
    # three walks start on days 0-2, two came back: 2 * 7 / 3 days
    ("walks_returned_home", None, 4.6667, 3,
     {"days_without_data": 1, "days": 3, "walks": 3, "returned": 2, "not_returned": 1,
      "by_source": {"geofence": 2, "door": 1}}),
    # 1 h + 0.5 h + 4 h (20:00 to midnight, still out) over 3 days
    ("time_out_of_home", None, 1.8333, 3, {"days_without_data": 1, "days": 3, "hours": 5.5}),
    # acknowledged after 60 s; resolved after 120 s
    ("response_time", None, 90.0, 2,
     {"alerts": 2, "responded": 2, "not_responded": 0, "p90_seconds": 120.0}),
])
def test_indicator_values_on_known_facts(ident: str, kind: str | None, value: float, n: int,
                                         details: dict[str, object]) -> None:
    v = compute(ident, facts(), D, kind)
    assert (v.status, v.value, v.n, v.details) == ("ok", value, n, details)


def test_no_data_and_not_available_are_never_values() -> None:
    f = facts()
    quiet = compute("nights_without_staff_intervention", f, [D[3]])
    assert (quiet.status, quiet.value, quiet.details["nights_without_data"]) == ("no_data", None, 1)
    assert compute("digital_checks_passed", f, [D[3]]).status == "no_data"
    for ident in ("walking_speed", "fall_risk_level"):
        v = compute(ident, f, D)  # no movement features stored for these days
        assert (v.status, v.value) == ("no_data", None)
        assert v.reason
    f.has_bed_sensor, f.bed = False, []
    assert compute("independent_bed_exits_returned", f, D).status == "not_available"


def test_walking_speed_and_fall_risk_level() -> None:
    f = facts()
    f.movement = {D[0]: MovementFact(58.0, "low"), D[1]: MovementFact(None, "moderate"),
                  D[2]: MovementFact(52.0, None), D[3]: MovementFact(61.0, "high")}
    speed = compute("walking_speed", f, D)
    # Median of 58, 52, 61 = 58; one day without a speed.
    assert (speed.status, speed.value, speed.n) == ("ok", 58.0, 3)
    assert speed.details["days_without_speed"] == 1
    level = compute("fall_risk_level", f, D)
    # low 0, moderate 1, high 2 over three scored days: mean 1.0.
    assert (level.status, level.value, level.n) == ("ok", 1.0, 3)
    assert level.details["days_not_scored"] == 1 and level.details["high"] == 1


def test_out_of_home_from_door_and_geofence() -> None:
    """A night-time walk out of the door (no movement inside for 40 min, back with
    movement), a staff visit (movement inside right after the door), and a geofence walk
    that overlaps a door absence (one absence)."""
    t0 = at(0, 23)
    rows = [
        (t0 - 30_000, "motion", "hall", True),
        (t0, "contact", "door", "open"), (t0 + 15_000, "contact", "door", "closed"),
        (t0 + 40 * M, "contact", "door", "open"), (t0 + 40 * M + 15_000, "contact", "door",
                                                   "closed"),
        (t0 + 40 * M + 20_000, "motion", "hall", True),
        # staff visit: door, movement inside, door again 8 min later, then bed rest
        (at(0, 26), "contact", "door", "open"), (at(0, 26) + 10_000, "contact", "door", "closed"),
        (at(0, 26) + 20_000, "motion", "hall", True),
        (at(0, 26) + 8 * M, "contact", "door", "open"),
        (at(0, 26) + 8 * M + 10_000, "contact", "door", "closed"),
        # day walk: out of the door, geofence leave/enter, back in the door, movement
        (at(1, 14), "contact", "door", "open"), (at(1, 14) + 10_000, "contact", "door", "closed"),
        (at(1, 14) + 3 * M, "geofence", "alarm", {"event": "leave", "region": "home"}),
        (at(1, 15), "geofence", "alarm", {"event": "enter", "region": "home"}),
        (at(1, 15) + 2 * M, "contact", "door", "open"),
        (at(1, 15) + 2 * M + 10_000, "contact", "door", "closed"),
        (at(1, 15) + 3 * M, "motion", "hall", True),
        (at(1, 18), "motion", "hall", True),
    ]
    got = out_of_home(rows, {"door"}, at(2, 0))
    assert got == [OutFact(t0, t0 + 40 * M, "door"),
                   OutFact(at(1, 14), at(1, 15) + 2 * M, "geofence")]


def goal(indicators: list[dict[str, object]]) -> Goal:
    return Goal.model_validate({"id": "g-1", "text": "t", "life_area": "trygghet",
                                "start": "2026-09-01", "follow_up": "2026-12-01",
                                "indicators": indicators})


def val(ident: str, value: float | None) -> Value:
    return Value(ident, value, "ok" if value is not None else "no_data", "share")


def test_follow_up_proposals() -> None:
    g = goal([{"id": "nights_without_staff_intervention", "target": 0.9},
              {"id": "alerts_per_night", "target": 0.5, "direction": "at_most"}])
    ids = ("nights_without_staff_intervention", "alerts_per_night")
    both_met = [val(ids[0], 0.95), val(ids[1], 0.2)]
    before = [val(ids[0], 0.1), val(ids[1], 2.0)]
    assert propose(g, both_met, before)[0] == "achieved"
    status, ev = propose(g, [val(ids[0], 0.5), val(ids[1], 0.9)], before)
    assert status == "partly_achieved"  # neither met, both moved towards the target
    assert [(r["met"], r["improved"]) for r in ev["indicators"]] == [(False, True),
                                                                     (False, True)]
    assert ev["window"] == ["2026-11-03", "2026-11-30"]
    assert ev["baseline"] == ["2026-09-01", "2026-09-28"]
    assert propose(g, [val(ids[0], 0.05), val(ids[1], 3.0)], before)[0] == "not_achieved"
    # one measured and met, the other not measurable: at most partly achieved
    assert propose(g, [val(ids[0], 0.95), val(ids[1], None)], before)[0] == "partly_achieved"
    status, ev = propose(g, [val(ids[0], None), val(ids[1], None)], before)
    assert status is None and "a person must assess" in ev["reason"]


def test_alerts_link_to_the_goals_they_concern() -> None:
    walk = Goal.model_validate({"id": "walk", "text": "Walk on her own", "life_area": "d4",
                                "icf": "d460", "start": "2026-11-01", "follow_up": "2027-02-01"})
    night = goal([{"id": "nights_without_staff_intervention", "target": 0.9}])
    toilet = Goal.model_validate({
        "id": "toilet", "text": "Toilet", "life_area": "d5", "icf": "d530",
        "start": "2026-11-01", "follow_up": "2027-02-01",
        "indicators": [{"id": "alerts_per_night", "kind": "bathroom_long", "target": 0.1,
                        "direction": "at_most"}]})
    goals = [walk, night, toilet]
    assert goals_for_alert(goals, "door_open_night", date(2026, 11, 20)) == ["walk", "g-1"]
    assert goals_for_alert(goals, "bathroom_long", date(2026, 11, 20)) == ["g-1", "toilet"]
    assert goals_for_alert(goals, "battery_low", date(2026, 11, 20)) == []
    # before the walking goal started, after the night goal's follow-up
    assert goals_for_alert(goals, "door_open_night", date(2026, 10, 1)) == ["g-1"]
    assert goals_for_alert(goals, "door_open_night", date(2027, 1, 1)) == ["walk"]
