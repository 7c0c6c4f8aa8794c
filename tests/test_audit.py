"""The audit log answers "who saw this person" completely: every operation that can show a
resident's data is called (lists and both event streams included), and each call must be
found under that resident in `GET /api/audit?resident_id=`. Only validated ids are stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select

from detectors.model import Decision
from gateway.api.app import create_app
from gateway.api.policy import POLICY
from gateway.ingest.pipeline import BatchRows
from gateway.runtime import Runtime, build_alerting, load_runtime
from gateway.storage.schema import audit_log
from tests.homes import auth, two_units, write_config
from tests.support import free_port, wait_for

TODAY = datetime.now(UTC).date()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Runtime, str]]:
    reg = two_units()
    reg["residents"][0]["supervision"] = {"checks": ["23:00"], "all_well": ["door_closed"]}
    reg["residents"][0]["goals"] = [{
        "id": "g-1", "text": "Trygg natt", "life_area": "trygghet",
        "start": str(TODAY - timedelta(days=30)), "follow_up": str(TODAY + timedelta(days=60))}]
    rt = load_runtime(write_config(tmp_path, "mqtt://127.0.0.1:1",
                                   f"sqlite:///{tmp_path}/t.db", reg=reg))
    now = int(time.time() * 1000)
    rows = BatchRows()
    rows.observations.append({"resident_id": "r-1000", "device_id": "door-0",
                              "kind": "contact", "value": "closed", "ts_ms": now - 1000,
                              "received_ms": now, "room": "entrance", "clock_override": False})
    rows.status = {"door-0": {"device_id": "door-0", "resident_id": "r-1000",
                              "last_seen_ms": now, "battery": 90, "linkquality": 100,
                              "availability": "online"}}
    rt.store.commit_batch("seed", rows, [])
    alerts = build_alerting(rt, publish=False)
    [alert] = alerts.handle([Decision("raise", "sos", "r-1000", "sos:x", datetime.now(UTC),
                                      {}, None)])
    yield rt, str(alert)
    rt.store.close()


def _who_saw(rt: Runtime, resident: str) -> list[str]:
    with rt.store.engine.connect() as conn:
        return [r.action for r in conn.execute(
            select(audit_log.c.action).where(audit_log.c.resident_id == resident)
            .order_by(audit_log.c.id))]


def test_every_read_of_a_resident_is_found_under_their_id(world: tuple[Runtime, str]) -> None:
    rt, alert = world
    client = TestClient(create_app(rt))
    h = auth(rt, "s-admin")
    spec = client.app.openapi()  # type: ignore[attr-defined]
    missing = []
    calls = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            rule = POLICY.get((method.upper(), path))
            if rule is None or rule.scope == "none" or path.endswith("/stream") or \
                    method != "get":
                continue
            url = (path.replace("{resident_id}", "r-1000").replace("{alert_id}", alert)
                   .replace("{goal_id}", "g-1"))
            params: dict[str, Any] = {}
            names = {p["name"] for p in op.get("parameters", [])}
            if "first" in names:
                params.update(first=str(TODAY - timedelta(days=3)), last=str(TODAY))
            if "unit" in names:
                params["unit"] = "unit-a"
            for n in ("baseline_first", "baseline_last", "trial_first", "trial_last"):
                if n in names:
                    params[n] = str(TODAY - timedelta(days=10 if n.startswith("b") else 3)
                                    + timedelta(days=2 if n.endswith("last") else 0))
            before = len(_who_saw(rt, "r-1000"))
            r = client.get(url, params=params, headers=h)
            calls += 1
            if r.status_code >= 400:
                missing.append(f"GET {path}: {r.status_code} {r.text[:100]}")
            elif path != "/api/reports/unit" and len(_who_saw(rt, "r-1000")) == before:
                missing.append(f"GET {path}: showed r-1000's data, not in the audit log")
    # Acknowledging shows the alert too.
    before = len(_who_saw(rt, "r-1000"))
    assert client.post(f"/api/alerts/{alert}/ack", headers=h).status_code == 200
    assert len(_who_saw(rt, "r-1000")) == before + 1
    assert missing == [], "\n".join(missing)
    assert calls >= 20
    # The administrator's own answer to "who saw r-1000" lists them all.
    entries = client.get("/api/audit", params={"resident_id": "r-1000", "limit": 5000},
                         headers=h).json()
    assert {"read_alerts", "read_supervision", "read_device_status", "read_observations",
            "acknowledge_alert"} <= {e["action"] for e in entries}
    # Nothing but validated ids is stored: a bad id is refused before it gets there.
    assert client.get("/api/alerts", params={"resident_id": "1e309"},
                      headers=h).status_code == 404
    assert client.get("/api/audit", params={"resident_id": "1e309 OR 1=1"},
                      headers=h).status_code == 422
    with rt.store.engine.connect() as conn:
        stored = {r[0] for r in conn.execute(select(audit_log.c.resident_id).distinct())}
    assert stored <= {None, "r-1000", "r-1001"}


def test_event_streams_record_each_resident_the_first_time(world: tuple[Runtime, str]
                                                          ) -> None:
    rt, _ = world
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(rt), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, what="API up")
        base = f"http://127.0.0.1:{port}"
        for stream, event in (("/api/alerts/stream", "alert"),):
            with httpx.stream("GET", base + stream, params={"since": 0},
                              headers=auth(rt, "s-17"), timeout=10) as r:
                assert r.status_code == 200
                for line in r.iter_lines():
                    if line.startswith(f"event: {event}"):
                        break
        assert rt.alerts is not None
        rt.alerts.handle([Decision("raise", "fall", "r-1000", "fall:x", datetime.now(UTC),
                                   {}, None)])
        wait_for(lambda: "stream_alerts" in _who_saw(rt, "r-1000"), what="stream audited")
        assert _who_saw(rt, "r-1000").count("stream_alerts") == 1
        # Night staff of unit-a never get r-1001's events, so nothing is recorded for them.
        assert "stream_alerts" not in _who_saw(rt, "r-1001")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
