"""The resident's usual rise time, learnt from the bed (pure).

A night's *rise* is the last time the person got out of bed between the start of the night
window and 3 hours after its end, after which the bed stayed empty for at least 2 hours.
The usual rise is the median of the rises of the last 14 nights, once there are 5; a
per-resident `rise_time` replaces it. An exit from 30 minutes before the usual rise on is
getting up for the day, not a bed exit to watch (`BedExitNoReturn`).

Times are compared as minutes after the night window's start, so a rise at 06:10 and
an exit at 23:30 are never confused across midnight. Rises are returned as `RiseFact`s so
the gateway can keep them over restarts (its replay covers 12 hours, not 14 nights).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from detectors.model import ResidentSettings, night_of

AFTER_END = timedelta(hours=3)
STAY_UP = timedelta(hours=2)
MARGIN = timedelta(minutes=30)
NIGHTS = 14
MIN_NIGHTS = 5


@dataclass(frozen=True, slots=True)
class RiseFact:
    """The rise of one night (the evening it started on), at `at`."""

    resident_id: str
    night: date
    at: datetime


class RiseLearner:
    """Rises of one resident (see the module docstring)."""

    def __init__(self, settings: ResidentSettings) -> None:
        self.s = settings
        self.rises: dict[date, float] = {}  # night -> minutes after the window's start
        self.exits: dict[date, list[list[datetime | None]]] = {}  # [exit, back]
        self.facts: list[RiseFact] = []

    def _offset(self, ts: datetime, night: date) -> float:
        start = self.s.night.start_of(night, self.s.tz)
        return (ts - start).total_seconds() / 60

    def restore(self, facts: list[tuple[date, datetime]]) -> None:
        """Rises kept from before a restart."""
        for night, at in facts:
            self.rises[night] = self._offset(at, night)

    def observe_bed(self, ts: datetime, in_bed: bool) -> None:
        """A change of the bed state."""
        night = night_of(ts, self.s.tz)
        if not in_bed:
            lo, hi = self.s.night.bounds(night, self.s.tz)
            if lo <= ts <= hi + AFTER_END:
                self.exits.setdefault(night, []).append([ts, None])
            return
        for n in (night, night - timedelta(days=1)):
            pending = self.exits.get(n)
            if pending and pending[-1][1] is None:
                pending[-1][1] = ts
                return

    def tick(self, now: datetime) -> list[RiseFact]:
        """Decide the rise of every night whose mornings are over."""
        out = []
        for night in sorted(self.exits):
            end = self.s.night.end_of(night, self.s.tz)
            if now < end + AFTER_END + STAY_UP:
                break
            rise = None
            for exit_, back in self.exits.pop(night):
                assert exit_ is not None
                if back is None or back - exit_ >= STAY_UP:
                    rise = exit_
            if rise is not None and night not in self.rises:
                self.rises[night] = self._offset(rise, night)
                fact = RiseFact(self.s.resident_id, night, rise)
                out.append(fact)
        cutoff = night_of(now, self.s.tz) - timedelta(days=NIGHTS + 1)
        for night in [n for n in self.rises if n < cutoff]:
            del self.rises[night]
        return out

    def usual(self, night: date) -> float | None:
        """The usual rise for a night, in minutes after the window's start (None: not known
        yet)."""
        if self.s.rise_time is not None:
            start = self.s.night.start
            minutes = (_minutes(self.s.rise_time) - _minutes(start)) % (24 * 60)
            return float(minutes)
        recent = [v for n, v in self.rises.items() if night - timedelta(days=NIGHTS) <= n < night]
        if len(recent) < MIN_NIGHTS:
            return None
        return float(statistics.median(recent))

    def getting_up(self, ts: datetime) -> bool:
        """Whether getting out of bed at ts is getting up for the day."""
        night = night_of(ts, self.s.tz)
        usual = self.usual(night)
        if usual is None:
            return False
        return self._offset(ts, night) >= usual - MARGIN.total_seconds() / 60


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute
