"""Digital night supervision: plans, tonight's checks, the journal, the morning summary."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from detectors.model import night_of
from gateway.api.deps import RuntimeDep
from gateway.api.policy import Authorized, resident_in_scope, unit_scope
from gateway.api.sse import SSE_RESPONSES, EventStreamResponse, resume_from, sse_response
from gateway.config.registry import Staff, Supervision, supervision_consent_problems
from gateway.ibic.service import EARLIEST, LATEST
from gateway.profiles.loader import plan_device_problems
from gateway.runtime import Runtime
from gateway.supervision.journal import Journal
from gateway.supervision.plans import PlanStore, detector_plan
from gateway.supervision.summary import SupervisionViews

router = APIRouter(tags=["supervision"])
MAX_NIGHTS = 366


def _views(rt: Runtime) -> SupervisionViews:
    if rt.supervision is None:
        raise HTTPException(503, "supervision is not running")
    return rt.supervision


def _journal(rt: Runtime) -> Journal:
    if rt.journal is None:
        raise HTTPException(503, "supervision is not running")
    return rt.journal


def _plans(rt: Runtime) -> PlanStore:
    return rt.plans if rt.plans is not None else PlanStore(rt.store)


def _night(night: date | None) -> date | None:
    """A night asked for, if it is a date a night can be (2000..2200)."""
    if night is not None and not EARLIEST <= night <= LATEST:
        raise HTTPException(422, f"night: {night} is outside {EARLIEST}..{LATEST}")
    return night


def _unit(staff: Staff, unit: str | None, rt: Runtime) -> str:
    """The unit asked for, if in scope; night staff default to their own."""
    scope = unit_scope(staff)
    chosen = unit or staff.unit
    if chosen is None:
        raise HTTPException(422, "unit: required")
    if (scope is not None and chosen not in scope) or \
            chosen not in {u.id for u in rt.registry.units}:
        raise HTTPException(404, "no such unit in your scope")
    return chosen


# --- tonight, summary, counts --------------------------------------------------------------


@router.get("/api/supervision/tonight")
def tonight(staff: Authorized, rt: RuntimeDep,
            unit: Annotated[str | None, Query(max_length=64)] = None,
            night: date | None = None) -> dict[str, Any]:
    """Each resident's checks of the night (done, pending, rechecking, late, outcome).

    The night defaults to the one on each resident's clock."""
    views = _views(rt)
    chosen = _unit(staff, unit, rt)
    rows = views.tonight(units=unit_scope(staff), unit=chosen, night=_night(night))
    rt.store.audit_shown(staff.id, "read_supervision", (r["resident_id"] for r in rows),
                         f"unit={chosen} n={len(rows)}")
    return {"unit": chosen, "timezone": rt.config.site.timezone,
            "last_journal_id": _journal(rt).last_id(), "residents": rows}


@router.get("/api/supervision/summary")
def summary(staff: Authorized, rt: RuntimeDep,
            unit: Annotated[str | None, Query(max_length=64)] = None,
            night: date | None = None) -> dict[str, Any]:
    """The morning summary of a unit (default: the night that ended this morning)."""
    views = _views(rt)
    chosen = _unit(staff, unit, rt)
    out = views.summary(units=unit_scope(staff), unit=chosen, night=_night(night))
    rt.store.audit_shown(staff.id, "read_supervision_summary",
                         (r["resident_id"] for r in out["residents"]),
                         f"unit={chosen} night={out['night']}")
    return out


@router.get("/api/supervision/counts")
def counts(staff: Authorized, rt: RuntimeDep, first: date, last: date,
           resident_id: Annotated[str | None, Query(max_length=64)] = None
           ) -> list[dict[str, Any]]:
    """Digital checks, physical visits avoided and made, per resident and night."""
    _night(first)
    _night(last)
    if last < first or (last - first).days >= MAX_NIGHTS:
        raise HTTPException(422, f"first..last must be 1 to {MAX_NIGHTS} nights")
    if resident_id is not None:
        resident_in_scope(resident_id, staff, rt)
    rows = _views(rt).counts(units=unit_scope(staff), first=first, last=last,
                             resident_id=resident_id)
    rt.store.audit_shown(staff.id, "read_supervision_counts",
                         (r["resident_id"] for r in rows),
                         f"{first.isoformat()}..{last.isoformat()}")
    return rows


@router.get("/api/supervision/stream", response_class=EventStreamResponse,
            responses=SSE_RESPONSES)
async def stream(request: Request, staff: Authorized, rt: RuntimeDep,
                 last_event_id: Annotated[str | None, Header()] = None,
                 since: Annotated[int | None, Query(ge=0)] = None) -> StreamingResponse:
    """Server-sent events, one per new journal entry in the caller's scope."""
    journal = _journal(rt)
    units = unit_scope(staff)
    start = await resume_from(last_event_id, since, journal.last_id)
    await run_in_threadpool(rt.store.audit, staff.id, "stream_supervision", None,
                            f"from entry {start}")
    return sse_response(request, journal.broadcast, start, "check",
                        lambda last: journal.entries(units=units, after_id=last, limit=200),
                        lambda item: int(item["id"]),
                        lambda shown: rt.store.audit_shown(staff.id, "stream_supervision",
                                                           shown, "first sent"))


# --- per resident: plan and journal ----------------------------------------------------------


@router.get("/api/residents/{resident_id}/supervision")
def get_plan(resident_id: str, staff: Authorized, rt: RuntimeDep) -> dict[str, Any]:
    """The plan in force and where it comes from (registry, or changed through the API)."""
    res = resident_in_scope(resident_id, staff, rt)
    plan, origin = _plans(rt).effective(res)
    rt.store.audit(staff.id, "read_supervision_plan", res.id, None)
    return {"resident_id": res.id, "plan": plan.model_dump(mode="json"), **origin}


@router.put("/api/residents/{resident_id}/supervision")
def put_plan(resident_id: str, body: Supervision, staff: Authorized,
             rt: RuntimeDep) -> dict[str, Any]:
    """Change a plan (assessors, managers, administrators). It takes effect from the next
    check time; consent and the installed devices must cover every criterion."""
    res = resident_in_scope(resident_id, staff, rt)
    candidate = res.model_copy(update={"supervision": body})
    problems = supervision_consent_problems(candidate, "plan") + \
        plan_device_problems(candidate, rt.profiles)
    if problems:
        raise HTTPException(422, problems)
    _plans(rt).save(res.id, body, staff.id)
    if rt.detectors is not None:
        rt.detectors.set_plan(res.id, detector_plan(body, res, rt.config))
    rt.store.audit(staff.id, "change_supervision_plan", res.id, None)
    return get_plan(resident_id, staff, rt)


@router.get("/api/residents/{resident_id}/supervision/journal")
def journal_entries(resident_id: str, staff: Authorized, rt: RuntimeDep,
                    night: date | None = None) -> list[dict[str, Any]]:
    """Journal entries with their evidence, oldest first (default: the resident's night
    now)."""
    res = resident_in_scope(resident_id, staff, rt)
    chosen = _night(night) or night_of(_views(rt).clock(res.id), ZoneInfo(rt.config.site.timezone))
    rows = _journal(rt).entries(resident_id=res.id, night=chosen.isoformat())
    rt.store.audit(staff.id, "read_supervision_journal", res.id, chosen.isoformat())
    return rows
