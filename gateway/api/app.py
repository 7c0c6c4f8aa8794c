"""FastAPI application factory: receives its collaborators, keeps them on app.state."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError

from gateway import __version__
from gateway.api.docs import add_docs
from gateway.api.headers import SecurityHeaders
from gateway.api.hostile import HostileInput
from gateway.api.limiter import LoginLimiter
from gateway.api.routes import (
    absences,
    alerts,
    auth,
    devices,
    goals,
    health,
    observations,
    push,
    reports,
    residents,
    supervision,
)
from gateway.runtime import Runtime
from gateway.web import STATIC

log = logging.getLogger(__name__)


def create_app(rt: Runtime) -> FastAPI:
    """Build the HTTP API for a runtime."""
    app = FastAPI(title="Tillsyn", version=__version__, docs_url=None, redoc_url=None)
    add_docs(app)
    app.state.runtime = rt
    api = rt.config.api
    app.state.login_limiter = LoginLimiter(rt.store, api.login_failures_per_staff,
                                           api.login_failures_per_address,
                                           api.login_window_seconds)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(alerts.router)
    app.include_router(observations.router)
    app.include_router(residents.router)
    app.include_router(devices.router)
    app.include_router(supervision.router)
    app.include_router(absences.router)
    app.include_router(push.router)
    app.include_router(goals.router)
    app.include_router(reports.router)

    @app.exception_handler(HTTPException)
    async def one_shape_for_422(request: Request, exc: HTTPException) -> Response:
        """Our own 422s (a period that ends before it starts, a missing unit...) in the same
        documented shape as FastAPI's validation errors: a list of {loc, msg, type}."""
        if exc.status_code == 422 and not _is_validation_list(exc.detail):
            items = exc.detail if isinstance(exc.detail, list) else [exc.detail]
            return JSONResponse({"detail": [{"loc": ["request"], "msg": str(m),
                                             "type": "value_error"} for m in items]},
                                status_code=422, headers=exc.headers)
        return await http_exception_handler(request, exc)

    @app.exception_handler(SQLAlchemyError)
    async def database_unavailable(request: Request, exc: SQLAlchemyError) -> Response:
        """The database is down or refused: say so (503), do not crash with a 500."""
        log.error("database error on %s %s: %s", request.method, request.url.path,
                  type(exc).__name__)
        return JSONResponse({"detail": "database unavailable; try again shortly"},
                            status_code=503, headers={"Retry-After": "5"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # The last added runs first: headers go on every answer, the hostile-input refusals too.
    app.add_middleware(HostileInput,
                       count=lambda reason: rt.metrics.api_rejected.labels(reason=reason).inc())
    app.add_middleware(SecurityHeaders)

    @app.get("/", include_in_schema=False)
    def board() -> FileResponse:
        """The night-staff alert board."""
        return FileResponse(STATIC / "index.html")

    @app.get("/sw.js", include_in_schema=False)
    def service_worker() -> FileResponse:
        """The board's service worker (Web Push), at the root so its scope is the board."""
        return FileResponse(STATIC / "sw.js", media_type="text/javascript",
                            headers={"Cache-Control": "no-cache"})

    @app.get("/resident", include_in_schema=False)
    def resident_page() -> FileResponse:
        """A resident's goals, progress charts and follow-up (`?id=`)."""
        return FileResponse(STATIC / "resident.html")

    @app.get("/reports", include_in_schema=False)
    def reports_page() -> FileResponse:
        """The assessor and unit reports."""
        return FileResponse(STATIC / "reports.html")

    return app


def _is_validation_list(detail: object) -> bool:
    return isinstance(detail, list) and all(isinstance(d, dict) and "msg" in d
                                            for d in detail)
