"""The resident card (room, action plan, goals) and staff visits."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from gateway.api.deps import RuntimeDep
from gateway.api.policy import Authorized, resident_in_scope, unit_scope
from gateway.config.registry import ConsentKind, Resident
from gateway.runtime import Runtime
from gateway.storage.store import from_ms

router = APIRouter(prefix="/api/residents", tags=["residents"])


@router.get("")
def list_residents(staff: Authorized, rt: RuntimeDep) -> list[dict[str, Any]]:
    """The residents in the caller's scope: id, name, unit (for pickers; audited)."""
    units = unit_scope(staff)
    rows = [{"id": r.id, "name": r.name, "unit": r.unit} for r in rt.registry.residents
            if units is None or r.unit in units]
    rt.store.audit_shown(staff.id, "list_residents", (r["id"] for r in rows),
                         f"n={len(rows)}")
    return rows


@router.get("/{resident_id}")
def card(resident_id: str, staff: Authorized, rt: RuntimeDep) -> dict[str, Any]:
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
def list_visits(resident_id: str, staff: Authorized, rt: RuntimeDep) -> list[dict[str, Any]]:
    """Staff visits (who, when, how long), newest first (audited)."""
    res = resident_in_scope(resident_id, staff, rt)
    rt.store.audit(staff.id, "read_visits", res.id, None)
    if rt.alerts is None:
        return []
    return rt.alerts.visits(res.id)


@router.get("/{resident_id}/risk")
def risk(resident_id: str, staff: Authorized, rt: RuntimeDep,
         days: int = Query(90, ge=7, le=730)) -> dict[str, Any]:
    """Fall-risk trend: daily probability, level, contributing factors and walking speed
    (audited). Days that could not be scored say why (status)."""
    res = resident_in_scope(resident_id, staff, rt)
    if rt.risk is None:
        raise HTTPException(503, "fall-risk scoring is not running")
    rt.store.audit(staff.id, "read_risk", res.id, None)
    return rt.risk.trend(res.id, days)


class ConsentBody(BaseModel):
    """The data kinds the person agrees to, in full (what is not listed is withdrawn)."""

    kinds: list[ConsentKind] = Field(..., max_length=16)


class ConsentView(BaseModel):
    """Consent in force, and where it comes from."""

    resident_id: str
    kinds: list[str]
    source: Literal["registry", "changed"]
    changed_at: datetime | None = None
    changed_by: str | None = None


def _consent(rt: Runtime, resident: Resident) -> ConsentView:
    change = rt.store.consent_in_force().get(resident.id)
    if change is None:
        return ConsentView(resident_id=resident.id, kinds=sorted(resident.consent),
                           source="registry")
    return ConsentView(resident_id=resident.id, kinds=change["kinds"], source="changed",
                       changed_at=from_ms(change["at_ms"]), changed_by=change["by_staff"])


@router.get("/{resident_id}/consent", response_model=ConsentView)
def get_consent(resident_id: str, staff: Authorized, rt: RuntimeDep) -> ConsentView:
    """The data kinds this person has consented to (audited)."""
    res = resident_in_scope(resident_id, staff, rt)
    rt.store.audit(staff.id, "read_consent", res.id, None)
    return _consent(rt, res)


@router.put("/{resident_id}/consent", response_model=ConsentView)
def put_consent(resident_id: str, body: ConsentBody, staff: Authorized,
                rt: RuntimeDep) -> ConsentView:
    """Record a consent change (administrators). It applies to the next message ingested:
    readings of a withdrawn kind are no longer stored. Data already stored stays until
    retention or `tillsyn erase resident` removes it. The change outlives restarts and
    takes precedence over the registry file's list."""
    res = resident_in_scope(resident_id, staff, rt)
    kinds: list[str] = sorted(set(body.kinds))
    rt.store.record_consent(res.id, kinds, staff.id)
    rt.set_consent(res.id, kinds)  # other workers read the change from the database
    rt.store.audit(staff.id, "change_consent", res.id, ",".join(kinds))
    return _consent(rt, res)
