"""Password login (gives a bearer token), who am I, and the administrators' audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from gateway.api.deps import RuntimeDep
from gateway.api.limiter import LoginLimiter
from gateway.api.policy import Authorized
from gateway.auth import issue_token
from gateway.config.registry import ID_PATTERN
from gateway.passwords import verify_password
from gateway.storage.store import from_ms, to_ms

router = APIRouter(tags=["auth"])


class LoginBody(BaseModel):
    """Staff id and password."""

    staff_id: str = Field(..., min_length=1, max_length=64)
    password: str = Field(..., min_length=1, max_length=256)


class Me(BaseModel):
    """The staff member a token speaks for (no name: the UI needs role and unit)."""

    staff_id: str
    role: str
    unit: str | None


class LoginResult(Me):
    """A bearer token and when it expires."""

    token: str
    expires_at: datetime


class AuditEntry(BaseModel):
    """Who read or changed what, when."""

    at: datetime
    staff_id: str
    action: str
    resident_id: str | None
    detail: str | None


@router.post("/api/auth/login", response_model=LoginResult,
             responses={401: {"description": "Wrong staff id or password"},
                        429: {"description": "Too many failed logins; see Retry-After"}})
async def login(body: LoginBody, request: Request, rt: RuntimeDep) -> LoginResult:
    """Log in with staff id and password; returns a bearer token (api.token_ttl_hours).

    After `api.login_failures_per_staff` failures for one id, or
    `api.login_failures_per_address` from one address, within `api.login_window_seconds`,
    logins are refused with 429 and Retry-After until the oldest failure ages out."""
    lim: LoginLimiter = request.app.state.login_limiter  # counts in the shared database
    address = request.client.host if request.client else "unknown"
    wait = await run_in_threadpool(lim.retry_after, body.staff_id, address)
    if wait is not None:
        rt.metrics.login_limited.inc()
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            f"too many failed logins: try again in {wait} s",
                            headers={"Retry-After": str(wait)})
    staff = rt.registry.staff_member(body.staff_id)
    stored = await run_in_threadpool(rt.store.password_hash, body.staff_id) if staff else None
    ok = await run_in_threadpool(verify_password, stored, body.password)
    if not ok or staff is None:
        await run_in_threadpool(lim.failed, body.staff_id, address)
        rt.metrics.login_failures.inc()
        await run_in_threadpool(rt.store.audit, body.staff_id[:64], "login_failed", None,
                                f"from {address}")
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong staff id or password")
    await run_in_threadpool(lim.succeeded, staff.id)
    ttl = rt.config.api.token_ttl_hours * 3600
    token, expires = issue_token(rt.token_secret(), staff.id, ttl)
    await run_in_threadpool(rt.store.audit, staff.id, "login", None, f"from {address}")
    return LoginResult(staff_id=staff.id, role=staff.role, unit=staff.unit, token=token,
                       expires_at=from_ms(expires * 1000))


class StreamTicket(BaseModel):
    """A ticket for the event streams' URL (`?ticket=`): valid 60 s, for nothing else."""

    ticket: str
    expires_at: datetime


STREAM_TICKET_SECONDS = 60


@router.post("/api/auth/stream-ticket", response_model=StreamTicket)
def stream_ticket(staff: Authorized, rt: RuntimeDep) -> StreamTicket:
    """A short-lived ticket to open an event stream with (browsers' EventSource cannot send
    the Authorization header, and a bearer token in a URL ends up in proxies' logs)."""
    ticket, expires = issue_token(rt.token_secret(), staff.id, STREAM_TICKET_SECONDS,
                                  use="stream")
    return StreamTicket(ticket=ticket, expires_at=from_ms(expires * 1000))


class Site(Me):
    """Who is logged in, and what the pages need to show the site's words and times."""

    unit_name: str | None = Field(None, description="The unit's name, for the header")
    units: dict[str, str] = Field(default_factory=dict,
                                  description="Names of the units in the caller's scope")
    timezone: str = Field(..., description="The site's time zone: every time is shown in it")
    rooms: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="The registry's own room names {sv, en}; "
                                          "standard rooms are in the message catalogue")


@router.get("/api/auth/me", response_model=Site)
def me(staff: Authorized, rt: RuntimeDep) -> Site:
    """The staff member this token belongs to, with their unit's name, the site's time
    zone and the registry's room names (no personal data)."""
    names = {u.id: u.name for u in rt.registry.units
             if staff.unit is None or u.id == staff.unit}
    return Site(staff_id=staff.id, role=staff.role, unit=staff.unit,
                unit_name=names.get(staff.unit) if staff.unit else None, units=names,
                timezone=rt.config.site.timezone, rooms=rt.registry.room_names())


@router.get("/api/audit", response_model=list[AuditEntry])
def audit(staff: Authorized, rt: RuntimeDep,
          staff_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
          resident_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
          since: datetime | None = None, until: datetime | None = None,
          limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[dict[str, Any]]:
    """The audit log (administrators only), newest first: every read of personal data,
    every change, every login and failed login. Reading it is itself audited."""
    rows = rt.store.audit_entries(
        staff_id=staff_id, resident_id=resident_id,
        since_ms=to_ms(since) if since else None, until_ms=to_ms(until) if until else None,
        limit=limit)
    rt.store.audit(staff.id, "read_audit", resident_id, f"n={len(rows)}")
    return [{"at": from_ms(r["at_ms"]), "staff_id": r["staff_id"], "action": r["action"],
             "resident_id": r["resident_id"], "detail": r["detail"]} for r in rows]
