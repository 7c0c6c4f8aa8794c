"""Planned absences and the home's occupancy of one resident."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Path

from gateway.api.deps import RuntimeDep
from gateway.api.policy import Authorized, resident_in_scope
from gateway.config.registry import Absence
from gateway.occupancy.absences import AbsenceError, AbsenceService
from gateway.runtime import Runtime

router = APIRouter(prefix="/api/residents", tags=["occupancy"])


def _service(rt: Runtime) -> AbsenceService:
    if rt.absences is None:
        raise HTTPException(503, "occupancy is not running")
    return rt.absences


@router.get("/{resident_id}/absences")
def list_absences(resident_id: str, staff: Authorized, rt: RuntimeDep
                  ) -> list[dict[str, Any]]:
    """Planned absences, from the registry and added here, earliest first (audited)."""
    res = resident_in_scope(resident_id, staff, rt)
    rows = _service(rt).of(res.id)
    rt.store.audit(staff.id, "read_absences", res.id, f"n={len(rows)}")
    return rows


@router.post("/{resident_id}/absences", status_code=201)
def add_absence(resident_id: str, body: Absence, staff: Authorized,
                rt: RuntimeDep) -> dict[str, Any]:
    """Plan an absence (assessors, managers, administrators). During it the resident is
    away (planned): checks say so and raise nothing, and no not_home_at_night is raised.
    A time without an offset is the site's local time."""
    res = resident_in_scope(resident_id, staff, rt)
    try:
        row = _service(rt).add(res.id, body, staff.id)
    except AbsenceError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    rt.store.audit(staff.id, "add_absence", res.id, f"id={row['id']}")
    return row


@router.delete("/{resident_id}/absences/{absence_id}")
def delete_absence(resident_id: str, staff: Authorized, rt: RuntimeDep,
                   absence_id: str = Path(..., max_length=32)) -> dict[str, Any]:
    """Withdraw an absence added through the API (assessors, managers, administrators);
    it is kept, marked withdrawn, with who and when."""
    res = resident_in_scope(resident_id, staff, rt)
    try:
        out = _service(rt).delete(res.id, absence_id, staff.id)
    except AbsenceError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    rt.store.audit(staff.id, "delete_absence", res.id, f"id={absence_id}")
    return out


@router.get("/{resident_id}/occupancy")
def occupancy(resident_id: str, staff: Authorized, rt: RuntimeDep) -> dict[str, Any]:
    """At home, away or unknown now, with the evidence's source and since when (audited)."""
    res = resident_in_scope(resident_id, staff, rt)
    if rt.detectors is None:
        raise HTTPException(503, "detectors are not running")
    rt.store.audit(staff.id, "read_occupancy", res.id, None)
    return {"resident_id": res.id, **rt.detectors.occupancy(res.id)}
