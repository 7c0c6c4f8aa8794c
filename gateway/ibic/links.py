"""Which goals an alert concerns (pure): through the goal's indicators, its ICF code, or,
for `sos`, the life area "Känsla av trygghet"."""

from __future__ import annotations

from datetime import date

from gateway.config.registry import Goal
from gateway.ibic.indicators import ALERT_ICF, DEFINITIONS


def concerns(goal: Goal, kind: str) -> bool:
    """Whether an alert of `kind` concerns `goal`."""
    for ind in goal.indicators:
        if kind in DEFINITIONS[ind.id].alert_kinds and ind.kind in (None, kind):
            return True
    if goal.icf is not None and goal.icf in ALERT_ICF.get(kind, ()):
        return True
    return goal.life_area == "trygghet" and kind == "sos"


def active_on(goal: Goal, day: date) -> bool:
    """Whether the goal is being worked on that day (start to follow-up, inclusive)."""
    return goal.start <= day <= goal.follow_up


def goals_for_alert(goals: list[Goal], kind: str, day: date) -> list[str]:
    """Ids of the goals an alert of `kind` on `day` concerns."""
    return [g.id for g in goals if active_on(g, day) and concerns(g, kind)]
