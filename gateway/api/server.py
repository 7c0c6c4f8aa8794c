"""The HTTP server for the API and web UI (uvicorn), configured in one place."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from gateway.config.gateway import ApiConfig


def server(app: FastAPI, api: ApiConfig, host: str | None = None,
           port: int | None = None) -> uvicorn.Server:
    """A uvicorn server for the app. X-Forwarded-For is believed only from the configured
    `api.trusted_proxies` (uvicorn's own default would trust 127.0.0.1, so any local
    client could pick the address the login limit and the audit log record)."""
    trusted = list(api.trusted_proxies)
    return uvicorn.Server(uvicorn.Config(
        app, host=host or api.host, port=api.port if port is None else port,
        log_level="warning", log_config=None, proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or [], server_header=False))
