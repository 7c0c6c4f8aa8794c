"""Tonight's checks, the morning summary and the per-night counts for reports.

Definitions (also in docs/supervision.md):

- a night is named by the evening it starts on; its window is the resident's night window
  (site default 22:00-07:00) from that evening to the next morning;
- *digital checks performed*: check times with at least one journal entry;
- *physical visits made*: staff visits (a staff lock credential opening the door) that
  started inside the night window;
- *physical visits avoided*: check times of a plan that replaces physical look-ins, done
  digitally, with no staff visit starting from 30 minutes before to 60 minutes after.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from detectors.model import night_of
from detectors.supervision import check_instants
from detectors.supervisor import LATE_AFTER
from gateway.config.gateway import GatewayConfig
from gateway.config.registry import Registry, Resident, Supervision
from gateway.config.resident import night_window
from gateway.occupancy.views import OccupancyViews
from gateway.storage.schema import alerts, supervision_checks, visits
from gateway.storage.store import Store, from_ms, to_ms
from gateway.supervision.plans import PlanStore

VISIT_BEFORE = timedelta(minutes=30)
VISIT_AFTER = timedelta(minutes=60)
Clock = Callable[[str], datetime]
Since = Callable[[str], datetime | None]


def _iso(ms: int | None) -> str | None:
    return None if ms is None else from_ms(ms).isoformat()


class SupervisionViews:
    """Read models over the journal, visits and alerts."""

    def __init__(self, store: Store, registry: Registry, config: GatewayConfig,
                 plans: PlanStore, clock: Clock, since: Since,
                 occupancy: OccupancyViews | None = None) -> None:
        self.store = store
        self.occupancy = occupancy
        self.registry = registry
        self.config = config
        self.plans = plans
        self.clock = clock
        self.since = since
        self.tz = ZoneInfo(config.site.timezone)

    # --- helpers --------------------------------------------------------------------------

    def window(self, res: Resident, night: date) -> tuple[datetime, datetime]:
        """The resident's night window of the night starting on `night` (UTC)."""
        return night_window(res, night, self.config)

    def _residents(self, units: set[str] | None, unit: str | None) -> list[Resident]:
        return [r for r in self.registry.residents
                if (units is None or r.unit in units) and (unit is None or r.unit == unit)]

    def _rows(self, resident_id: str, night: date) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(supervision_checks)
                .where(supervision_checks.c.resident_id == resident_id)
                .where(supervision_checks.c.night == night.isoformat())
                .order_by(supervision_checks.c.due_ms, supervision_checks.c.attempt))]

    def _visit_starts(self, resident_id: str, lo: datetime, hi: datetime) -> list[int]:
        with self.store.engine.connect() as conn:
            return [int(v) for v in conn.execute(
                select(visits.c.start_ms).where(visits.c.resident_id == resident_id)
                .where(visits.c.start_ms >= to_ms(lo)).where(visits.c.start_ms < to_ms(hi))
            ).scalars()]

    def _occupancy(self, resident_id: str, ts: datetime) -> dict[str, Any] | None:
        return None if self.occupancy is None else self.occupancy.at(resident_id, ts)

    # --- tonight ----------------------------------------------------------------------------

    def tonight(self, *, units: set[str] | None, unit: str | None = None,
                night: date | None = None) -> list[dict[str, Any]]:
        """Per resident with a plan: each check of the night, its status and outcome."""
        out = []
        residents = self._residents(units, unit)
        in_force = self.plans.effective_all(residents)
        for res in residents:
            plan, _ = in_force[res.id]
            now = self.clock(res.id)
            n = night or night_of(now, self.tz)
            rows = self._rows(res.id, n)
            if not plan.checks and not rows:
                continue
            dues = {to_ms(d) for d in check_instants(n, plan.checks, self.tz)}
            dues |= {r["due_ms"] for r in rows}
            since = self.since(res.id)
            checks = [self._check(due, [r for r in rows if r["due_ms"] == due], now, since)
                      for due in sorted(dues)]
            out.append({"resident_id": res.id, "unit": res.unit, "night": n.isoformat(),
                        "now": now.isoformat(), "occupancy": self._occupancy(res.id, now),
                        "replaces_physical_visits": plan.replaces_physical_visits,
                        "all_well": list(plan.all_well), "checks": checks})
        return out

    @staticmethod
    def _check(due_ms: int, rows: list[dict[str, Any]], now: datetime,
               since: datetime | None) -> dict[str, Any]:
        final = next((r for r in rows if r["final"]), None)
        last = rows[-1] if rows else None
        if final is not None:
            status = "done"
        elif last is not None:
            status = "rechecking"
        elif due_ms > to_ms(now):
            status = "pending"
        elif since is None or due_ms <= to_ms(since):
            status = "before_start"  # the plan or the gateway started after this time
        elif to_ms(now) - due_ms <= LATE_AFTER.total_seconds() * 1000:
            status = "due"
        else:
            status = "overdue"  # should never last: the scheduler evaluates missed checks
        return {
            "due": _iso(due_ms), "due_ms": due_ms, "status": status,
            "outcome": last["outcome"] if last else None,
            "late": any(r["late"] for r in rows),
            "recheck_at": _iso(last["recheck_ms"]) if last and not last["final"] else None,
            "alert_id": next((r["alert_id"] for r in rows if r["alert_id"]), None),
            "entries": [{"id": r["id"], "attempt": r["attempt"], "outcome": r["outcome"],
                         "evaluated": _iso(r["evaluated_ms"]), "late": r["late"],
                         "reasons": r["reasons"], "evidence": r["evidence"]} for r in rows],
        }

    # --- counts and the morning summary -----------------------------------------------------

    def night_counts(self, res: Resident, night: date,
                     plan: Supervision | None = None) -> dict[str, Any]:
        """Counts of one resident's night (see the module docstring for definitions);
        `plan` is the plan in force (looked up when not given)."""
        rows = self._rows(res.id, night)
        lo, hi = self.window(res, night)
        # Visits from an hour before the window to an hour after: those near a check
        # decide "avoided"; those inside the window are the visits made.
        near = self._visit_starts(res.id, lo - VISIT_AFTER, hi + VISIT_AFTER)
        made = [s for s in near if to_ms(lo) <= s < to_ms(hi)]
        first = [r for r in rows if r["attempt"] == 1]
        finals = [r for r in rows if r["final"]]
        outcomes = Counter(r["outcome"] for r in finals)
        avoided = sum(1 for r in first if r["replaces_visit"] and not any(
            r["due_ms"] - VISIT_BEFORE.total_seconds() * 1000 <= s
            <= r["due_ms"] + VISIT_AFTER.total_seconds() * 1000 for s in near))
        if plan is None:
            plan, _ = self.plans.effective(res)
        planned = len({to_ms(d) for d in check_instants(night, plan.checks, self.tz)}
                      | {r["due_ms"] for r in rows})
        with self.store.engine.connect() as conn:
            kinds = Counter(str(k) for k in conn.execute(
                select(alerts.c.kind).where(alerts.c.resident_id == res.id)
                .where(alerts.c.event_ms >= to_ms(lo)).where(alerts.c.event_ms < to_ms(hi))
            ).scalars())
        return {
            "resident_id": res.id, "unit": res.unit, "night": night.isoformat(),
            "window": [lo.isoformat(), hi.isoformat()],
            "occupancy_at_start": self._occupancy(res.id, lo),
            "checks_planned": planned,
            "digital_checks": len({r["due_ms"] for r in rows}),
            "ok": outcomes["ok"], "attention": outcomes["attention"],
            "unknown": outcomes["unknown"], "away": outcomes["away"],
            "pending_recheck": len({r["due_ms"] for r in first}) - len(finals),
            "late": len({r["due_ms"] for r in rows if r["late"]}),
            "rechecks": sum(1 for r in rows if r["attempt"] == 2),
            "physical_visits_made": len(made),
            "physical_visits_avoided": avoided,
            "alerts": dict(sorted(kinds.items())),
        }

    def last_night(self) -> date:
        """The night that ended this morning (or is going on now), by the wall clock."""
        return night_of(datetime.now(UTC), self.tz)

    def summary(self, *, units: set[str] | None, unit: str,
                night: date | None = None) -> dict[str, Any]:
        """The morning summary of one unit: per resident and in total (default: last
        night)."""
        night = night or self.last_night()
        residents = self._residents(units, unit)
        in_force = self.plans.effective_all(residents)
        rows = [self.night_counts(r, night, in_force[r.id][0]) for r in residents]
        total: dict[str, Any] = {k: sum(r[k] for r in rows) for k in (
            "checks_planned", "digital_checks", "ok", "attention", "unknown", "away",
            "pending_recheck", "late", "rechecks", "physical_visits_made",
            "physical_visits_avoided")}
        kinds: Counter[str] = Counter()
        for r in rows:
            kinds.update(r["alerts"])
        total["alerts"] = dict(sorted(kinds.items()))
        # Unknown is never OK: who could not be told home or away when the night began.
        total["occupancy_at_start"] = dict(sorted(Counter(
            (r["occupancy_at_start"] or {}).get("state", "not_followed") for r in rows).items()))
        return {"unit": unit, "night": night.isoformat(), "residents": rows, "total": total}

    def counts(self, *, units: set[str] | None, first: date, last: date,
               resident_id: str | None = None) -> list[dict[str, Any]]:
        """Per resident and night, for reports (nights first..last inclusive)."""
        out = []
        residents = [r for r in self._residents(units, None)
                     if resident_id is None or r.id == resident_id]
        in_force = self.plans.effective_all(residents)
        for res in residents:
            n = first
            while n <= last:
                out.append(self.night_counts(res, n, in_force[res.id][0]))
                n += timedelta(days=1)
        return out
