"""Privacy duties on stored data: retention (deleting what is older than its time), a
person's export on request, and erasure where the law allows it.

What erasure removes and keeps:
- removed: everything measured about the person (observations, device status, daily
  movement features and fall-risk scores, dead letters of their devices, consent changes);
- kept: the documentation the organisation must keep (alerts and their events, staff
  visits, the supervision journal, goals, needs and follow-ups) and the audit log; retention
  removes them when `storage.retention.record_days` / `audit_days` have passed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any

from sqlalchemy import Column, Table, and_, delete, or_, select

from gateway.config.gateway import RetentionConfig
from gateway.config.registry import OBSERVATION_KINDS, Registry
from gateway.storage.schema import (
    alert_events,
    alerts,
    audit_log,
    consent_changes,
    dead_letters,
    device_status,
    goal_events,
    goals,
    observations,
    resident_needs,
    risk_days,
    supervision_checks,
    supervision_plans,
    visits,
)
from gateway.storage.store import Store, from_ms, now_ms

log = logging.getLogger(__name__)
CHUNK = 5000  # rows per delete transaction: ingest keeps committing in between
DAY_MS = 86_400_000


def _delete_chunked(store: Store, table: Table, key: Column[Any], where: Any) -> int:
    """Delete matching rows a chunk at a time (short transactions; SQLite has one writer)."""
    total = 0
    while True:
        with store.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(select(key).where(where).limit(CHUNK))]
            if not ids:
                return total
            conn.execute(delete(table).where(key.in_(ids)))
        total += len(ids)


def prune(store: Store, cfg: RetentionConfig, now: int | None = None,
          progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Delete what retention says is too old. Returns rows deleted per table."""
    now = now_ms() if now is None else now
    done: dict[str, int] = {}

    def step(name: str, table: Table, key: Column[Any], where: Any) -> None:
        done[name] = done.get(name, 0) + _delete_chunked(store, table, key, where)
        if progress is not None:
            progress(name, done[name])

    by_kind = cfg.observation_days_by_kind
    for kind, days in sorted(by_kind.items()):
        step("observations", observations, observations.c.id,
             and_(observations.c.ts_ms < now - days * DAY_MS, observations.c.kind == kind))
    others = [k for k in OBSERVATION_KINDS if k not in by_kind]
    step("observations", observations, observations.c.id,
         and_(observations.c.ts_ms < now - cfg.observation_days * DAY_MS,
              observations.c.kind.in_(others)))
    step("dead_letters", dead_letters, dead_letters.c.id,
         dead_letters.c.received_ms < now - cfg.dead_letter_days * DAY_MS)
    oldest_day = (datetime.fromtimestamp(now / 1000, UTC).date()
                  - timedelta(days=cfg.risk_day_days)).isoformat()
    with store.engine.begin() as conn:
        done["risk_days"] = conn.execute(delete(risk_days).where(
            risk_days.c.day < oldest_day)).rowcount or 0
    records = now - cfg.record_days * DAY_MS
    # An alert goes when it was resolved longer ago than record_days (open ones never).
    old_alerts = select(alerts.c.id).where(alerts.c.status == "resolved",
                                           alerts.c.resolved_ms < records)
    step("alert_events", alert_events, alert_events.c.id,
         alert_events.c.alert_id.in_(old_alerts))
    step("alerts", alerts, alerts.c.id,
         and_(alerts.c.status == "resolved", alerts.c.resolved_ms < records))
    step("visits", visits, visits.c.id, visits.c.start_ms < records)
    step("supervision_checks", supervision_checks, supervision_checks.c.id,
         supervision_checks.c.due_ms < records)
    step("goal_events", goal_events, goal_events.c.id, goal_events.c.at_ms < records)
    step("audit_log", audit_log, audit_log.c.id,
         audit_log.c.at_ms < now - cfg.audit_days * DAY_MS)
    return done


def _rows(store: Store, table: Table, where: Any, order: Any) -> Iterator[dict[str, Any]]:
    for part in store.stream(select(table).where(where).order_by(order)):
        yield from part


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _times(row: dict[str, Any]) -> dict[str, Any]:
    """Epoch-millisecond columns also as readable UTC times."""
    out = {k: _plain(v) for k, v in row.items()}
    for k, v in row.items():
        if k.endswith("_ms") and isinstance(v, int) and v > 10**11:
            out[k[:-3] + "_utc"] = from_ms(v).isoformat()
    return out


def export_resident(store: Store, registry: Registry, resident_id: str, out: IO[str],
                    progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Write everything stored about one person as one JSON document (streamed, so a
    year of observations does not have to fit in memory). Returns rows per section."""
    res = registry.resident(resident_id)
    devices = [d.id for d in res.devices] if res else []
    alert_ids = select(alerts.c.id).where(alerts.c.resident_id == resident_id)
    sections: list[tuple[str, Table, Any, Any]] = [
        ("observations", observations, observations.c.resident_id == resident_id,
         observations.c.ts_ms),
        ("alerts", alerts, alerts.c.resident_id == resident_id, alerts.c.raised_ms),
        ("alert_events", alert_events, alert_events.c.alert_id.in_(alert_ids),
         alert_events.c.id),
        ("visits", visits, visits.c.resident_id == resident_id, visits.c.start_ms),
        ("supervision_journal", supervision_checks,
         supervision_checks.c.resident_id == resident_id, supervision_checks.c.due_ms),
        ("supervision_plan", supervision_plans, supervision_plans.c.resident_id == resident_id,
         supervision_plans.c.resident_id),
        ("needs", resident_needs, resident_needs.c.resident_id == resident_id,
         resident_needs.c.resident_id),
        ("goals", goals, goals.c.resident_id == resident_id, goals.c.goal_id),
        ("goal_events", goal_events, goal_events.c.resident_id == resident_id,
         goal_events.c.at_ms),
        ("risk_days", risk_days, risk_days.c.resident_id == resident_id, risk_days.c.day),
        ("device_status", device_status, device_status.c.resident_id == resident_id,
         device_status.c.device_id),
        ("consent_changes", consent_changes, consent_changes.c.resident_id == resident_id,
         consent_changes.c.id),
        # Who has read this person's data, and when (GDPR art. 15: the recipients).
        ("audit_log", audit_log, audit_log.c.resident_id == resident_id, audit_log.c.at_ms),
        ("dead_letters", dead_letters, dead_letters.c.device_id.in_(devices or [""]),
         dead_letters.c.id),
    ]
    head = {"resident_id": resident_id,
            "exported_at": datetime.now(UTC).isoformat(),
            "registry": res.model_dump(mode="json") if res else None}
    counts: dict[str, int] = {}
    out.write("{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
                                  for k, v in head.items()))
    for name, table, where, order in sections:
        out.write(f',\n{json.dumps(name)}: [')
        n = 0
        for row in _rows(store, table, where, order):
            out.write(("\n  " if n == 0 else ",\n  ")
                      + json.dumps(_times(row), ensure_ascii=False, default=str))
            n += 1
            if progress is not None and n % 5000 == 0:
                progress(name, n)
        out.write("\n]" if n else "]")
        counts[name] = n
        if progress is not None:
            progress(name, n)
    out.write("\n}\n")
    return counts


ERASED = ("observations", "device_status", "risk_days", "dead_letters", "consent_changes")
KEPT = ("alerts", "alert_events", "visits", "supervision_journal", "goals", "needs",
        "goal_events", "audit_log")


def erase_resident(store: Store, registry: Registry, resident_id: str) -> dict[str, int]:
    """Remove what is measured about a person (see the module text for what is kept and
    why). Returns rows deleted per table."""
    res = registry.resident(resident_id)
    devices = [d.id for d in res.devices] if res else []
    done = {
        "observations": _delete_chunked(store, observations, observations.c.id,
                                        observations.c.resident_id == resident_id),
        "dead_letters": _delete_chunked(store, dead_letters, dead_letters.c.id,
                                        dead_letters.c.device_id.in_(devices or [""])),
        "consent_changes": _delete_chunked(store, consent_changes, consent_changes.c.id,
                                           consent_changes.c.resident_id == resident_id),
    }
    with store.engine.begin() as conn:
        done["device_status"] = conn.execute(delete(device_status).where(or_(
            device_status.c.resident_id == resident_id,
            device_status.c.device_id.in_(devices or [""])))).rowcount or 0
        done["risk_days"] = conn.execute(delete(risk_days).where(
            risk_days.c.resident_id == resident_id)).rowcount or 0
    return done
