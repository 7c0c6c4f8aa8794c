"""schemathesis against the OpenAPI schema: no server errors, no response that breaks its
schema, for every operation, as an administrator and as night staff, on SQLite and on
PostgreSQL (the real alerting and supervision services; no MQTT needed). Then hostile values
in every parameter and body field of every operation: NUL and other control characters,
lone surrogates, 1e309, very long strings.

Bounded: a few dozen generated requests per operation. Path ids come half the time from the
registry (so requests reach real residents, goals and alerts), otherwise generated."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from detectors.model import Decision
from gateway.api.app import create_app
from gateway.ingest.pipeline import BatchRows
from gateway.runtime import Runtime, build_alerting, load_runtime
from tests.homes import auth, two_units, write_config

STREAMS = ("/api/alerts/stream", "/api/supervision/stream")
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _runtime(folder: Path, db_url: str | None = None) -> Runtime:
    reg = two_units()
    reg["residents"][0]["supervision"] = {"checks": ["23:00", "02:00"],
                                          "all_well": ["in_bed", "door_closed"]}
    reg["residents"][0]["goals"] = [{
        "id": "g-1000-1", "text": "Sleep through the night", "life_area": "trygghet",
        "start": "2026-11-01", "follow_up": "2027-02-01",
        "indicators": [{"id": "nights_without_staff_intervention", "target": 0.9,
                        "direction": "at_least"}]}]
    cfg = write_config(folder, "mqtt://127.0.0.1:1", db_url or f"sqlite:///{folder}/t.db",
                       reg=reg)
    rt = load_runtime(cfg)
    now = int(time.time() * 1000)
    rows = BatchRows()
    for i, kind in enumerate(["motion", "bed", "contact"]):
        rows.observations.append({
            "resident_id": "r-1000", "device_id": "hall-pir-0", "kind": kind, "value": True,
            "ts_ms": now - 60_000 + i * 1000, "received_ms": now, "room": "hall",
            "clock_override": False})
    rt.store.commit_batch("seed", rows, [])
    alerts = build_alerting(rt, publish=False)
    alerts.raise_alert(Decision("raise", "sos", "r-1000", "sos:alarm-0", datetime.now(UTC),
                                {}, "alarm-0"))
    return rt


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_runtime(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[Runtime]:
    db = None
    if request.param == "postgresql":
        import sqlalchemy as sa

        from gateway.storage.engine import sqlalchemy_url

        server = request.getfixturevalue("pg_server")
        admin = sa.create_engine(sqlalchemy_url(server), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text('CREATE DATABASE "fuzz"'))
        admin.dispose()
        db = server.rsplit("/", 1)[0] + "/fuzz"
    rt = _runtime(tmp_path_factory.mktemp("fuzz"), db)
    yield rt
    rt.store.close()


@pytest.fixture(scope="module")
def api_schema(fuzz_runtime: Runtime) -> Any:
    config = SchemathesisConfig.from_dict({
        "dictionaries": {"residents": {"values": ["r-1000", "r-1001"]},
                         "goals": {"values": ["g-1000-1"]},
                         "alerts": {"values": ["1"]}},
        "parameters": {"path.resident_id": {"dictionary": "residents", "probability": 0.5},
                       "path.goal_id": {"dictionary": "goals", "probability": 0.5},
                       "path.alert_id": {"dictionary": "alerts", "probability": 0.5}},
    })
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(fuzz_runtime),
                                            config=config)
    return schema


# The two event streams stay open (10 s keep-alive) for every generated request, 7 minutes
# in all: left out here; test_event_streams_are_documented checks what they promise.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path=list(STREAMS))


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_as_admin(case: Any, fuzz_runtime: Runtime) -> None:
    case.call_and_validate(headers=auth(fuzz_runtime, "s-admin"), checks=CHECKS)


@schema.parametrize()
@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_as_night_staff(case: Any, fuzz_runtime: Runtime) -> None:
    case.call_and_validate(headers=auth(fuzz_runtime, "s-17"), checks=CHECKS)


def test_event_streams_are_documented(fuzz_runtime: Runtime) -> None:
    doc = create_app(fuzz_runtime).openapi()
    for path in STREAMS:
        content = doc["paths"][path]["get"]["responses"]["200"]["content"]
        assert list(content) == ["text/event-stream"], path
        assert set(content["text/event-stream"]["schema"]["properties"]) >= {"id", "event",
                                                                             "data"}


HOSTILE: list[tuple[str, Any, set[int]]] = [
    # (what, value, the answers it may get)
    ("NUL", "s-17\u0000", {404, 422}),
    ("a C0 control", "a\u0007b", {404, 422}),
    ("a lone surrogate", "\ud800", {404, 422}),
    ("1e309", "1e309", {400, 401, 403, 404, 409, 422}),
    ("100,000 characters", "x" * 100_000, {400, 401, 403, 404, 409, 413, 422}),
]


def _hostile_requests(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every operation with one hostile value in one place: a path id, a query parameter,
    or a top-level body field (and the login, which needs no token)."""
    for path, ops in spec["paths"].items():
        if path in STREAMS:
            continue
        for method, op in ops.items():
            for p in op.get("parameters", []):
                where = p["in"]
                if where in ("path", "query"):
                    yield method.upper(), path, {"in": where, "name": p["name"]}
            if "requestBody" in op:
                yield method.upper(), path, {"in": "body", "name": "staff_id"}
                yield method.upper(), path, {"in": "raw", "name": "1e309"}


def test_hostile_values_in_every_field(fuzz_runtime: Runtime) -> None:
    from fastapi.testclient import TestClient

    app = create_app(fuzz_runtime)
    client = TestClient(app, raise_server_exceptions=False)
    headers = auth(fuzz_runtime, "s-admin")
    bad = []
    n = 0
    for method, path, target in _hostile_requests(app.openapi()):
        for what, value, allowed in HOSTILE:
            url = path.replace("{resident_id}", "r-1000").replace("{goal_id}", "g-1000-1")
            url = url.replace("{alert_id}", "1").replace("{absence_id}", "1")
            params: dict[str, Any] = {}
            kwargs: dict[str, Any] = {}
            if target["in"] == "path":
                url = path.replace("{" + target["name"] + "}",
                                   urllib.parse.quote(value, safe="", errors="surrogatepass")
                                   if isinstance(value, str) else str(value))
                for k, v in (("{resident_id}", "r-1000"), ("{goal_id}", "g-1000-1"),
                             ("{alert_id}", "1"), ("{absence_id}", "1")):
                    url = url.replace(k, v)
            elif target["in"] == "query":
                params[target["name"]] = value
            elif target["in"] == "raw":
                kwargs["content"] = b'{"staff_id": 1e309, "target": 1e309}'
                kwargs["headers"] = {"content-type": "application/json"}
            else:
                kwargs["content"] = json.dumps({target["name"]: value, "text": value,
                                                "reason": value}).encode()
                kwargs["headers"] = {"content-type": "application/json"}
            h = {**headers, **kwargs.pop("headers", {})}
            if what.startswith("100,000") and target["in"] in ("path", "query"):
                value = "x" * 10_000  # what fits a URL (HTTP clients refuse 64 kB ones)
                params = dict.fromkeys(params, value)
                if target["in"] == "path":
                    url = url.replace("x" * 100_000, value)
            try:
                r = client.request(method, url, params=params, headers=h, **kwargs)
            except UnicodeEncodeError:
                continue  # the HTTP client itself cannot send it
            n += 1
            if r.status_code >= 500 or (r.status_code not in allowed and r.status_code >= 400):
                bad.append(f"{method} {path} {target} {what}: {r.status_code} {r.text[:120]}")
    assert bad == [], "\n".join(bad)
    assert n > 200
    rejected = fuzz_runtime.metrics.render().decode()
    assert 'tillsyn_api_rejected_total{reason="bad_character"}' in rejected
