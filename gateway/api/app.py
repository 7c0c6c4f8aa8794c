"""FastAPI application factory: receives its collaborators, keeps them on app.state."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from gateway import __version__
from gateway.api.routes import (
    alerts,
    devices,
    goals,
    health,
    observations,
    reports,
    residents,
    supervision,
)
from gateway.runtime import Runtime
from gateway.web import STATIC


def create_app(rt: Runtime) -> FastAPI:
    """Build the HTTP API for a runtime."""
    app = FastAPI(title="Tillsyn", version=__version__, docs_url="/docs")
    app.state.runtime = rt
    app.include_router(health.router)
    app.include_router(alerts.router)
    app.include_router(observations.router)
    app.include_router(residents.router)
    app.include_router(devices.router)
    app.include_router(supervision.router)
    app.include_router(goals.router)
    app.include_router(reports.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def board() -> FileResponse:
        """The night-staff alert board."""
        return FileResponse(STATIC / "index.html")

    @app.get("/resident", include_in_schema=False)
    def resident_page() -> FileResponse:
        """A resident's goals, progress charts and follow-up (`?id=`)."""
        return FileResponse(STATIC / "resident.html")

    @app.get("/reports", include_in_schema=False)
    def reports_page() -> FileResponse:
        """The assessor and unit reports."""
        return FileResponse(STATIC / "reports.html")

    return app
