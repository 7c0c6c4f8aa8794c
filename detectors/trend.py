"""Detection of a gradual walking-speed decline in a resident's daily speeds (pure, no I/O).

Phillips et al. (2017) saw a cumulative slowing of about 2.5 cm/s precede a fourfold rise in
the odds of a fall within three weeks, so a slowing should be flagged while it is still
small. The statistic is the matched test for a decline that started WINDOW_DAYS ago and
grows linearly: with the person's usual speed mu and day-to-day spread sd taken from the
BASELINE_DAYS before the window, and x_1..x_W the window's daily speeds,

    z = sum_i i * (mu - x_i) / (sd * sqrt(sum_i i^2 + (sum_i i)^2 / n_baseline))

where the second term under the root is the uncertainty of mu itself. z is a number of
standard errors; a decline is flagged at `threshold` (docs/fall-risk.md shows how it was
chosen against the false-alarm budget on the simulated cohort). Days without a speed are
left out of both sums; a day is never taken as zero.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeVar

WINDOW_DAYS = 14
BASELINE_DAYS = 90
MIN_BASELINE_DAYS = 21
MIN_WINDOW_DAYS = 7
THRESHOLD = 2.5
REARM_Z = 1.0  # after an alert, a new one waits until the statistic has fallen below this
SD_FLOOR_CM_S = 0.5  # a spread below this is a measurement artefact, not a steady person
OUTLIER_MADS = 4.0  # baseline days this many robust spreads from the median are left out
T = TypeVar("T")


@dataclass(frozen=True)
class Decline:
    """The decline statistic of one day."""

    day: date
    z: float
    usual: float  # cm/s, the baseline mean
    spread: float  # cm/s, the baseline's day-to-day standard deviation
    drop: float  # cm/s, the fitted slowing reached on `day` (negative: faster)
    recent: float  # cm/s, mean of the window's last 7 days with a speed
    baseline_days: int
    window_days: int

    @property
    def flagged(self) -> bool:
        """Whether the decline reaches the detection threshold."""
        return self.z >= THRESHOLD

    def words(self) -> tuple[str, str]:
        """The slowing in plain words (English, Swedish), from the person's own numbers."""
        weeks = WINDOW_DAYS // 7
        return (f"walking speed about {self.drop:.1f} cm/s slower over the last {weeks} "
                f"weeks ({self.recent:.0f} cm/s, usually {self.usual:.0f})",
                f"gånghastigheten ungefär {self.drop:.1f} cm/s lägre de senaste {weeks} "
                f"veckorna ({self.recent:.0f} cm/s, brukar vara {self.usual:.0f})")

    def as_dict(self) -> dict[str, float | int | str | bool]:
        """For storage and the API."""
        return {"day": self.day.isoformat(), "z": self.z, "usual": self.usual,
                "spread": self.spread, "drop": self.drop, "recent": self.recent,
                "baseline_days": self.baseline_days, "window_days": self.window_days,
                "flagged": self.flagged}


def sample_sd(xs: Sequence[float], mean: float) -> float:
    """The sample standard deviation in floating point (statistics.stdev computes it in
    exact fractions: a third of the cost of scoring a day)."""
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def decline(speeds: Mapping[date, float | None], day: date,
            window_days: int = WINDOW_DAYS, baseline_days: int = BASELINE_DAYS
            ) -> Decline | None:
    """The statistic for `day` from daily speeds by day; None without enough data (at least
    MIN_BASELINE_DAYS baseline days and MIN_WINDOW_DAYS window days with a speed)."""
    first_window = day - timedelta(days=window_days - 1)
    base = [v for i in range(1, baseline_days + 1)
            if (v := speeds.get(first_window - timedelta(days=i))) is not None]
    window = [(i + 1, v) for i in range(window_days)
              if (v := speeds.get(first_window + timedelta(days=i))) is not None]
    if len(base) < MIN_BASELINE_DAYS or len(window) < MIN_WINDOW_DAYS:
        return None
    med = statistics.median(base)
    mad = statistics.median(abs(v - med) for v in base) * 1.4826
    kept = [v for v in base if abs(v - med) <= OUTLIER_MADS * mad] if mad > 0 else base
    mu = statistics.fmean(kept)
    sd = max(SD_FLOOR_CM_S, sample_sd(kept, mu) if len(kept) > 1 else 0.0)
    sw = sum(w for w, _ in window)
    sw2 = sum(w * w for w, _ in window)
    num = sum(w * (mu - v) for w, v in window)
    z = num / (sd * math.sqrt(sw2 + sw * sw / len(kept)))
    recent = [v for _, v in window[-7:]]
    return Decline(day, round(z, 3), round(mu, 2), round(sd, 2),
                   round(num / sw2 * window_days, 2), round(statistics.fmean(recent), 2),
                   len(kept), len(window))


def armed(previous: Sequence[tuple[float | None, bool]]) -> bool:
    """Whether a flagged decline is a new one, from the days before it as (z, alerted),
    oldest first: not while a slowing already alerted on is still there, that is until the
    statistic has fallen back below REARM_Z (one slowing is one alert, not one a day)."""
    for z, alerted in reversed(previous):
        if z is not None and z < REARM_Z:
            return True
        if alerted:
            return False
    return True


def new_declines(series: Iterable[tuple[T, float | None]], threshold: float = THRESHOLD
                 ) -> list[T]:
    """The keys (days) of `series`, (key, z) oldest first, on which a new decline is
    flagged at `threshold`: one alert per slowing, re-armed below REARM_Z."""
    out: list[T] = []
    previous: list[tuple[float | None, bool]] = []
    for key, z in series:
        new = z is not None and z >= threshold and armed(previous)
        if new:
            out.append(key)
        previous.append((z, new))
    return out


def flagged_days(speeds: Mapping[date, float | None], first: date, last: date
                 ) -> list[Decline]:
    """Days first..last on which a new decline is flagged (the alerts the service raises)."""
    stats = [decline(speeds, first + timedelta(days=i))
             for i in range((last - first).days + 1)]
    flagged = new_declines((d, None if d is None else d.z) for d in stats)
    return [d for d in flagged if d is not None]
