"""HTTP API: bearer tokens, unit scope, audit, health and metrics (real SQLite)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.api.app import create_app
from gateway.auth import create_token
from gateway.ingest.pipeline import BatchRows
from gateway.runtime import Runtime, load_runtime
from gateway.storage.schema import audit_log
from tests.homes import auth, two_units, write_config


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Runtime, Path]]:
    folder = tmp_path_factory.mktemp("api")
    reg = two_units()
    cfg = write_config(folder, "mqtt://127.0.0.1:1", f"sqlite:///{folder}/t.db", reg=reg)
    rt = load_runtime(cfg)
    now = int(time.time() * 1000)
    rows = BatchRows()
    for rid in ("r-1000", "r-1001"):
        for i, kind in enumerate(["motion", "bed", "motion"]):
            rows.observations.append({
                "resident_id": rid, "device_id": f"d-{rid}", "kind": kind, "value": True,
                "ts_ms": now - 60_000 + i * 1000, "received_ms": now, "room": "hall",
                "clock_override": False})
    rt.store.commit_batch("seed", rows, [])
    with TestClient(create_app(rt)) as client:
        yield client, rt, cfg
    rt.store.close()


def test_token_from_cli_reads_observations(api: tuple[TestClient, Runtime, Path]) -> None:
    client, rt, cfg = api
    result = subprocess.run([sys.executable, "-m", "gateway", "token", "create", "--config",
                             str(cfg), "--staff", "s-17"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    r = client.get("/api/residents/r-1000/observations",
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    body = r.json()
    assert [o["kind"] for o in body] == ["motion", "bed", "motion"]
    assert body[0]["room"] == "hall"


def test_filters(api: tuple[TestClient, Runtime, Path]) -> None:
    client, rt, _ = api
    h = auth(rt, "s-17")
    r = client.get("/api/residents/r-1000/observations", params={"kind": "bed"}, headers=h)
    assert [o["kind"] for o in r.json()] == ["bed"]
    all_obs = client.get("/api/residents/r-1000/observations", headers=h).json()
    since = all_obs[1]["ts"]
    r = client.get("/api/residents/r-1000/observations", params={"since": since}, headers=h)
    assert len(r.json()) == 2
    r = client.get("/api/residents/r-1000/observations", params={"until": since}, headers=h)
    assert len(r.json()) == 1
    r = client.get("/api/residents/r-1000/observations", params={"kind": "telepathy"}, headers=h)
    assert r.status_code == 422


def test_night_staff_sees_only_own_unit(api: tuple[TestClient, Runtime, Path]) -> None:
    client, rt, _ = api
    r = client.get("/api/residents/r-1001/observations", headers=auth(rt, "s-17"))
    assert r.status_code == 404  # lives on unit-b: not revealed to unit-a night staff
    r = client.get("/api/residents/r-1001/observations", headers=auth(rt, "s-admin"))
    assert r.status_code == 200
    assert len(r.json()) == 3


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc", "Bearer a.b",
                                    "Bearer " + "x" * 5000])
def test_missing_or_bad_tokens(api: tuple[TestClient, Runtime, Path], header: str | None) -> None:
    client, _, _ = api
    headers = {} if header is None else {"Authorization": header}
    r = client.get("/api/residents/r-1000/observations", headers=headers)
    assert r.status_code == 401


def test_expired_and_forged_tokens(api: tuple[TestClient, Runtime, Path]) -> None:
    client, rt, _ = api
    expired = create_token(rt.token_secret(), "s-17", -10)
    r = client.get("/api/residents/r-1000/observations",
                   headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401
    assert r.json()["detail"] == "token expired"
    forged = create_token("another-key", "s-admin", 3600)
    r = client.get("/api/residents/r-1000/observations",
                   headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


def test_every_read_is_audited(api: tuple[TestClient, Runtime, Path]) -> None:
    client, rt, _ = api
    before = rt.store.count(audit_log, resident_id="r-1000", staff_id="s-admin")
    client.get("/api/residents/r-1000/observations", headers=auth(rt, "s-admin"))
    client.get("/api/residents/r-1000/observations", headers=auth(rt, "s-admin"))
    assert rt.store.count(audit_log, resident_id="r-1000", staff_id="s-admin") == before + 2


def test_admin_only_device_status(api: tuple[TestClient, Runtime, Path]) -> None:
    client, rt, _ = api
    assert client.get("/api/devices/status", headers=auth(rt, "s-17")).status_code == 403
    assert client.get("/api/devices/status", headers=auth(rt, "s-admin")).status_code == 200


def test_health_and_metrics_without_ingest(api: tuple[TestClient, Runtime, Path]) -> None:
    client, _, _ = api
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["database"] is True
    m = client.get("/metrics").text
    assert "tillsyn_messages_received_total" in m
    assert "tillsyn_dead_letters_total" in m
