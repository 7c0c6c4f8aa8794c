"""Detector facts kept over restarts: occupancy changes and learnt rise times.

The detectors' restart replay covers 12 hours of observations; a resident away for three
days, or a rise time learnt over 14 nights, reaches further back. Each change is stored
once (unique per resident, kind and event time), so the replay writing it again is
harmless.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select
from sqlalchemy.exc import IntegrityError

from detectors.occupancy import OccupancyChange, State
from detectors.rise import NIGHTS, RiseFact
from gateway.storage.schema import detector_facts
from gateway.storage.store import Store, from_ms, now_ms, to_ms


class FactStore:
    """Writes and reads detector facts."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, changes: Iterable[OccupancyChange], rises: Iterable[RiseFact]) -> int:
        """Store new facts; returns how many were new."""
        rows: list[dict[str, Any]] = [
            {"resident_id": c.resident_id, "kind": "occupancy", "ts_ms": to_ms(c.since),
             "value": {"state": c.state, "source": c.source}} for c in changes]
        rows += [{"resident_id": r.resident_id, "kind": "rise", "ts_ms": to_ms(r.at),
                  "value": {"night": r.night.isoformat()}} for r in rises]
        new = 0
        for row in rows:
            try:
                with self.store.engine.begin() as conn:
                    conn.execute(insert(detector_facts).values(**row, recorded_ms=now_ms()))
                new += 1
            except IntegrityError:
                continue
        return new

    def occupancy_before(self, residents: list[str], before: datetime
                         ) -> dict[str, tuple[State, datetime, str]]:
        """Each resident's newest occupancy change before a moment."""
        f = detector_facts.c
        newest = (select(f.resident_id, func.max(f.ts_ms).label("ts_ms"))
                  .where(f.kind == "occupancy", f.ts_ms < to_ms(before),
                         f.resident_id.in_(residents))
                  .group_by(f.resident_id).subquery())
        q = select(f.resident_id, f.ts_ms, f.value).join_from(
            detector_facts, newest, and_(f.resident_id == newest.c.resident_id,
                                         f.ts_ms == newest.c.ts_ms)).where(
            f.kind == "occupancy")
        with self.store.engine.connect() as conn:
            return {r.resident_id: (r.value["state"], from_ms(r.ts_ms), r.value["source"])
                    for r in conn.execute(q)}

    def occupancy_changes(self, resident_id: str, lo: datetime, hi: datetime
                          ) -> list[tuple[datetime, str, str]]:
        """(since, state, source) of one resident from the last change before lo up to hi."""
        f = detector_facts.c
        with self.store.engine.connect() as conn:
            first = conn.execute(
                select(f.ts_ms, f.value).where(f.resident_id == resident_id,
                                               f.kind == "occupancy", f.ts_ms < to_ms(lo))
                .order_by(f.ts_ms.desc()).limit(1)).first()
            rows = conn.execute(
                select(f.ts_ms, f.value).where(f.resident_id == resident_id,
                                               f.kind == "occupancy", f.ts_ms >= to_ms(lo),
                                               f.ts_ms < to_ms(hi)).order_by(f.ts_ms)).all()
        return [(from_ms(r.ts_ms), r.value["state"], r.value["source"])
                for r in ([first] if first is not None else []) + list(rows)]

    def rises(self, residents: list[str], before: datetime
              ) -> dict[str, list[tuple[date, datetime]]]:
        """The rises of each resident's last nights (enough for the usual rise time)."""
        f = detector_facts.c
        lo = before - timedelta(days=NIGHTS + 2)
        out: dict[str, list[tuple[date, datetime]]] = {}
        with self.store.engine.connect() as conn:
            for r in conn.execute(select(f.resident_id, f.ts_ms, f.value).where(
                    f.kind == "rise", f.ts_ms >= to_ms(lo), f.resident_id.in_(residents))):
                out.setdefault(r.resident_id, []).append(
                    (date.fromisoformat(r.value["night"]), from_ms(r.ts_ms)))
        return out
