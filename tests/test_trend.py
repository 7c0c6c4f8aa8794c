"""The walking-speed decline statistic (detectors/trend.py). Expected values are worked out
by hand in the comments from the formula in the module docstring."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from detectors.trend import REARM_Z, THRESHOLD, armed, decline, flagged_days

DAY = date(2026, 6, 30)  # the day scored; the window is DAY-13 .. DAY
W0 = DAY - timedelta(days=13)


def baseline(n: int = 30) -> dict[date, float | None]:
    """n days before the window alternating 59 and 61 cm/s: mean 60, sample standard
    deviation sqrt(n / (n - 1)) (every day is 1 from the mean)."""
    return {W0 - timedelta(days=i): (59.0 if i % 2 else 61.0) for i in range(1, n + 1)}


def with_window(speeds: dict[date, float | None], slope: float) -> dict[date, float | None]:
    """Window day i (1..14) at 60 - slope * i."""
    out = dict(speeds)
    for i in range(1, 15):
        out[W0 + timedelta(days=i - 1)] = 60.0 - slope * i
    return out


# With 30 baseline days and all 14 window days: sum i = 105, sum i^2 = 1015,
# sd = sqrt(30/29) = 1.01709, denominator = sd * sqrt(1015 + 105^2 / 30)
# = 1.01709 * sqrt(1382.5) = 37.8171.
DENOM = math.sqrt(30 / 29) * math.sqrt(1015 + 105 ** 2 / 30)


def test_linear_slowing_is_flagged() -> None:
    # 0.2 cm/s a day: numerator = 0.2 * sum i^2 = 203; z = 203 / 37.8171 = 5.368.
    d = decline(with_window(baseline(), 0.2), DAY)
    assert d is not None
    assert d.z == pytest.approx(203 / DENOM, abs=1e-3) and d.z == pytest.approx(5.368, abs=1e-3)
    assert d.flagged
    assert d.usual == 60.0 and d.spread == pytest.approx(1.02, abs=0.005)
    # fitted slowing on the last day: 203 / 1015 * 14 = 2.8 cm/s
    assert d.drop == pytest.approx(2.8)
    # last 7 window days, i = 8..14: mean 60 - 0.2 * 11 = 57.8
    assert d.recent == pytest.approx(57.8)
    assert (d.baseline_days, d.window_days) == (30, 14)


def test_threshold_edge() -> None:
    # 0.09 cm/s a day: z = 0.09 * 1015 / 37.8171 = 2.4156 < 2.5; 0.1: 2.684 >= 2.5.
    below = decline(with_window(baseline(), 0.09), DAY)
    above = decline(with_window(baseline(), 0.10), DAY)
    assert below is not None and above is not None
    assert below.z == pytest.approx(2.4156, abs=1e-3) and not below.flagged
    assert above.z == pytest.approx(2.684, abs=1e-3) and above.flagged
    assert THRESHOLD == 2.5


def test_steady_and_faster_are_not_flagged() -> None:
    steady = decline(with_window(baseline(), 0.0), DAY)
    faster = decline(with_window(baseline(), -0.2), DAY)
    assert steady is not None and steady.z == 0.0 and not steady.flagged
    assert faster is not None and faster.z == pytest.approx(-5.368, abs=1e-3)
    assert faster.drop == pytest.approx(-2.8)


def test_a_broken_baseline_day_is_left_out() -> None:
    # One more baseline day at 20 cm/s: median 60, MAD 1 -> 1.4826; 40 away is more than
    # 4 robust spreads, so the 30 good days decide and z is unchanged.
    speeds = baseline()
    speeds[W0 - timedelta(days=31)] = 20.0
    d = decline(with_window(speeds, 0.2), DAY)
    assert d is not None and d.baseline_days == 30 and d.z == pytest.approx(5.368, abs=1e-3)


def test_missing_days_are_left_out_never_zero() -> None:
    speeds = with_window(baseline(), 0.2)
    # Window days 1-6 unknown: i = 7..14 remain with their own weights; sum i = 84,
    # sum i^2 = 49+64+81+100+121+144+169+196 = 924;
    # z = 0.2 * 924 / (sqrt(30/29) * sqrt(924 + 84^2 / 30)) = 184.8 / 34.629 = 5.337
    for i in range(1, 7):
        speeds[W0 + timedelta(days=i - 1)] = None
    d = decline(speeds, DAY)
    assert d is not None and d.window_days == 8
    assert d.z == pytest.approx(184.8 / (math.sqrt(30 / 29) * math.sqrt(924 + 84 ** 2 / 30)),
                                abs=1e-3)
    assert d.z == pytest.approx(5.337, abs=1e-3)
    # A seventh unknown window day leaves 7 (still enough); an eighth leaves 6: no statistic.
    speeds[W0 + timedelta(days=6)] = None
    assert decline(speeds, DAY) is not None
    speeds[W0 + timedelta(days=7)] = None
    assert decline(speeds, DAY) is None
    # 20 baseline days are too few (21 needed).
    assert decline(with_window(baseline(20), 0.2), DAY) is None
    assert decline(with_window(baseline(21), 0.2), DAY) is not None


def test_one_alert_per_slowing() -> None:
    # 120 steady days at 60 (alternating 59/61), then 0.2 cm/s slower every day for 40 days:
    # flagged within two weeks of the onset, and the statistic stays high while the
    # slowing goes on, so that is the only alert.
    first = date(2026, 1, 1)
    speeds = {first + timedelta(days=i): (59.0 if i % 2 else 61.0) - 0.2 * max(0, i - 119)
              for i in range(160)}
    days = flagged_days(speeds, first + timedelta(days=100), first + timedelta(days=159))
    assert len(days) == 1
    assert 120 <= (days[0].day - first).days <= 120 + 14


def test_a_second_slowing_after_recovery_is_a_new_alert() -> None:
    # Slowing from day 120, back to usual from day 140 (the statistic falls below 1), then
    # steady 60 days and a second slowing from day 200: two alerts.
    first = date(2026, 1, 1)

    def v(i: int) -> float:
        base = 59.0 if i % 2 else 61.0
        if 120 <= i < 140:
            return base - 0.2 * (i - 119)
        if i >= 200:
            return base - 0.2 * (i - 199)
        return base

    speeds = {first + timedelta(days=i): v(i) for i in range(230)}
    days = flagged_days(speeds, first + timedelta(days=100), first + timedelta(days=229))
    assert [120 <= (d.day - first).days <= 134 or 200 <= (d.day - first).days <= 214
            for d in days] == [True, True]


def test_armed() -> None:
    assert armed([])
    assert not armed([(3.0, True), (2.0, False), (1.2, False)])  # still slowing
    assert armed([(3.0, True), (2.0, False), (0.8, False)])  # back below REARM_Z
    assert armed([(None, False), (2.6, False)])  # flagged, but never alerted on
    assert not armed([(0.5, False), (2.7, True), (None, False)])  # an unknown day re-arms nothing
    assert REARM_Z == 1.0
