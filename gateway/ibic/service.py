"""IBIC service: goals with their measured indicators, weekly progress, linked alerts and
the follow-up proposals (scheduled), over the stores the rest of the gateway writes."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from gateway.config.gateway import GatewayConfig
from gateway.config.registry import Goal, Registry, Resident
from gateway.errors import TillsynError
from gateway.ibic.facts import dates_between, load_facts
from gateway.ibic.followup import propose, windows
from gateway.ibic.goals import STATUSES, GoalStore, current_status
from gateway.ibic.indicators import DEFINITIONS, Facts, Value, compute
from gateway.ibic.links import concerns, goals_for_alert
from gateway.profiles.loader import ProfileLibrary
from gateway.schedule import Periodic
from gateway.storage.schema import alerts
from gateway.storage.store import Store, from_ms, to_ms

log = logging.getLogger(__name__)
MAX_DAYS = 400  # longest period one computation covers


EARLIEST, LATEST = date(2000, 1, 1), date(2200, 12, 31)  # dates any period may name


class IbicError(TillsynError):
    """A request the IBIC service cannot serve (unknown goal, bad period or status)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def iso_week(d: date) -> str:
    """ISO week label, e.g. 2026-W47."""
    year, week, _ = d.isocalendar()
    return f"{year}-W{week:02d}"


class IbicService:
    """Read models and commands for needs, goals, indicators and follow-up."""

    def __init__(self, store: Store, registry: Registry, config: GatewayConfig,
                 profiles: ProfileLibrary) -> None:
        self.store = store
        self.registry = registry
        self.config = config
        self.profiles = profiles
        self.goals = GoalStore(store)
        self.tz = ZoneInfo(config.site.timezone)
        self._schedule: Periodic | None = None

    # --- periods -----------------------------------------------------------------------------

    def today(self) -> date:
        """The site's local date now."""
        return datetime.now(UTC).astimezone(self.tz).date()

    @staticmethod
    def check_period(first: date, last: date) -> None:
        """Refuse an empty or over-long period, or one outside the dates a period may name."""
        for d in (first, last):
            if not EARLIEST <= d <= LATEST:
                raise IbicError(422, f"{d} is outside {EARLIEST}..{LATEST}")
        if last < first:
            raise IbicError(422, f"period ends ({last}) before it starts ({first})")
        if (last - first).days + 1 > MAX_DAYS:
            raise IbicError(422, f"period is longer than {MAX_DAYS} days")

    def facts(self, res: Resident, first: date, last: date) -> Facts:
        """What the indicators read, for nights and days first..last."""
        self.check_period(first, last)
        return load_facts(self.store, res, self.config, self.profiles, first, last)

    # --- goals -----------------------------------------------------------------------------

    def goal(self, res: Resident, goal_id: str) -> Goal:
        """A goal in force, or a 404."""
        goal = self.goals.goal(res, goal_id)
        if goal is None:
            raise IbicError(404, f"resident {res.id} has no goal {goal_id!r}")
        return goal

    def entries(self, res: Resident
                ) -> list[tuple[Goal, dict[str, Any], list[dict[str, Any]]]]:
        """Every goal in force: the goal, its summary (fields, source, status) and its
        history (two queries for all goals)."""
        history = self.goals.events(res.id)
        out = []
        for goal, source in self.goals.goals(res):
            mine = [e for e in history if e["goal_id"] == goal.id]
            out.append((goal, {**goal.model_dump(mode="json"), **source,
                               **current_status(mine)}, mine))
        return out

    def overview(self, res: Resident) -> list[dict[str, Any]]:
        """Every goal in force with its source and status (what night staff may see)."""
        return [summary for _, summary, _ in self.entries(res)]

    def values(self, goal: Goal, facts: Facts, dates: list[date]) -> list[Value]:
        """The goal's indicators over `dates`."""
        return [compute(i.id, facts, dates, i.kind) for i in goal.indicators]

    def period_of(self, goal: Goal, until: date | None) -> tuple[date, date]:
        """From the goal's start to `until` (default: yesterday), at most MAX_DAYS."""
        if until is not None and not EARLIEST <= until <= LATEST:
            raise IbicError(422, f"until: {until} is outside {EARLIEST}..{LATEST}")
        last = until or self.today() - timedelta(days=1)
        first = max(goal.start, last - timedelta(days=MAX_DAYS - 1))
        return first, max(first, last)

    def progress(self, res: Resident, goal: Goal, until: date | None = None,
                 facts: Facts | None = None) -> dict[str, Any]:
        """Weekly series of each of the goal's indicators, start to `until`."""
        first, last = self.period_of(goal, until)
        facts = facts or self.facts(res, first, last)
        weeks: dict[str, list[date]] = {}
        for d in dates_between(first, last):
            weeks.setdefault(iso_week(d), []).append(d)
        series = []
        for ind in goal.indicators:
            points = []
            for label, days in weeks.items():
                v = compute(ind.id, facts, days, ind.kind)
                points.append({"week": label, "first": days[0].isoformat(),
                               "last": days[-1].isoformat(), "value": v.value,
                               "status": v.status, "n": v.n})
            spec = DEFINITIONS[ind.id]
            series.append({"id": ind.id, "kind": ind.kind, "unit": spec.unit,
                           "target": ind.target, "direction": ind.direction,
                           "available": spec.available,
                           "reason": spec.not_available_reason or None,
                           "points": points})
        return {"goal_id": goal.id, "first": first.isoformat(), "last": last.isoformat(),
                "indicators": series}

    def linked_alerts(self, res: Resident, goal: Goal) -> list[dict[str, Any]]:
        """Alerts of the resident during the goal's period that concern it, newest first."""
        lo = datetime.combine(goal.start, datetime.min.time(), self.tz)
        hi = datetime.combine(goal.follow_up + timedelta(days=1), datetime.min.time(), self.tz)
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(alerts.c.id, alerts.c.kind, alerts.c.priority, alerts.c.status,
                       alerts.c.event_ms, alerts.c.outcome, alerts.c.acknowledged_ms,
                       alerts.c.resolved_ms, alerts.c.raised_ms)
                .where(alerts.c.resident_id == res.id)
                .where(alerts.c.event_ms >= to_ms(lo)).where(alerts.c.event_ms < to_ms(hi))
                .order_by(alerts.c.event_ms.desc())).all()
        return [{"id": r.id, "kind": r.kind, "priority": r.priority, "status": r.status,
                 "event": from_ms(r.event_ms).isoformat(), "outcome": r.outcome,
                 "response_seconds": None if (first := r.acknowledged_ms or r.resolved_ms)
                 is None else (first - r.raised_ms) / 1000}
                for r in rows if concerns(goal, r.kind)]

    def goals_of_alert(self, alert: dict[str, Any]) -> list[str]:
        """Ids of the goals an alert concerns."""
        res = self.resident(alert["resident_id"])
        if res is None:
            return []
        day = from_ms(alert["event_ms"]).astimezone(self.tz).date()
        return goals_for_alert([g for g, _ in self.goals.goals(res)], alert["kind"], day)

    def resident(self, resident_id: str) -> Resident | None:
        """A registered resident."""
        return self.registry.resident(resident_id)

    # --- follow-up ---------------------------------------------------------------------------

    def proposal(self, res: Resident, goal: Goal) -> tuple[str | None, dict[str, Any]]:
        """What the indicators say at the goal's follow-up (computed now)."""
        (b_first, b_last), (w_first, w_last) = windows(goal)
        facts = self.facts(res, min(b_first, w_first), max(b_last, w_last))
        return propose(goal, self.values(goal, facts, dates_between(w_first, w_last)),
                       self.values(goal, facts, dates_between(b_first, b_last)))

    def propose_due(self, today: date | None = None) -> int:
        """Record a proposal for every goal whose follow-up date has come and that has none
        for that date yet; returns how many were recorded."""
        today = today or self.today()
        made = 0
        for res in self.registry.residents:
            history = self.goals.events(res.id)
            for goal, _ in self.goals.goals(res):
                if goal.follow_up > today or any(
                        e["goal_id"] == goal.id and e["event"] == "proposed"
                        and (e["evidence"] or {}).get("follow_up") == goal.follow_up.isoformat()
                        for e in history):
                    continue
                status, evidence = self.proposal(res, goal)
                self.goals.record(res.id, goal.id, "proposed", status, "gateway",
                                  evidence=evidence)
                made += 1
                log.info("follow-up proposed: resident %s goal %s: %s", res.id, goal.id,
                         status or "no proposal (nothing measured)")
        return made

    def assess(self, res: Resident, goal_id: str, status: str, staff_id: str,
               comment: str | None) -> dict[str, Any]:
        """A person's follow-up: confirms the pending proposal, overrides it (a comment is
        required), or assesses a goal that has none."""
        goal = self.goal(res, goal_id)
        if status not in STATUSES:
            raise IbicError(422, f"status must be one of {', '.join(STATUSES)}")
        pending = current_status(self.goals.events(res.id, goal.id))["proposal"]
        if pending is None:
            event = "assessed"
        elif pending["status"] == status:
            event = "confirmed"
        else:
            event = "overridden"
            if not (comment or "").strip():
                raise IbicError(422, "a comment is required to override the proposal "
                                     f"({pending['status']})")
        self.goals.record(res.id, goal.id, event, status, staff_id, comment,
                          evidence=None if pending is None else pending["evidence"])
        return {"goal_id": goal.id, "event": event, "status": status}

    # --- schedule ----------------------------------------------------------------------------

    def start(self, every_s: float = 900.0) -> None:
        """Propose due follow-ups now and then every `every_s` seconds."""
        self._schedule = Periodic("ibic-followup", self.propose_due, every_s,
                                  failed="follow-up proposals failed", join_s=10)
        self._schedule.start()

    def stop(self) -> None:
        """Stop the schedule."""
        if self._schedule is not None:
            self._schedule.stop()
