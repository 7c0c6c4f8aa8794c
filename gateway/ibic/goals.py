"""Goals and needs: the registry's, overridden by those written through the API, and each
goal's history (created, updated, proposed, confirmed, overridden, assessed)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select

from gateway.config.registry import Goal, Need, Resident
from gateway.storage.schema import goal_events, goals, resident_needs
from gateway.storage.store import Store, from_ms, now_ms

STATUSES = ("achieved", "partly_achieved", "not_achieved")
ASSESSMENTS = ("confirmed", "overridden", "assessed")


class GoalStore:
    """Reads and writes goals, needs and goal events."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- goals and needs ---------------------------------------------------------------------

    def goals(self, res: Resident) -> list[tuple[Goal, dict[str, Any]]]:
        """The goals in force and where each comes from (registry order, then API-added)."""
        with self.store.engine.connect() as conn:
            stored = {r.goal_id: r for r in conn.execute(
                select(goals).where(goals.c.resident_id == res.id).order_by(goals.c.changed_ms))}
        out: list[tuple[Goal, dict[str, Any]]] = []
        for g in res.goals:
            row = stored.pop(g.id, None)
            out.append((g, {"source": "registry"}) if row is None else self._api(row))
        out.extend(self._api(row) for row in stored.values())
        return out

    @staticmethod
    def _api(row: Any) -> tuple[Goal, dict[str, Any]]:
        return (Goal.model_validate(row.goal),
                {"source": "api", "changed_by": row.changed_by,
                 "changed": from_ms(row.changed_ms).isoformat()})

    def goal(self, res: Resident, goal_id: str) -> Goal | None:
        """One goal in force, or None."""
        return next((g for g, _ in self.goals(res) if g.id == goal_id), None)

    def save_goal(self, res: Resident, goal: Goal, staff_id: str) -> str:
        """Create or replace a goal; returns "created" or "updated"."""
        event = "updated" if self.goal(res, goal.id) is not None else "created"
        at = now_ms()
        with self.store.engine.begin() as conn:
            conn.execute(delete(goals).where(goals.c.resident_id == res.id)
                         .where(goals.c.goal_id == goal.id))
            conn.execute(insert(goals).values(
                resident_id=res.id, goal_id=goal.id, goal=goal.model_dump(mode="json"),
                changed_by=staff_id, changed_ms=at))
            conn.execute(insert(goal_events).values(
                resident_id=res.id, goal_id=goal.id, event=event, status=None, by=staff_id,
                at_ms=at, comment=None, evidence=goal.model_dump(mode="json")))
        return event

    def needs(self, res: Resident) -> tuple[list[Need], dict[str, Any]]:
        """Needs per life area in force and where they come from."""
        with self.store.engine.connect() as conn:
            row = conn.execute(select(resident_needs)
                               .where(resident_needs.c.resident_id == res.id)).first()
        if row is None:
            return list(res.needs), {"source": "registry"}
        return ([Need.model_validate(n) for n in row.needs],
                {"source": "api", "changed_by": row.changed_by,
                 "changed": from_ms(row.changed_ms).isoformat()})

    def save_needs(self, res: Resident, needs: list[Need], staff_id: str) -> None:
        """Replace a resident's needs."""
        with self.store.engine.begin() as conn:
            conn.execute(delete(resident_needs).where(resident_needs.c.resident_id == res.id))
            conn.execute(insert(resident_needs).values(
                resident_id=res.id, needs=[n.model_dump(mode="json") for n in needs],
                changed_by=staff_id, changed_ms=now_ms()))

    # --- history and follow-up -------------------------------------------------------------

    def events(self, resident_id: str, goal_id: str | None = None) -> list[dict[str, Any]]:
        """A resident's goal events (one goal's, if given), oldest first."""
        q = select(goal_events).where(goal_events.c.resident_id == resident_id)
        if goal_id is not None:
            q = q.where(goal_events.c.goal_id == goal_id)
        with self.store.engine.connect() as conn:
            rows = conn.execute(q.order_by(goal_events.c.at_ms, goal_events.c.id)).all()
        return [{"id": r.id, "goal_id": r.goal_id, "event": r.event, "status": r.status,
                 "by": r.by, "at": from_ms(r.at_ms).isoformat(), "at_ms": r.at_ms,
                 "comment": r.comment, "evidence": r.evidence} for r in rows]

    def record(self, resident_id: str, goal_id: str, event: str, status: str | None,
               by: str, comment: str | None = None,
               evidence: dict[str, Any] | None = None) -> int:
        """Append a goal event; returns its id."""
        with self.store.engine.begin() as conn:
            return int(conn.execute(insert(goal_events).values(
                resident_id=resident_id, goal_id=goal_id, event=event, status=status, by=by,
                at_ms=now_ms(), comment=comment, evidence=evidence)).inserted_primary_key[0])


def current_status(events: list[dict[str, Any]]) -> dict[str, Any]:
    """A goal's state from its history: the last assessment by a person, and a proposal
    waiting for one (a proposal newer than the last assessment)."""
    assessed = [e for e in events if e["event"] in ASSESSMENTS]
    proposals = [e for e in events if e["event"] == "proposed"]
    last = assessed[-1] if assessed else None
    pending = proposals[-1] if proposals and (
        last is None or proposals[-1]["at_ms"] > last["at_ms"]) else None
    return {"status": last["status"] if last else "active",
            "assessed_by": last["by"] if last else None,
            "assessed": last["at"] if last else None,
            "proposal": None if pending is None else {
                "status": pending["status"], "at": pending["at"],
                "evidence": pending["evidence"]}}
