"""Alerts: list, acknowledge, resolve, and the live stream (server-sent events)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from gateway.alerting.service import OUTCOMES, AlertError, AlertService, public
from gateway.api.deps import RuntimeDep
from gateway.api.policy import Authorized, unit_scope
from gateway.api.sse import SSE_RESPONSES, EventStreamResponse, resume_from, sse_response
from gateway.config.registry import Staff

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


class ResolveBody(BaseModel):
    """How an alert ended."""

    outcome: str = Field(..., pattern="^(" + "|".join(OUTCOMES) + ")$")
    note: str | None = Field(None, max_length=2000)


def _service(rt: Any) -> AlertService:
    if rt.alerts is None:
        raise HTTPException(503, "alerting is not running")
    svc: AlertService = rt.alerts
    return svc


def _in_scope(svc: AlertService, alert_id: int, staff: Staff) -> dict[str, Any]:
    try:
        alert = svc.get(alert_id)
    except AlertError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    units = unit_scope(staff)
    if units is not None and alert["unit_id"] not in units:
        raise HTTPException(404, "no such alert")
    return alert


@router.get("")
def list_alerts(staff: Authorized, rt: RuntimeDep,
                status: Annotated[str | None, Query(
                    pattern="^(open|acknowledged|resolved|unresolved)$")] = None,
                resident_id: Annotated[str | None, Query(max_length=64)] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
    """Alerts in the caller's scope, priority first; `last_event_id` is where to resume."""
    svc = _service(rt)
    last = svc.last_event_id()
    rows = svc.list_alerts(units=unit_scope(staff), status=status, resident_id=resident_id,
                           limit=limit)
    rt.store.audit_shown(staff.id, "read_alerts", (a["resident_id"] for a in rows),
                         f"status={status} n={len(rows)}")
    return {"last_event_id": last, "alerts": [public(a) for a in rows]}


def _step(rt: Any, alert_id: int, staff: Staff, action: str,
          do: Callable[[AlertService], dict[str, Any]]) -> dict[str, Any]:
    """A staff step on an alert in the caller's scope: audited, then done; the service's
    refusal (a step the alert's state does not allow) is its answer."""
    svc = _service(rt)
    alert = _in_scope(svc, alert_id, staff)
    rt.store.audit(staff.id, action, alert["resident_id"], f"alert={alert_id}")
    try:
        return public(do(svc))
    except AlertError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.post("/{alert_id}/ack")
def acknowledge(alert_id: int, staff: Authorized, rt: RuntimeDep) -> dict[str, Any]:
    """Acknowledge: someone has it."""
    return _step(rt, alert_id, staff, "acknowledge_alert",
                 lambda svc: svc.acknowledge(alert_id, staff.id))


@router.post("/{alert_id}/unack")
def unacknowledge(alert_id: int, staff: Authorized, rt: RuntimeDep) -> dict[str, Any]:
    """Undo one's own acknowledgement within 10 s (a mistaken tap): the alert is open
    again."""
    return _step(rt, alert_id, staff, "unacknowledge_alert",
                 lambda svc: svc.unacknowledge(alert_id, staff.id))


@router.post("/{alert_id}/resolve")
def resolve(alert_id: int, body: ResolveBody, staff: Authorized,
            rt: RuntimeDep) -> dict[str, Any]:
    """Resolve with an outcome: visited, called, no_action_needed, false_alarm, technical
    (the last two need a note saying what happened)."""
    return _step(rt, alert_id, staff, "resolve_alert",
                 lambda svc: svc.resolve(alert_id, staff.id, body.outcome, body.note))


@router.get("/stream", response_class=EventStreamResponse,
            responses=SSE_RESPONSES)
async def stream(request: Request, staff: Authorized, rt: RuntimeDep,
                 last_event_id: Annotated[str | None, Header()] = None,
                 since: Annotated[int | None, Query(ge=0)] = None) -> StreamingResponse:
    """Server-sent events, one per alert transition; resumable with Last-Event-ID."""
    svc = _service(rt)
    units = unit_scope(staff)
    start = await resume_from(last_event_id, since, svc.last_event_id)
    await run_in_threadpool(rt.store.audit, staff.id, "stream_alerts", None,
                            f"from event {start}")

    return sse_response(request, svc.broadcast, start, "alert",
                        lambda last: svc.events_after(last, units),
                        lambda item: int(item["event_id"]),
                        lambda shown: rt.store.audit_shown(staff.id, "stream_alerts", shown,
                                                           "first sent"),
                        lambda item: item["alert"].get("resident_id"))
