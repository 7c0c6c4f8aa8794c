"""Headers, stream tickets and trusted proxies, against a real uvicorn server (the one
`tillsyn run` starts, gateway/api/server.py) on a real SQLite store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from gateway.api.app import create_app
from gateway.api.server import server
from gateway.auth import create_token, issue_token
from gateway.runtime import Runtime, build_alerting, load_runtime
from gateway.storage.schema import audit_log
from tests.homes import auth, write_config
from tests.support import free_port, tillsyn, wait_for


def serve(rt: Runtime) -> Iterator[str]:
    port = free_port()
    srv = server(create_app(rt), rt.config.api, host="127.0.0.1", port=port)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: srv.started, what="API up")
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(params=[[], ["127.0.0.1"]], ids=["no-proxy", "proxy-127.0.0.1"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Runtime,
                                                                          list[str]]]:
    trusted: list[str] = request.param
    rt = load_runtime(write_config(tmp_path, "mqtt://127.0.0.1:1",
                                   f"sqlite:///{tmp_path}/t.db",
                                   api={"trusted_proxies": trusted}))
    build_alerting(rt, publish=False)
    for base in serve(rt):
        yield base, rt, trusted
    rt.store.close()


def test_security_headers(api: tuple[str, Runtime, list[str]]) -> None:
    base, rt, _ = api
    page = httpx.get(base + "/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp.split("script-src")[1] \
        .split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    data = httpx.get(base + "/api/alerts", headers=auth(rt, "s-17"))
    assert data.status_code == 200
    assert data.headers["cache-control"] == "no-store"
    assert data.headers["content-security-policy"].startswith("default-src 'none'")
    refused = httpx.post(base + "/api/auth/login", content=b'{"staff_id": "a\\u0000"}',
                         headers={"content-type": "application/json"})
    assert refused.status_code == 422 and refused.headers["x-content-type-options"] == "nosniff"
    assert "server" not in data.headers


def test_streams_take_a_short_ticket_never_the_bearer_token(
        api: tuple[str, Runtime, list[str]]) -> None:
    base, rt, _ = api
    bearer = create_token(rt.token_secret(), "s-17", 3600)
    # The bearer token in the URL is not accepted any more (proxies log URLs).
    r = httpx.get(base + "/api/alerts/stream", params={"access_token": bearer}, timeout=5)
    assert r.status_code == 401
    r = httpx.get(base + "/api/alerts/stream", params={"ticket": bearer}, timeout=5)
    assert r.status_code == 401 and "not stream" in r.text
    ticket = httpx.post(base + "/api/auth/stream-ticket",
                        headers={"Authorization": f"Bearer {bearer}"}).json()["ticket"]
    with httpx.stream("GET", base + "/api/alerts/stream", params={"ticket": ticket},
                      timeout=5) as s:
        assert s.status_code == 200
        assert s.headers["content-type"].startswith("text/event-stream")
    # A ticket is good for the streams only, and for a minute only.
    assert httpx.get(base + "/api/alerts", headers={"Authorization": f"Bearer {ticket}"}
                     ).status_code == 401
    old, _ = issue_token(rt.token_secret(), "s-17", -1, use="stream")
    assert httpx.get(base + "/api/alerts/stream", params={"ticket": old},
                     timeout=5).status_code == 401


def test_forwarded_for_is_believed_only_from_trusted_proxies(
        api: tuple[str, Runtime, list[str]]) -> None:
    base, rt, trusted = api
    r = httpx.post(base + "/api/auth/login", json={"staff_id": "s-17", "password": "wrong"},
                   headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 401
    with rt.store.engine.connect() as conn:
        detail = conn.execute(select(audit_log.c.detail).where(
            audit_log.c.action == "login_failed")).scalar()
    assert detail == ("from 203.0.113.9" if trusted else "from 127.0.0.1")


def test_token_cli_refuses_a_lifetime_that_is_not_positive(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db")
    for hours in ("0", "-3"):
        r = tillsyn("token", "create", "--config", str(cfg), "--staff", "s-17", "--hours",
                    hours)
        assert r.returncode == 2 and "--hours: value" in r.stderr, r.stderr
    r = tillsyn("token", "create", "--config", str(cfg), "--staff", "s-17", "--hours", "2")
    assert r.returncode == 0, r.stderr
