"""The follow-up proposal from a goal's indicators (pure; see docs/indicators.md).

- The *evaluation window* is the last 28 days before the follow-up date (from the start if
  the goal is shorter); the *baseline* is the first 28 days after the start.
- An indicator is *met* when its value in the window reaches its target in its direction,
  and *improved* when it moved from the baseline value towards the target.
- `achieved`: every indicator measured and met. `partly_achieved`: at least one met or
  improved. `not_achieved`: indicators measured, none met or improved.
- No indicator measured: no proposal; the goal waits for a person's assessment.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from gateway.config.registry import Goal, Indicator
from gateway.ibic.indicators import Value

WINDOW = timedelta(days=28)


def windows(goal: Goal) -> tuple[tuple[date, date], tuple[date, date]]:
    """(baseline first..last, evaluation first..last), inclusive dates."""
    last = goal.follow_up - timedelta(days=1)
    first = max(goal.start, goal.follow_up - WINDOW)
    return (goal.start, min(last, goal.start + WINDOW - timedelta(days=1))), (first, last)


def met(ind: Indicator, value: float | None) -> bool | None:
    """Whether a value reaches the indicator's target (None: not measured)."""
    if value is None:
        return None
    return value >= ind.target if ind.direction == "at_least" else value <= ind.target


def improved(ind: Indicator, baseline: float | None, value: float | None) -> bool | None:
    """Whether the value moved from the baseline towards the target."""
    if value is None or baseline is None:
        return None
    return value > baseline if ind.direction == "at_least" else value < baseline


def propose(goal: Goal, window: list[Value], baseline: list[Value]
            ) -> tuple[str | None, dict[str, Any]]:
    """The proposed status and its evidence (indicator by indicator)."""
    (b_first, b_last), (w_first, w_last) = windows(goal)
    rows = []
    for ind, val, base in zip(goal.indicators, window, baseline, strict=True):
        rows.append({"id": ind.id, "kind": ind.kind, "target": ind.target,
                     "direction": ind.direction, "value": val.value, "status": val.status,
                     "reason": val.reason, "n": val.n, "baseline": base.value,
                     "met": met(ind, val.value), "improved": improved(ind, base.value,
                                                                      val.value)})
    evidence: dict[str, Any] = {
        "follow_up": goal.follow_up.isoformat(),
        "window": [w_first.isoformat(), w_last.isoformat()],
        "baseline": [b_first.isoformat(), b_last.isoformat()], "indicators": rows}
    measured = [r for r in rows if r["value"] is not None]
    if not measured:
        evidence["reason"] = "no indicator could be measured: a person must assess the goal"
        return None, evidence
    if len(measured) == len(rows) and all(r["met"] for r in rows):
        return "achieved", evidence
    if any(r["met"] or r["improved"] for r in measured):
        return "partly_achieved", evidence
    return "not_achieved", evidence
