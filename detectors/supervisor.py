"""When digital night checks fall due, and what each one concludes (no I/O).

A `Supervisor` walks one resident's check times on the resident's clock. At each due
check it evaluates the home (`detectors.supervision.evaluate`) and returns a journal entry:

- `ok`, `away` (a planned absence) or `attention` ends the check; `attention` asks for a
  `check_failed` alert, or, when the only finding is that the resident is not at home,
  for the night's `not_home_at_night` (one alert per night for one absence, not one per
  check);
- `unknown` asks for a re-check `recheck_minutes` later; a re-check that is still
  `unknown` asks for `check_unknown` (a `attention` re-check for `check_failed`).

A check whose time passed while the gateway was not running is evaluated when it comes
back and marked late; it is never skipped. Which checks are already in the journal is
given to `restore` at start, so a restart neither repeats nor forgets a check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from detectors.model import night_of
from detectors.supervision import CheckResult, HomeState, check_instants, evaluate

LOOKBACK = timedelta(hours=24)  # how far back a restart looks for checks it missed
LATE_AFTER = timedelta(seconds=60)  # a due check not in the journal by then is overdue
CheckAlert = Literal["check_failed", "check_unknown", "not_home_at_night"]


@dataclass(frozen=True)
class Plan:
    """One resident's supervision plan, as the scheduler needs it."""

    times: tuple[str, ...]
    all_well: tuple[str, ...]
    recheck_minutes: float = 15
    replaces_physical_visits: bool = False
    bathroom_long_minutes: float = 30
    bed_grace_minutes: float = 20
    bathroom_rooms: frozenset[str] = frozenset({"bathroom", "toilet"})
    away_after_minutes: float = 10


@dataclass(frozen=True)
class CheckEntry:
    """One journal entry: an evaluation of one check (attempt 1, or the re-check)."""

    resident_id: str
    night: date  # the evening the night starts on
    due: datetime
    evaluated: datetime
    attempt: int
    result: CheckResult
    late: bool
    final: bool  # no re-check follows
    alert: CheckAlert | None
    recheck_at: datetime | None = None
    replaces_visit: bool = False  # the plan replaces a physical look-in at this time


@dataclass
class Supervisor:
    """The check schedule of one resident."""

    resident_id: str
    plan: Plan
    tz: ZoneInfo
    cursor: datetime | None = None  # checks due after this are not yet looked at
    done: set[datetime] = field(default_factory=set)  # checks with a final entry
    rechecks: dict[datetime, datetime] = field(default_factory=dict)  # due -> re-check at
    resume_after: datetime | None = None  # newest check in the journal at start
    started: datetime | None = None  # checks due before this were missed while down
    since: datetime | None = None  # when supervision began (checks before it are not owed)
    produced: int = 0

    def restore(self, finished: Iterable[datetime], pending: dict[datetime, datetime],
                newest: datetime | None) -> None:
        """What the journal already holds: finished checks, re-checks still to do."""
        self.done.update(finished)
        self.rechecks.update(pending)
        self.resume_after = newest

    def rewind(self, ts: datetime) -> None:
        """The resident's clock was first set by data from an earlier time (a replay or a
        simulated night): look at checks from there, if none were evaluated yet."""
        if self.produced == 0 and self.cursor is not None and ts < self.cursor:
            self.cursor = self.since = ts

    def tick(self, now: datetime, home: Callable[[], HomeState]) -> list[CheckEntry]:
        """Evaluate every check (and re-check) due by `now`, oldest first."""
        work: list[tuple[datetime, int]] = [(d, 1) for d in self._new_dues(now, advance=True)]
        work += [(d, 2) for d, at in self.rechecks.items() if at <= now]
        if not work:
            return []
        state = home()
        out = []
        for due, attempt in sorted(work):
            out.append(self._check(due, attempt, now, state))
        self.produced += len(out)
        return out

    # --- internals ------------------------------------------------------------------------

    def _new_dues(self, now: datetime, *, advance: bool) -> list[datetime]:
        cursor = self.cursor
        if cursor is None:
            cursor = now if self.resume_after is None else max(self.resume_after,
                                                               now - LOOKBACK)
            if advance:
                self.cursor = self.since = cursor
        if now <= cursor:
            return []
        out = []
        evening = night_of(cursor, self.tz)
        while evening <= night_of(now, self.tz):
            for due in check_instants(evening, list(self.plan.times), self.tz):
                if cursor < due <= now and due not in self.done and due not in self.rechecks:
                    out.append(due)
            evening += timedelta(days=1)
        if advance:
            self.cursor = now
        return out

    def _check(self, due: datetime, attempt: int, now: datetime, state: HomeState
               ) -> CheckEntry:
        planned = due if attempt == 1 else self.rechecks.pop(due)
        # The state is as of the planned time: ticks come at every observation's time
        # (before it is applied), so nothing newer is in it. A check missed while the
        # gateway was down is evaluated now, with what is known now, and marked late.
        late = self.started is not None and planned < self.started
        at = now if late else planned
        result = evaluate(list(self.plan.all_well), at, state,
                          self.plan.bathroom_long_minutes, self.plan.bathroom_rooms,
                          self.plan.bed_grace_minutes, self.plan.away_after_minutes)
        alert: CheckAlert | None = None
        recheck_at = None
        final = True
        if result.outcome == "attention":
            findings = {e["criterion"] for e in result.evidence if e["outcome"] == "attention"}
            alert = "not_home_at_night" if findings == {"occupancy"} else "check_failed"
        elif result.outcome == "unknown":
            if attempt == 1:
                final = False
                recheck_at = at + timedelta(minutes=self.plan.recheck_minutes)
                self.rechecks[due] = recheck_at
            else:
                alert = "check_unknown"
        if final:
            self.done.add(due)
        return CheckEntry(self.resident_id, night_of(due, self.tz), due, at, attempt, result,
                          late, final, alert, recheck_at, self.plan.replaces_physical_visits)

