"""The resident card (room, action plan, goals) and staff visits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from gateway.api.deps import CurrentStaff, RuntimeDep, resident_in_scope

router = APIRouter(prefix="/api/residents", tags=["residents"])


@router.get("/{resident_id}")
def card(resident_id: str, staff: CurrentStaff, rt: RuntimeDep) -> dict[str, Any]:
    """What night staff need at the door: name, rooms, what to do, goals (audited)."""
    res = resident_in_scope(resident_id, staff, rt)
    rt.store.audit(staff.id, "read_resident", res.id, None)
    return {"id": res.id, "name": res.name, "unit": res.unit, "action_plan": res.action_plan,
            "rooms": sorted({d.room for d in res.devices if d.room}),
            "goals": [{"id": g["id"], "text": g["text"], "life_area": g["life_area"],
                       "status": g["status"]}
                      for g in (rt.ibic.overview(res) if rt.ibic is not None else [])],
            "supervision": res.supervision.model_dump()}


@router.get("/{resident_id}/visits")
def list_visits(resident_id: str, staff: CurrentStaff, rt: RuntimeDep) -> list[dict[str, Any]]:
    """Staff visits (who, when, how long), newest first (audited)."""
    res = resident_in_scope(resident_id, staff, rt)
    rt.store.audit(staff.id, "read_visits", res.id, None)
    if rt.alerts is None:
        return []
    return rt.alerts.visits(res.id)


@router.get("/{resident_id}/risk")
def risk(resident_id: str, staff: CurrentStaff, rt: RuntimeDep,
         days: int = Query(90, ge=7, le=730)) -> dict[str, Any]:
    """Fall-risk trend: daily probability, level, contributing factors and walking speed
    (audited). Days that could not be scored say why (status)."""
    res = resident_in_scope(resident_id, staff, rt)
    if rt.risk is None:
        raise HTTPException(503, "fall-risk scoring is not running")
    rt.store.audit(staff.id, "read_risk", res.id, None)
    return rt.risk.trend(res.id, days)
