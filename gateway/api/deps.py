"""FastAPI dependencies: the runtime and the authenticated staff member."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from gateway.auth import verify_token
from gateway.config.registry import Resident, Staff
from gateway.errors import AuthError
from gateway.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    """The runtime the app was built with."""
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


STREAMS = frozenset({"/api/alerts/stream", "/api/supervision/stream"})


def current_staff(request: Request, rt: RuntimeDep) -> Staff:
    """Authenticate the bearer token and return the staff member it belongs to.

    Browsers' EventSource cannot send headers, so the event streams alone also accept the
    token as `?access_token=`.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not token and request.url.path in STREAMS:
        scheme, token = "bearer", request.query_params.get("access_token", "")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "bearer token required",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        claims = verify_token(rt.token_secret(), token.strip())
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc),
                            headers={"WWW-Authenticate": "Bearer"}) from None
    staff = rt.registry.staff_member(claims.staff_id)
    if staff is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "token for unknown staff member")
    return staff


CurrentStaff = Annotated[Staff, Depends(current_staff)]


def unit_scope(staff: Staff) -> set[str] | None:
    """Units a staff member may see (None = all)."""
    if staff.role == "night_staff":
        return {staff.unit} if staff.unit else set()
    return None


def resident_in_scope(resident_id: str, staff: Staff, rt: Runtime) -> Resident:
    """The resident, if this staff member may see them (night staff: own unit only)."""
    for res in rt.registry.residents:
        if res.id == resident_id:
            if staff.role == "night_staff" and res.unit != staff.unit:
                break  # same answer as "not found": do not reveal who lives elsewhere
            return res
    raise HTTPException(status.HTTP_404_NOT_FOUND, "no such resident in your scope")


EDITORS = frozenset({"assessor", "manager", "admin"})


def require_editor(staff: Staff, what: str) -> None:
    """Only assessors, managers and administrators change plans, goals and needs and see
    reports; night staff get 403."""
    if staff.role not in EDITORS:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"only assessors, managers and administrators {what}")


def require_admin(staff: Staff, what: str) -> None:
    """Administrators only; everyone else gets 403."""
    if staff.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"only administrators {what}")


def report_scope(staff: Staff) -> set[str] | None:
    """Units whose reports a staff member may see: an assessor or manager tied to a unit
    sees that unit, administrators and unit-less assessors/managers every unit."""
    require_editor(staff, "see reports")
    if staff.role != "admin" and staff.unit:
        return {staff.unit}
    return None
