"""IBIC: the ICF catalogue, the indicator library, needs, goals, progress and follow-up."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from gateway.alerting.service import AlertError
from gateway.api.deps import RuntimeDep
from gateway.api.policy import Authorized, resident_in_scope
from gateway.config.registry import Goal, Need
from gateway.ibic.catalogue import catalogue
from gateway.ibic.indicators import DEFINITIONS
from gateway.ibic.service import IbicError, IbicService
from gateway.runtime import Runtime

router = APIRouter(tags=["goals"])


def ibic(rt: Runtime) -> IbicService:
    """The runtime's IBIC service."""
    if rt.ibic is None:
        raise HTTPException(503, "IBIC service is not running")
    return rt.ibic


def http(exc: IbicError) -> HTTPException:
    """The HTTP form of an IBIC error."""
    return HTTPException(exc.status, str(exc))


@router.get("/api/icf")
def icf(staff: Authorized) -> dict[str, Any]:
    """IBIC life areas and the shipped ICF codes, Swedish and English titles."""
    return catalogue().model_dump()


@router.get("/api/indicators")
def indicators(staff: Authorized) -> list[dict[str, Any]]:
    """The indicator library (definitions in docs/indicators.md)."""
    return [{"id": d.id, "unit": d.unit, "better": d.better, "sv": d.sv, "en": d.en,
             "available": d.available, "not_available_reason": d.not_available_reason or None,
             "alert_kinds": list(d.alert_kinds)} for d in DEFINITIONS.values()]


@router.get("/api/residents/{resident_id}/needs")
def get_needs(resident_id: str, staff: Authorized, rt: RuntimeDep) -> dict[str, Any]:
    """Needs per life area (audited)."""
    res = resident_in_scope(resident_id, staff, rt)
    rt.store.audit(staff.id, "read_needs", res.id, None)
    needs, source = ibic(rt).goals.needs(res)
    return {"needs": [n.model_dump(mode="json") for n in needs], **source}


@router.put("/api/residents/{resident_id}/needs")
def put_needs(resident_id: str, body: list[Need], staff: Authorized,
              rt: RuntimeDep) -> dict[str, Any]:
    """Replace the needs (assessors, managers, administrators)."""
    res = resident_in_scope(resident_id, staff, rt)
    ibic(rt).goals.save_needs(res, body, staff.id)
    rt.store.audit(staff.id, "change_needs", res.id, None)
    return get_needs(resident_id, staff, rt)


@router.get("/api/residents/{resident_id}/goals")
def list_goals(resident_id: str, staff: Authorized, rt: RuntimeDep) -> list[dict[str, Any]]:
    """Goals in force with status and pending proposal (night staff: own unit; audited)."""
    res = resident_in_scope(resident_id, staff, rt)
    rt.store.audit(staff.id, "read_goals", res.id, None)
    return ibic(rt).overview(res)


@router.post("/api/residents/{resident_id}/goals", status_code=201)
def create_goal(resident_id: str, body: Goal, staff: Authorized,
                rt: RuntimeDep) -> dict[str, Any]:
    """Add a goal (assessors, managers, administrators); 409 if the id is taken."""
    res = resident_in_scope(resident_id, staff, rt)
    if ibic(rt).goals.goal(res, body.id) is not None:
        raise HTTPException(409, f"resident {res.id} already has a goal {body.id!r}")
    ibic(rt).goals.save_goal(res, body, staff.id)
    rt.store.audit(staff.id, "create_goal", res.id, body.id)
    return get_goal(resident_id, body.id, staff, rt)


@router.put("/api/residents/{resident_id}/goals/{goal_id}")
def update_goal(resident_id: str, goal_id: str, body: Goal, staff: Authorized,
                rt: RuntimeDep) -> dict[str, Any]:
    """Change a goal (assessors, managers, administrators); the history keeps the old one."""
    res = resident_in_scope(resident_id, staff, rt)
    if body.id != goal_id:
        raise HTTPException(422, f"body id {body.id!r} does not match {goal_id!r}")
    try:
        ibic(rt).goal(res, goal_id)
    except IbicError as exc:
        raise http(exc) from None
    ibic(rt).goals.save_goal(res, body, staff.id)
    rt.store.audit(staff.id, "update_goal", res.id, goal_id)
    return get_goal(resident_id, goal_id, staff, rt)


@router.get("/api/residents/{resident_id}/goals/{goal_id}")
def get_goal(resident_id: str, goal_id: str, staff: Authorized, rt: RuntimeDep,
             until: date | None = None) -> dict[str, Any]:
    """One goal: status, history, weekly progress of its indicators and the alerts that
    concern it (audited)."""
    res = resident_in_scope(resident_id, staff, rt)
    svc = ibic(rt)
    entry = next((e for e in svc.entries(res) if e[0].id == goal_id), None)
    if entry is None:
        raise HTTPException(404, f"resident {res.id} has no goal {goal_id!r}")
    goal, summary, history = entry
    try:
        progress = svc.progress(res, goal, until)
    except IbicError as exc:
        raise http(exc) from None
    rt.store.audit(staff.id, "read_goal", res.id, goal_id)
    return {**summary, "history": history, "progress": progress,
            "linked_alerts": svc.linked_alerts(res, goal)}


class FollowUp(BaseModel):
    """A person's follow-up of a goal."""

    status: Literal["achieved", "partly_achieved", "not_achieved"]
    comment: str | None = Field(None, max_length=2000)


@router.post("/api/residents/{resident_id}/goals/{goal_id}/follow-up")
def follow_up(resident_id: str, goal_id: str, body: FollowUp, staff: Authorized,
              rt: RuntimeDep) -> dict[str, Any]:
    """Confirm the gateway's proposal, or override it with a comment (assessors, managers,
    administrators)."""
    res = resident_in_scope(resident_id, staff, rt)
    try:
        out = ibic(rt).assess(res, goal_id, body.status, staff.id, body.comment)
    except IbicError as exc:
        raise http(exc) from None
    rt.store.audit(staff.id, "follow_up_goal", res.id, f"{goal_id}: {out['event']}")
    return out


@router.get("/api/alerts/{alert_id}/goals")
def alert_goals(alert_id: int, staff: Authorized, rt: RuntimeDep) -> dict[str, Any]:
    """The goals an alert concerns."""
    if rt.alerts is None:
        raise HTTPException(503, "alerting is not running")
    try:
        alert = rt.alerts.get(alert_id)
    except AlertError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    res = resident_in_scope(alert["resident_id"], staff, rt)
    rt.store.audit(staff.id, "read_alert_goals", res.id, str(alert_id))
    return {"alert_id": alert_id, "goals": ibic(rt).goals_of_alert(alert)}
