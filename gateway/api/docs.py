"""The API documentation (Swagger UI and ReDoc) served by the gateway itself, offline.

Care networks are often closed: FastAPI's own /docs loads its scripts from a CDN and shows a
blank page there. The assets come from the `fastapi-offline` package (a packaged copy of
swagger-ui-dist and ReDoc's standalone bundle); the pages start them with a script file of
ours, so the strict Content-Security-Policy (no inline script) holds on these pages too.
ReDoc's bundle shows a logo from its CDN; the copy served here points it at our icon, so
the pages make no request outside the gateway at all.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = Path(str(files("fastapi_offline") / "static"))
SWAGGER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tillsyn API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/static/icons/icon-192.png">
<link rel="stylesheet" href="/docs-assets/swagger-ui.css"></head>
<body><div id="swagger-ui" data-spec="/openapi.json"></div>
<script src="/docs-assets/swagger-ui-bundle.js"></script>
<script src="/static/docs-init.js"></script></body></html>"""
REDOC = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tillsyn API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/static/icons/icon-192.png"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/docs-assets/redoc.js"></script></body></html>"""
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def add_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc (ReDoc), their assets under /docs-assets."""
    redoc_js = (ASSETS / "redoc.standalone.js").read_text(encoding="utf-8").replace(
        REDOC_LOGO, "/static/icons/icon-192.png")

    @app.get("/docs-assets/redoc.js", include_in_schema=False)
    def redoc_bundle() -> Response:
        return Response(redoc_js, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    app.mount("/docs-assets", StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return HTMLResponse(SWAGGER)

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return HTMLResponse(REDOC)
