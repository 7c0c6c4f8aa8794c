"""API security: password login, login rate limiting, roles and unit scope on every route,
and the administrators' audit log (real SQLite, the real `tillsyn staff password`)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from gateway.api.app import create_app
from gateway.api.limiter import LoginLimiter
from gateway.auth import create_token
from gateway.passwords import hash_password, verify_password
from gateway.runtime import Runtime, load_runtime
from gateway.storage.migrate import upgrade
from gateway.storage.store import Store
from tests.homes import auth, two_units, write_config
from tests.support import tillsyn

NURSE_PASSWORD = "night-shift-2026"


def _set_password(cfg: Path, staff: str, password: str) -> subprocess.CompletedProcess[str]:
    return tillsyn("staff", "password", "--config", str(cfg), "--staff", staff,
                   "--password-stdin", input=password + "\n")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Runtime, Path]]:
    folder = tmp_path_factory.mktemp("apisec")
    reg = two_units()
    cfg = write_config(folder, "mqtt://127.0.0.1:1", f"sqlite:///{folder}/t.db", reg=reg,
                       api={"login_failures_per_staff": 3, "login_window_seconds": 60})
    result = _set_password(cfg, "s-17", NURSE_PASSWORD)
    assert result.returncode == 0, result.stderr
    rt = load_runtime(cfg)
    with TestClient(create_app(rt)) as client:
        yield client, rt, cfg
    rt.store.close()


def test_login_gives_a_token_that_works_and_expires(
        api: tuple[TestClient, Runtime, Path]) -> None:
    client, rt, _ = api
    r = client.post("/api/auth/login", json={"staff_id": "s-17", "password": NURSE_PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["staff_id"], body["role"], body["unit"]) == ("s-17", "night_staff", "unit-a")
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    who = me.json()
    assert (who["staff_id"], who["role"], who["unit"]) == ("s-17", "night_staff", "unit-a")
    expired = create_token(rt.token_secret(), "s-17", -1)
    r = client.get("/api/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and r.json()["detail"] == "token expired"
    forged = body["token"][:-2] + ("AA" if not body["token"].endswith("AA") else "BB")
    assert client.get("/api/auth/me",
                      headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_wrong_password_and_unknown_staff_get_the_same_answer(
        api: tuple[TestClient, Runtime, Path]) -> None:
    client, rt, _ = api
    wrong = client.post("/api/auth/login", json={"staff_id": "s-17", "password": "nope-nope"})
    unknown = client.post("/api/auth/login", json={"staff_id": "s-ghost", "password": "x"})
    no_password = client.post("/api/auth/login", json={"staff_id": "s-admin", "password": "x"})
    assert wrong.status_code == unknown.status_code == no_password.status_code == 401
    assert wrong.json() == unknown.json() == no_password.json()
    # A correct login clears the id's failures, so the fixture's nurse is not locked out.
    assert client.post("/api/auth/login", json={"staff_id": "s-17",
                                                "password": NURSE_PASSWORD}).status_code == 200


def test_failed_logins_are_limited_counted_and_audited(
        api: tuple[TestClient, Runtime, Path]) -> None:
    client, rt, _ = api
    before = client.get("/metrics").text
    for _ in range(3):  # login_failures_per_staff: 3 in this config
        r = client.post("/api/auth/login", json={"staff_id": "s-17", "password": "guess-1234"})
        assert r.status_code == 401
    # Now even the right password waits: the attacker cannot tell.
    r = client.post("/api/auth/login", json={"staff_id": "s-17", "password": NURSE_PASSWORD})
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 61
    after = client.get("/metrics").text

    def value(text: str, name: str) -> float:
        line = next((ln for ln in text.splitlines() if ln.startswith(name + " ")), None)
        return float(line.split()[1]) if line else 0.0

    assert value(after, "tillsyn_login_failures_total") - value(
        before, "tillsyn_login_failures_total") == 3
    assert value(after, "tillsyn_login_rate_limited_total") - value(
        before, "tillsyn_login_rate_limited_total") == 1
    failures = rt.store.audit_entries(staff_id="s-17")
    assert sum(e["action"] == "login_failed" for e in failures) >= 3
    rt.store.engine.dispose()


def test_limiter_window_addresses_and_bounded_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/lim.db"
    upgrade(url)
    store = Store(url)
    now = [1_800_000_000.0]
    lim = LoginLimiter(store, per_staff=3, per_address=5, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert lim.retry_after("s-1", "10.0.0.1") is None
        lim.failed("s-1", "10.0.0.1")
    assert lim.retry_after("s-1", "10.0.0.9") == 61  # per id, whatever the address
    now[0] += 30
    assert lim.retry_after("s-1", "10.0.0.9") == 31
    now[0] += 31
    assert lim.retry_after("s-1", "10.0.0.9") is None  # the failures aged out
    # Guessing many ids from one address: the address is stopped after 5.
    for i in range(5):
        lim.failed(f"s-x{i}", "10.0.0.2")
    assert lim.retry_after("s-new", "10.0.0.2") is not None
    assert lim.retry_after("s-new", "10.0.0.3") is None
    # A success clears the id, not the address.
    lim.failed("s-2", "10.0.0.4")
    lim.succeeded("s-2")
    left = store.login_failures(["s:s-2", "a:10.0.0.4"], 0)
    assert left["s:s-2"] == [] and len(left["a:10.0.0.4"]) == 1
    # A flood of made-up ids: the table keeps only the window's failures.
    for i in range(300):
        now[0] += 1
        lim.failed(f"flood-{i}", f"10.1.{i // 250}.{i % 250}")
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*) FROM login_failures")).scalar_one()
    assert rows <= 2 * 61  # two keys a failure, one failure a second, a 60 s window
    store.close()


def test_login_limit_holds_across_workers(tmp_path: Path) -> None:
    """Two workers (two API apps on one database) count the same failures: the limit is
    per site, not once per worker behind the load balancer."""
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db",
                       reg=two_units(), api={"login_failures_per_staff": 3})
    assert _set_password(cfg, "s-17", NURSE_PASSWORD).returncode == 0
    workers = [load_runtime(cfg), load_runtime(cfg)]
    try:
        with TestClient(create_app(workers[0])) as a, TestClient(create_app(workers[1])) as b:
            wrong = {"staff_id": "s-17", "password": "wrong-guess"}
            assert [c.post("/api/auth/login", json=wrong).status_code
                    for c in (a, b, a)] == [401, 401, 401]
            r = b.post("/api/auth/login", json={"staff_id": "s-17",
                                                "password": NURSE_PASSWORD})
            assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    finally:
        for rt in workers:
            rt.store.close()


def test_password_rule_and_hashes(api: tuple[TestClient, Runtime, Path]) -> None:
    _, _, cfg = api
    r = _set_password(cfg, "s-admin", "short")
    assert r.returncode == 2 and "too short" in r.stderr
    r = _set_password(cfg, "s-nobody", "long-enough-password")
    assert r.returncode == 2 and "'s-nobody' is not in the registry" in r.stderr
    h = hash_password("long-enough-password")
    assert h.startswith("scrypt$") and "long-enough" not in h
    assert verify_password(h, "long-enough-password")
    assert not verify_password(h, "long-enough-passwore")
    assert not verify_password("garbage", "x")


def _personal_routes(client: TestClient) -> list[APIRoute]:
    app = client.app
    return [r for r in app.routes  # type: ignore[attr-defined]
            if isinstance(r, APIRoute) and r.path.startswith("/api/")
            and r.path not in ("/api/auth/login",)]


def test_every_api_route_needs_a_token(api: tuple[TestClient, Runtime, Path]) -> None:
    client, _, _ = api
    routes = _personal_routes(client)
    assert len(routes) >= 25  # the whole API, not a sample
    for route in routes:
        path = route.path.replace("{resident_id}", "r-1000").replace("{alert_id}", "1") \
            .replace("{goal_id}", "g-1").replace("{unit}", "unit-a")
        for method in route.methods:
            r = client.request(method, path)
            assert r.status_code == 401, (method, path, r.status_code)


def test_night_staff_never_see_another_units_resident(
        api: tuple[TestClient, Runtime, Path]) -> None:
    client, rt, _ = api
    nurse = auth(rt, "s-17")  # unit-a; r-1001 lives in unit-b
    checked = 0
    for route in _personal_routes(client):
        if "{resident_id}" not in route.path or "GET" not in route.methods:
            continue
        path = route.path.replace("{resident_id}", "r-1001").replace("{goal_id}", "g-1") \
            .replace("{alert_id}", "1")
        # Fill required query parameters (dates) so the request reaches the scope check.
        params = {p.alias: "2026-11-01" for p in route.dependant.query_params if p.required}
        r = client.get(path, params=params, headers=nurse)
        assert r.status_code in (403, 404), (path, r.status_code)
        assert "r-1001" not in r.text or r.status_code == 404, path
        checked += 1
    assert checked >= 8


def test_audit_log_is_for_administrators_and_records_reads(
        api: tuple[TestClient, Runtime, Path]) -> None:
    client, rt, _ = api
    nurse, admin = auth(rt, "s-17"), auth(rt, "s-admin")
    assert client.get("/api/residents/r-1000", headers=nurse).status_code == 200
    assert client.get("/api/audit", headers=nurse).status_code == 403
    r = client.get("/api/audit", params={"resident_id": "r-1000"}, headers=admin)
    assert r.status_code == 200
    entries = r.json()
    assert entries[0]["staff_id"] == "s-17" and entries[0]["action"] == "read_resident"
    assert all(e["resident_id"] == "r-1000" for e in entries)
    # Reading the audit log is itself audited.
    latest = client.get("/api/audit", params={"limit": 1}, headers=admin).json()
    assert latest[0]["action"] == "read_audit" and latest[0]["staff_id"] == "s-admin"
