"""Movement features, model inputs, the rise rule and the CSV/artefact checks (pure parts
of the fall-risk model). Expected values are worked out by hand in the comments."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from detectors.features import DayFeatures, HomeSpec, daily
from detectors.risk import INPUTS, RiskModel, describe, inputs, level_of, rise
from gateway.errors import ConfigError
from gateway.risk.artefact import load, save
from gateway.risk.dataset import read_csv

TZ = ZoneInfo("Europe/Stockholm")
DAY = date(2026, 3, 10)
SPEC = HomeSpec({"pir-hall": "hall", "pir-kitchen": "kitchen", "pir-bath": "bathroom",
                 "pir-bed": "bedroom", "bed": "bedroom", "door": "entrance"},
                frozenset({"bed"}), frozenset({"door"}),
                HomeSpec.parse_distances({"hall-kitchen": 3.0, "hall-bathroom": 2.0,
                                          "bedroom-hall": 2.5}), TZ, time(22), time(7))


def ms(d: date, hh: int, mm: int = 0, ss: float = 0) -> int:
    return int(datetime.combine(d, time(hh, mm), TZ).timestamp() * 1000 + ss * 1000)


def walk(rows: list, t: int, a: str, b: str, seconds: float) -> None:
    """Onset in room a, then in room b `seconds` later; both clear 90 s after."""
    for dev, at in ((f"pir-{a}", t), (f"pir-{b}", t + int(seconds * 1000))):
        rows.append((at, "motion", dev, True))
        rows.append((at + 90_000, "motion", dev, False))


def test_walking_speed_from_transits() -> None:
    rows: list = []
    # Seven walks hall -> kitchen, 3.0 m: 5.0 s = 60 cm/s, 6.0 s = 50 cm/s, 4.0 s = 75 cm/s.
    # Interquartile mean of 50 50 50 60 60 60 75: drop 7 // 4 = 1 from each end, mean of
    # 50 50 60 60 60 = 56 (the median would be 60, the mean 57.86).
    for i, sec in enumerate((5.0, 5.0, 5.0, 6.0, 6.0, 6.0, 4.0)):
        walk(rows, ms(DAY, 9 + i), "hall", "kitchen", sec)
    # Not walks: a stop on the way (3 m in 30 s = 10 cm/s, below 20) ...
    walk(rows, ms(DAY, 16), "hall", "kitchen", 30)
    # ... a transit right after getting out of bed (standing up is not walking) ...
    rows.append((ms(DAY, 17), "bed", "bed", False))
    walk(rows, ms(DAY, 17, 0, 20), "hall", "kitchen", 2.0)
    # ... and one at night (23:00).
    walk(rows, ms(DAY, 23), "hall", "kitchen", 2.0)
    rows.sort(key=lambda r: r[0])
    f = daily(rows, SPEC, DAY, DAY)[0]
    assert f.transits == 7
    assert f.walking_speed == 56.0
    assert sorted(f.speeds) == [50.0, 50.0, 50.0, 60.0, 60.0, 60.0, 75.0]


def test_speed_needs_five_transits() -> None:
    rows: list = []
    for i in range(4):
        walk(rows, ms(DAY, 9 + i), "hall", "kitchen", 5.0)
    rows.sort(key=lambda r: r[0])
    f = daily(rows, SPEC, DAY, DAY)[0]
    assert f.transits == 4
    assert f.walking_speed is None  # measured, but too few walks to say


def test_night_features_and_time_in_bed() -> None:
    rows: list = [(ms(DAY, 21, 30), "bed", "bed", False)]
    # Evening bathroom visit before bed (22:10) does not count as nocturia.
    walk(rows, ms(DAY, 22, 10), "hall", "bath", 4)
    rows.append((ms(DAY, 22, 30), "bed", "bed", True))
    nxt = DAY + timedelta(days=1)
    # Two visits at 01:00 and 03:00 (bed exits), one visit split by 5 min (same visit).
    for hh in (1, 3):
        rows.append((ms(nxt, hh), "bed", "bed", False))
        walk(rows, ms(nxt, hh, 0, 20), "hall", "bath", 4)
        rows.append((ms(nxt, hh, 5), "motion", "pir-bath", True))
        rows.append((ms(nxt, hh, 6, 30), "motion", "pir-bath", False))
        rows.append((ms(nxt, hh, 10), "bed", "bed", True))
    rows.append((ms(nxt, 7), "bed", "bed", False))
    rows.sort(key=lambda r: r[0])
    f = daily(rows, SPEC, DAY, DAY)[0]
    assert f.night_bed_exits == 2
    assert f.night_bathroom_visits == 2
    # In bed 22:30-01:00, 01:10-03:00, 03:10-07:00 = 2.5 + 1.8333 + 3.8333 = 8.1667 h.
    assert f.time_in_bed == pytest.approx(8.1667, abs=0.001)
    # Activity counts the calendar day: the hall and bath onsets at 22:10 = 2 (the night
    # visits after midnight belong to the next day).
    assert f.activity == 2
    assert daily(rows, SPEC, DAY + timedelta(days=1), DAY + timedelta(days=1))[0].activity \
        == 6  # hall, bath, and bath again at hh:05 after it cleared; twice


def test_no_data_is_not_zero() -> None:
    f = daily([], SPEC, DAY, DAY)[0]
    assert f.observations == 0
    assert f.activity is None and f.walking_speed is None and f.night_bed_exits is None


def hist(speeds: list[float | None], bath: float = 1.0) -> list[DayFeatures]:
    start = DAY - timedelta(days=len(speeds) - 1)
    return [DayFeatures(start + timedelta(days=i), observations=100, walking_speed=s,
                        activity=60, room_transitions=40, night_bed_exits=1,
                        night_bathroom_visits=int(bath), time_in_bed=8.0, time_out=1.0)
            for i, s in enumerate(speeds)]


def test_inputs_against_own_baseline() -> None:
    # 28 baseline days at 60 cm/s, then 7 days at 54: 6 cm/s (10%) slower.
    h = hist([60.0] * 28 + [54.0] * 7)
    inp = inputs(h, DAY)
    assert inp.scorable
    assert inp.values["speed_change"] == -6.0
    assert inp.values["activity_change_pct"] == 0.0
    assert inp.recent["walking_speed"] == 54.0 and inp.usual["walking_speed"] == 60.0
    # The decline statistic (detectors/trend.py): window = last 14 days (7 at 60, then
    # i = 8..14 at 54), baseline = the 21 days before at 60 (spread 0 -> floor 0.5 cm/s):
    # z = 6 * (8 + ... + 14) / (0.5 * sqrt(1015 + 105^2 / 21)) = 462 / 19.62 = 23.55
    assert inp.values["speed_decline"] == pytest.approx(23.55, abs=0.01)
    words = describe("speed_change", inp)
    assert words is not None
    assert words[0] == "walking speed 10% below usual (54 cm/s, usually 60)"
    assert words[1].startswith("gånghastighet 10 % lägre än vanligt")


def test_inputs_without_baseline_are_not_scorable() -> None:
    inp = inputs(hist([60.0] * 10), DAY)
    assert not inp.scorable
    assert inp.values["speed_change"] is None


def test_levels() -> None:
    assert level_of(0.01, (0.05, 0.2)) == "low"
    assert level_of(0.05, (0.05, 0.2)) == "moderate"
    assert level_of(0.25, (0.05, 0.2)) == "high"


def d(i: int) -> date:
    return DAY + timedelta(days=i)


def test_rise_needs_days_in_a_row_above_the_last_four_weeks() -> None:
    low = [(d(i), "low") for i in range(10)]

    def rise2(h: list) -> tuple[str, str] | None:
        return rise(h, persist_days=2)

    assert rise2(low) is None
    assert rise2(low + [(d(10), "moderate")]) is None  # one day is not a rise yet
    assert rise2(low + [(d(10), "moderate"), (d(11), "moderate")]) == ("low", "moderate")
    # The day after, the rise is part of the memory: no second alert.
    assert rise2(low + [(d(10), "moderate"), (d(11), "moderate"), (d(12), "moderate")]) is None
    # A moderate day three weeks ago: moderate again is no rise, high is.
    mixed = [(d(0), "moderate")] + [(d(i), "low") for i in range(1, 22)]
    assert rise2(mixed + [(d(22), "moderate"), (d(23), "moderate")]) is None
    assert rise2(mixed + [(d(22), "high"), (d(23), "high")]) == ("moderate", "high")
    # A day that could not be scored breaks the run; so does a gap.
    assert rise2(low + [(d(10), None), (d(11), "moderate")]) is None
    assert rise2(low + [(d(10), "moderate"), (d(12), "moderate")]) is None
    # The default asks for two weeks in a row (RISE_PERSIST_DAYS).
    up = [(d(10 + i), "moderate") for i in range(14)]
    assert rise(low + up[:13]) is None
    assert rise(low + up) == ("low", "moderate")


def test_csv_errors_name_line_and_column(tmp_path: Path) -> None:
    feats = tmp_path / "f.csv"
    cols = "resident_id,date,observations,walking_speed,transits,activity,room_transitions," \
           "night_bed_exits,night_bathroom_visits,time_in_bed,time_out"
    feats.write_text(cols + "\nr-1,2026-03-01,100,61.5,12,50,30,1,1,8.5,0\n"
                     "r-1,2026-13-01,100,,12,50,30,1,1,8.5,0\n"
                     "r-1,2026-03-02,100,fast,12,50,30,1,1,8.5,0\n")
    falls = tmp_path / "falls.csv"
    falls.write_text("resident_id,date\nr-1,2026-03-02\n")
    with pytest.raises(ConfigError) as exc:
        read_csv(feats, falls)
    assert exc.value.problems == [
        f"{feats}:3: date: value '2026-13-01': not YYYY-MM-DD",
        f"{feats}:4: walking_speed: value 'fast': not a number >= 0"]
    feats.write_text("resident_id,date,walking_speed\nr-1,2026-03-01,60\n")
    with pytest.raises(ConfigError, match="missing column"):
        read_csv(feats, falls)


def test_artefact_refuses_a_changed_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, len(INPUTS)))
    y = (x[:, 0] + rng.normal(size=400) < -1).astype(int)
    model = RiskModel.fit(x, y, np.arange(400) % 20)
    art = save(model, tmp_path / "m", {"data_sha256": "ab" * 32, "source": "test"})
    loaded = load(tmp_path / "m")
    assert loaded.version == art.version
    assert np.allclose(loaded.model.probabilities(x[:5]), model.probabilities(x[:5]))
    # Probabilities are calibrated to the data: mean close to the positive share.
    assert abs(float(model.probabilities(x).mean()) - float(y.mean())) < 0.03
    blob = (tmp_path / "m" / "model.pkl").read_bytes()
    (tmp_path / "m" / "model.pkl").write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(ConfigError, match="SHA-256 does not match"):
        load(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["sklearn"] = "0.1"
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="retrain the model"):
        load(tmp_path / "m")


def test_scoring_many_days_at_once_equals_one_by_one() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, len(INPUTS)))
    y = (x[:, 0] + rng.normal(size=300) < -1).astype(int)
    model = RiskModel.fit(x, y, np.arange(300) % 15)
    days = hist([60.0] * 40 + [54.0] * 7)
    by_day = {f.day: f for f in days}
    inps = [inputs(by_day, f.day) for f in days[35:]]
    assert all(i.scorable for i in inps)
    one = [model.score(i) for i in inps]
    many = model.score_many(inps)
    assert [(s.day, s.probability, s.level, [f.as_dict() for f in s.factors]) for s in many] \
        == [(s.day, s.probability, s.level, [f.as_dict() for f in s.factors]) for s in one]
    assert model.score_many([]) == []
