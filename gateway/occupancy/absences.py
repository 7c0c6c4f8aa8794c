"""Planned absences: the registry's and those kept through the API, as one list.

During a planned absence the resident is `away (planned)`: digital checks are journalled as
away and raise nothing, and `not_home_at_night` is not raised (detectors/occupancy.py).
Absences from the registry are changed in the registry; those added through the API are
withdrawn through it (kept, marked deleted, with who and when).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update

from detectors.model import PlannedAbsence
from gateway.config.registry import Absence, Registry
from gateway.config.resident import absence_bounds
from gateway.errors import TillsynError
from gateway.storage.schema import absences
from gateway.storage.store import Store, from_ms, now_ms, to_ms

Listener = Callable[[str, list[PlannedAbsence]], None]
MAX_PER_RESIDENT = 100


class AbsenceError(TillsynError):
    """A change that cannot be made (status: the HTTP answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AbsenceService:
    """Lists, adds and withdraws planned absences; tells a listener of every change."""

    def __init__(self, store: Store, registry: Registry, tz: ZoneInfo) -> None:
        self.store = store
        self.registry = registry
        self.tz = tz
        self.listeners: list[Listener] = []

    def _registry_rows(self, resident_id: str) -> list[dict[str, Any]]:
        res = self.registry.resident(resident_id)
        out = []
        for i, a in enumerate(res.absences if res is not None else []):
            p = absence_bounds(a, self.tz)
            out.append({"id": f"registry-{i}", "resident_id": resident_id,
                        "start": p.start.isoformat(), "end": p.end.isoformat(),
                        "reason": p.reason, "source": "registry", "created_by": None,
                        "created": None})
        return out

    def _stored(self, resident_ids: list[str] | None = None) -> list[dict[str, Any]]:
        q = select(absences).where(absences.c.deleted_ms.is_(None))
        if resident_ids is not None:
            q = q.where(absences.c.resident_id.in_(resident_ids))
        with self.store.engine.connect() as conn:
            rows = conn.execute(q.order_by(absences.c.start_ms)).all()
        return [{"id": str(r.id), "resident_id": r.resident_id,
                 "start": from_ms(r.start_ms).isoformat(), "end": from_ms(r.end_ms).isoformat(),
                 "reason": r.reason, "source": "api", "created_by": r.created_by,
                 "created": from_ms(r.created_ms).isoformat()} for r in rows]

    def of(self, resident_id: str) -> list[dict[str, Any]]:
        """Every planned absence of a resident, earliest first."""
        rows = self._registry_rows(resident_id) + self._stored([resident_id])
        return sorted(rows, key=lambda r: r["start"])

    def planned_all(self) -> dict[str, list[PlannedAbsence]]:
        """Every resident's planned absences, as the detectors use them."""
        out: dict[str, list[PlannedAbsence]] = {r.id: [] for r in self.registry.residents}
        for res in self.registry.residents:
            out[res.id] = [absence_bounds(a, self.tz) for a in res.absences]
        for row in self._stored():
            if row["resident_id"] in out:
                out[row["resident_id"]].append(PlannedAbsence(
                    datetime.fromisoformat(row["start"]), datetime.fromisoformat(row["end"]),
                    row["reason"]))
        return out

    def planned(self, resident_id: str) -> list[PlannedAbsence]:
        """One resident's planned absences."""
        return self.planned_all().get(resident_id, [])

    def add(self, resident_id: str, body: Absence, staff_id: str) -> dict[str, Any]:
        """Plan an absence (a time without offset is the site's local time)."""
        p = absence_bounds(body, self.tz)
        if p.end <= datetime.now(UTC):
            raise AbsenceError(422, "end: the absence is already over")
        if len(self._stored([resident_id])) >= MAX_PER_RESIDENT:
            raise AbsenceError(422, f"at most {MAX_PER_RESIDENT} planned absences per "
                                    "resident; withdraw old ones first")
        with self.store.engine.begin() as conn:
            new_id = int(conn.execute(insert(absences).values(
                resident_id=resident_id, start_ms=to_ms(p.start), end_ms=to_ms(p.end),
                reason=p.reason, created_by=staff_id, created_ms=now_ms()))
                .inserted_primary_key[0])
        self._changed(resident_id)
        return next(r for r in self.of(resident_id) if r["id"] == str(new_id))

    def delete(self, resident_id: str, absence_id: str, staff_id: str) -> dict[str, Any]:
        """Withdraw an absence added through the API."""
        if absence_id.startswith("registry-"):
            raise AbsenceError(409, "this absence is in the registry file; change it there")
        if not absence_id.isdigit() or len(absence_id) > 18:
            raise AbsenceError(404, "no such absence")
        with self.store.engine.begin() as conn:
            done = conn.execute(
                update(absences).where(absences.c.id == int(absence_id))
                .where(absences.c.resident_id == resident_id)
                .where(absences.c.deleted_ms.is_(None))
                .values(deleted_by=staff_id, deleted_ms=now_ms())).rowcount
        if done != 1:
            raise AbsenceError(404, "no such absence")
        self._changed(resident_id)
        return {"id": absence_id, "deleted": True}

    def _changed(self, resident_id: str) -> None:
        planned = self.planned(resident_id)
        for listener in self.listeners:
            listener(resident_id, planned)
