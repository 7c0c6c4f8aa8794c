"""The three IBIC reports as JSON, CSV or printable HTML (assessors, managers, admins)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from gateway.api.deps import RuntimeDep
from gateway.api.policy import Authorized, resident_in_scope, unit_scope
from gateway.api.routes.goals import http, ibic
from gateway.config.registry import Resident, Staff
from gateway.ibic.render import render
from gateway.ibic.reports import digital_trial_report, followup_report, unit_report
from gateway.ibic.service import IbicError
from gateway.runtime import Runtime

router = APIRouter(prefix="/api/reports", tags=["reports"])
Format = Literal["json", "csv", "html"]
MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8",
         "html": "text/html; charset=utf-8"}
# What `format` selects, documented for the OpenAPI schema.
FORMATS: dict[int | str, dict[str, object]] = {200: {
    "description": "The report: JSON, CSV or printable HTML (`format`)",
    "content": {"application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}}}}}


def _resident(resident_id: str, staff: Staff, rt: Runtime) -> Resident:
    scope = unit_scope(staff)
    res = resident_in_scope(resident_id, staff, rt)
    if scope is not None and res.unit not in scope:
        raise HTTPException(404, "no such resident in your scope")
    return res


def _respond(rep: dict[str, object], fmt: Format, lang: str, name: str) -> Response:
    headers = {"Content-Disposition": f'inline; filename="{name}.{fmt}"'}
    return Response(render(rep, fmt, lang), media_type=MEDIA[fmt], headers=headers)


@router.get("/followup/{resident_id}", responses=FORMATS)
def followup(resident_id: str, staff: Authorized, rt: RuntimeDep, format: Format = "json",
             lang: Literal["sv", "en"] = "sv", until: date | None = None) -> Response:
    """Individual follow-up: needs, goals, weekly indicator series, status, linked alerts."""
    res = _resident(resident_id, staff, rt)
    try:
        rep = followup_report(ibic(rt), res, until)
    except IbicError as exc:
        raise http(exc) from None
    rt.store.audit(staff.id, "report_followup", res.id, format)
    return _respond(rep, format, lang, f"followup-{res.id}")


@router.get("/digital-trial/{resident_id}", responses=FORMATS)
def digital_trial(resident_id: str, staff: Authorized, rt: RuntimeDep,
                  baseline_first: date, baseline_last: date, trial_first: date,
                  trial_last: date, format: Format = "json",
                  lang: Literal["sv", "en"] = "sv") -> Response:
    """Digital-trial evaluation: baseline (physical supervision) against the trial."""
    res = _resident(resident_id, staff, rt)
    if rt.supervision is None:
        raise HTTPException(503, "supervision is not running")
    try:
        rep = digital_trial_report(ibic(rt), rt.supervision, res,
                                   (baseline_first, baseline_last), (trial_first, trial_last))
    except IbicError as exc:
        raise http(exc) from None
    rt.store.audit(staff.id, "report_digital_trial", res.id, format)
    return _respond(rep, format, lang, f"digital-trial-{res.id}")


@router.get("/unit", responses=FORMATS)
def unit(staff: Authorized, rt: RuntimeDep, first: date, last: date,
         unit: str | None = None, format: Format = "json",
         lang: Literal["sv", "en"] = "sv") -> Response:
    """Unit level: goal fulfilment per life area and provider/unit, measurable goals,
    follow-ups on time (every unit in scope, or one)."""
    scope = unit_scope(staff)
    try:
        rep = unit_report(ibic(rt), rt.registry, scope, unit, first, last)
    except IbicError as exc:
        raise http(exc) from None
    rt.store.audit(staff.id, "report_unit", None, f"{unit or 'all'} {format}")
    return _respond(rep, format, lang, f"unit-{unit or 'all'}")
