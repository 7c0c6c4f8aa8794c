"""Digital night supervision, pure part: check times across DST, and check outcomes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from detectors.model import PlannedAbsence
from detectors.occupancy import Occupancy
from detectors.supervision import HomeState, Reading, check_instants, evaluate

TZ = ZoneInfo("Europe/Stockholm")
AT = datetime(2026, 11, 11, 1, 0, tzinfo=UTC)  # 02:00 local


def test_ordinary_night() -> None:
    got = check_instants(date(2026, 11, 10), ["23:00", "02:00", "05:00"], TZ)
    assert got == [datetime(2026, 11, 10, 22, 0, tzinfo=UTC),   # 23:00 CET
                   datetime(2026, 11, 11, 1, 0, tzinfo=UTC),    # 02:00 CET next morning
                   datetime(2026, 11, 11, 4, 0, tzinfo=UTC)]


def test_clocks_go_back_check_happens_once() -> None:
    # 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 occurs twice; the check happens once.
    got = check_instants(date(2026, 10, 24), ["02:30"], TZ)
    assert got == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]  # the first 02:30 (CEST)


def test_clocks_go_forward_check_happens_at_three() -> None:
    # 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does not exist; the check is at 03:00.
    got = check_instants(date(2026, 3, 28), ["02:30", "05:00"], TZ)
    assert got == [datetime(2026, 3, 29, 1, 0, tzinfo=UTC),   # 03:00 CEST
                   datetime(2026, 3, 29, 3, 0, tzinfo=UTC)]   # 05:00 CEST


def reading(dev: str, kind: str, value: object, minutes_ago: float, *,
            seen_ago: float | None = None, interval: int = 900,
            room: str | None = None) -> Reading:
    return Reading(dev, kind, value, AT - timedelta(minutes=minutes_ago),
                   AT - timedelta(minutes=minutes_ago if seen_ago is None else seen_ago),
                   interval, room)


def home(**kw: object) -> HomeState:
    bed = reading("bed", "bed", True, 180, seen_ago=3)
    door = reading("door", "contact", "closed", 300, seen_ago=40, interval=90000)
    pir = reading("bedroom-pir", "motion", True, 185, seen_ago=30, interval=90000,
                  room="bedroom")
    state = HomeState(bed=[bed], exterior_doors=[door], motion=[pir], links=[bed, door],
                      inside=pir, occupancy=Occupancy("home", AT - timedelta(hours=5),
                                                      "movement"))
    for k, v in kw.items():
        setattr(state, k, v)
    return state


PLAN = ["in_bed", "door_closed", "in_apartment", "not_in_bathroom_long", "sensors_online"]


def test_asleep_is_ok_with_evidence() -> None:
    r = evaluate(PLAN, AT, home())
    assert r.outcome == "ok"
    assert r.reasons == []
    bed = next(e for e in r.evidence if e["criterion"] == "in_bed")
    assert (bed["device_id"], bed["value"], bed["age_s"]) == ("bed", True, 180 * 60)


def test_out_of_bed_past_the_grace_is_attention() -> None:
    r = evaluate(PLAN, AT, home(bed=[reading("bed", "bed", False, 25, seen_ago=2)]))
    assert r.outcome == "attention"
    assert r.reasons == ["out of bed for 25 min"]


def test_briefly_up_and_moving_is_ok_but_not_without_movement() -> None:
    up = reading("bed", "bed", False, 4, seen_ago=2)
    moving = reading("bath-pir", "motion", True, 3, seen_ago=3, interval=90000,
                     room="bathroom")
    assert evaluate(PLAN, AT, home(bed=[up], motion=[moving])).outcome == "ok"
    still = evaluate(PLAN, AT, home(bed=[up]))  # last movement was before getting up
    assert still.outcome == "attention"
    assert still.reasons == ["out of bed for 4 min, no movement seen since"]


def test_long_in_the_bathroom_is_attention() -> None:
    bath = reading("bath-pir", "motion", True, 41, seen_ago=41, interval=90000,
                   room="bathroom")
    r = evaluate(PLAN, AT, home(bed=[reading("bed", "bed", False, 42, seen_ago=2)],
                                motion=[bath]))
    assert r.outcome == "attention"
    assert "in the bathroom for 41 min" in r.reasons


def test_dead_bed_sensor_is_unknown_never_ok() -> None:
    dead = reading("bed", "bed", True, 200, seen_ago=60)  # silent for 60 min, 15 allowed
    r = evaluate(PLAN, AT, home(bed=[dead], links=[dead]))
    assert r.outcome == "unknown"
    assert "bed sensor bed silent" in r.reasons
    assert "sensor bed silent" in r.reasons


def test_away_by_the_door_is_attention_and_just_gone_out_is_rechecked() -> None:
    door = reading("door", "contact", "closed", 20, seen_ago=20, interval=90000)
    up = reading("bed", "bed", False, 25, seen_ago=2)
    away = Occupancy("away", AT - timedelta(minutes=20), "door")
    r = evaluate(["in_apartment", "in_bed", "door_closed"], AT,
                 home(exterior_doors=[door], bed=[up], occupancy=away,
                      passage=AT - timedelta(minutes=20)))
    assert r.outcome == "attention"
    assert r.reasons == [f"not at home since {(AT - timedelta(minutes=20)).isoformat()} "
                         "(the exterior door and no movement inside since)"]
    # in_bed is not judged while away; the door still is.
    assert [e["criterion"] for e in r.evidence] == ["occupancy", "door_closed"]
    # The door used 4 minutes ago, nothing inside since: not yet known, so re-checked.
    r = evaluate(["in_apartment"], AT, home(exterior_doors=[door], bed=[up],
                                            passage=AT - timedelta(minutes=4)))
    assert (r.outcome, r.reasons) == ("unknown", [
        "the exterior door was used 4 min ago and nothing has moved inside since"])
    # Someone in bed is at home, whatever the door did (a staff visit leaving).
    assert evaluate(["in_apartment"], AT, home(passage=AT - timedelta(minutes=4))
                    ).outcome == "ok"


def test_planned_absence_is_away_and_judges_nothing() -> None:
    trip = PlannedAbsence(AT - timedelta(days=1), AT + timedelta(days=2), "sjukhusvistelse")
    r = evaluate(PLAN, AT, home(bed=[reading("bed", "bed", False, 25 * 60, seen_ago=2)],
                                occupancy=Occupancy("away", trip.start, "planned", trip)))
    assert (r.outcome, r.reasons) == ("away", ["away (planned): sjukhusvistelse"])
    assert r.evidence[0]["until"] == trip.end.isoformat()


def test_unknown_occupancy_is_never_ok() -> None:
    cannot = Occupancy("unknown", None, None, can_tell=False)
    r = evaluate(["in_apartment"], AT, home(bed=[], occupancy=cannot))
    assert r.outcome == "unknown"
    assert r.reasons == [cannot.reason]
    # Indoor contact sensors are presence evidence: a cupboard opened is someone at home.
    cupboard = reading("fridge", "contact", "open", 30, seen_ago=30, interval=90000,
                       room="kitchen")
    r = evaluate(["in_apartment"], AT, home(bed=[], inside=cupboard))
    assert r.outcome == "ok"
    assert r.evidence[0]["device_id"] == "fridge"


def test_attention_wins_over_unknown_and_empty_plan_is_unknown() -> None:
    dead_door = reading("door", "contact", "closed", 3000, seen_ago=3000, interval=90000 // 60)
    r = evaluate(["in_bed", "door_closed"], AT,
                 home(bed=[reading("bed", "bed", False, 30, seen_ago=1)],
                      exterior_doors=[dead_door]))
    assert r.outcome == "attention"
    assert evaluate([], AT, home()).outcome == "unknown"
