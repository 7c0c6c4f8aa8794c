"""The supervision journal: every check evaluation stored, its alert raised, staff woken.

A check that asks for an alert raises it *before* its journal row is written: after a
crash between the two, the check is evaluated again at restart and the alert layer's
one-open-alert-per-condition rule keeps the alert single. Rows are unique per (resident,
check time, attempt), so writing one twice is harmless.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from detectors.model import Decision
from detectors.rules import not_home_key
from detectors.supervisor import CheckEntry, Supervisor
from gateway.alerting.service import AlertService, Broadcast, condition_key
from gateway.config.registry import Registry
from gateway.storage.schema import alerts, supervision_checks
from gateway.storage.store import Store, from_ms, now_ms, to_ms

log = logging.getLogger(__name__)
RESTORE_HOURS = 48


class Journal:
    """Writes and reads journal entries."""

    def __init__(self, store: Store, registry: Registry, alerting: AlertService) -> None:
        self.store = store
        self.alerting = alerting
        self.units = {r.id: r.unit for r in registry.residents}
        self.broadcast = Broadcast()

    # --- writing --------------------------------------------------------------------------

    def record(self, entries: list[CheckEntry], *, late: bool = False) -> list[int]:
        """Store entries (raising their alerts first); `late` marks all of them late (they
        were evaluated while the detectors were rebuilt after a restart)."""
        ids = []
        for e in entries:
            alert_id = self._raise(e) if e.alert else None
            row = {
                "resident_id": e.resident_id, "unit_id": self.units.get(e.resident_id, ""),
                "night": e.night.isoformat(), "due_ms": to_ms(e.due), "attempt": e.attempt,
                "evaluated_ms": to_ms(e.evaluated), "recorded_ms": now_ms(),
                "outcome": e.result.outcome, "late": e.late or late, "final": e.final,
                "recheck_ms": to_ms(e.recheck_at) if e.recheck_at else None,
                "replaces_visit": e.replaces_visit, "reasons": e.result.reasons,
                "evidence": e.result.evidence, "alert_id": alert_id}
            try:
                with self.store.engine.begin() as conn:
                    ids.append(int(conn.execute(insert(supervision_checks).values(**row))
                                   .inserted_primary_key[0]))
            except IntegrityError:
                continue  # already journaled (evaluated again after a restart)
            log.info("check %s for %s at %s: %s%s%s", ids[-1], e.resident_id,
                     e.due.isoformat(), e.result.outcome, " (late)" if row["late"] else "",
                     " (re-check)" if e.attempt == 2 else "")
        if ids:
            self.broadcast.notify()
        return ids

    def _raise(self, e: CheckEntry) -> int | None:
        assert e.alert is not None
        # Not at home: the night's one not_home_at_night alert (detectors/rules.py), which
        # the checks of the same absence share; any other finding is the check's own.
        key = not_home_key(e.night) if e.alert == "not_home_at_night" else \
            f"{e.alert}:{to_ms(e.due)}"
        d = Decision("raise", e.alert, e.resident_id, key, e.evaluated,
                     {"due": e.due.isoformat(), "attempt": e.attempt,
                      "reasons": e.result.reasons})
        self.alerting.handle([d])
        with self.store.engine.connect() as conn:
            found = conn.execute(select(alerts.c.id).where(alerts.c.key == condition_key(d))
                                 .order_by(alerts.c.id.desc()).limit(1)).scalar()
        return None if found is None else int(found)

    # --- restoring ------------------------------------------------------------------------

    def restore(self, supervisors: dict[str, Supervisor], clocks: dict[str, datetime]
                ) -> None:
        """Tell each scheduler which checks near its clock (default: now) are already
        journaled: finished checks, re-checks still to do (one query for all)."""
        if not supervisors:
            return
        now = datetime.now(UTC)
        around = {rid: clocks.get(rid, now) for rid in supervisors}
        since = to_ms(min(around.values()) - timedelta(hours=RESTORE_HOURS))
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(supervision_checks.c.resident_id, supervision_checks.c.due_ms,
                       supervision_checks.c.final, supervision_checks.c.recheck_ms)
                .where(supervision_checks.c.due_ms >= since)).all()
        by_resident: dict[str, list[Any]] = defaultdict(list)
        for r in rows:
            by_resident[r.resident_id].append(r)
        for rid, sup in supervisors.items():
            lo = to_ms(around[rid] - timedelta(hours=RESTORE_HOURS))
            mine = [r for r in by_resident[rid] if r.due_ms >= lo]
            finished = {from_ms(r.due_ms) for r in mine if r.final}
            pending = {from_ms(r.due_ms): from_ms(r.recheck_ms) for r in mine
                       if not r.final and r.recheck_ms is not None
                       and from_ms(r.due_ms) not in finished}
            sup.restore(finished, pending, max((from_ms(r.due_ms) for r in mine), default=None))

    # --- reading --------------------------------------------------------------------------

    def entries(self, *, units: set[str] | None = None, resident_id: str | None = None,
                night: str | None = None, after_id: int = 0,
                limit: int = 1000) -> list[dict[str, Any]]:
        """Journal rows, oldest first."""
        q = select(supervision_checks).where(supervision_checks.c.id > after_id)
        if units is not None:
            q = q.where(supervision_checks.c.unit_id.in_(sorted(units)))
        if resident_id is not None:
            q = q.where(supervision_checks.c.resident_id == resident_id)
        if night is not None:
            q = q.where(supervision_checks.c.night == night)
        q = q.order_by(supervision_checks.c.id).limit(limit)
        with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def last_id(self) -> int:
        """Newest journal id (0 if none)."""
        with self.store.engine.connect() as conn:
            value = conn.execute(select(supervision_checks.c.id)
                                 .order_by(supervision_checks.c.id.desc()).limit(1)).scalar()
        return int(value or 0)
