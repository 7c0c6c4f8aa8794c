"""FastAPI dependencies: the runtime and the authenticated staff member."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from gateway.auth import verify_token
from gateway.config.registry import Staff
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

    Browsers' EventSource cannot send headers, so the event streams alone also accept a
    stream ticket as `?ticket=` (POST /api/auth/stream-ticket: valid 60 s, good for
    nothing else). The bearer token itself never travels in a URL, where proxies log it.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    use = "api"
    if not token and request.url.path in STREAMS and "ticket" in request.query_params:
        scheme, token, use = "bearer", request.query_params.get("ticket", ""), "stream"
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "bearer token required",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        claims = verify_token(rt.token_secret(), token.strip(), use)
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc),
                            headers={"WWW-Authenticate": "Bearer"}) from None
    staff = rt.registry.staff_member(claims.staff_id)
    if staff is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "token for unknown staff member")
    return staff


CurrentStaff = Annotated[Staff, Depends(current_staff)]
