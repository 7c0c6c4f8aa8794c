"""Supervision plans: the registry's, overridden by plans changed through the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select

from detectors.supervisor import Plan
from gateway.config.gateway import GatewayConfig
from gateway.config.registry import Resident, Supervision
from gateway.config.resident import alert_settings
from gateway.storage.schema import supervision_plans
from gateway.storage.store import Store, now_ms


def detector_plan(sup: Supervision, res: Resident, config: GatewayConfig) -> Plan | None:
    """The scheduler's view of a plan (None when it has no check times)."""
    if not sup.checks:
        return None
    a = alert_settings(res, config.site)
    return Plan(tuple(sup.checks), tuple(sup.all_well), recheck_minutes=sup.recheck_minutes,
                replaces_physical_visits=sup.replaces_physical_visits,
                bathroom_long_minutes=sup.bathroom_long_minutes or a.bathroom_long_minutes,
                bed_grace_minutes=a.bed_exit_no_return_minutes,
                away_after_minutes=a.away_after_minutes)


class PlanStore:
    """Reads and writes plan overrides; the registry plan applies where there is none."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def effective_all(self, residents: list[Resident]
                      ) -> dict[str, tuple[Supervision, dict[str, Any]]]:
        """The plan in force for each resident and where it comes from (one query)."""
        with self.store.engine.connect() as conn:
            stored = {r.resident_id: r for r in conn.execute(select(supervision_plans))}
        out: dict[str, tuple[Supervision, dict[str, Any]]] = {}
        for res in residents:
            row = stored.get(res.id)
            out[res.id] = (res.supervision, {"source": "registry"}) if row is None else (
                Supervision.model_validate(row.plan),
                {"source": "api", "changed_by": row.changed_by, "changed_ms": row.changed_ms})
        return out

    def effective(self, res: Resident) -> tuple[Supervision, dict[str, Any]]:
        """The plan in force for one resident and where it comes from."""
        return self.effective_all([res])[res.id]

    def save(self, resident_id: str, plan: Supervision, staff_id: str) -> None:
        """Store a plan for a resident (replaces an earlier override)."""
        with self.store.engine.begin() as conn:
            conn.execute(delete(supervision_plans)
                         .where(supervision_plans.c.resident_id == resident_id))
            conn.execute(insert(supervision_plans).values(
                resident_id=resident_id, plan=plan.model_dump(mode="json"),
                changed_by=staff_id, changed_ms=now_ms()))
