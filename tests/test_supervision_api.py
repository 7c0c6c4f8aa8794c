"""Supervision through the HTTP API: plans, tonight's checks, summary, journal, scope and
audit (real SQLite, the real detector runner fed stored observations)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from detectors.supervision import check_instants
from firmware_stubs.home import last_complete_night
from gateway.api.app import create_app
from gateway.ingest.pipeline import BatchRows
from gateway.runtime import Runtime, build_alerting, load_runtime
from gateway.storage.schema import audit_log
from tests.homes import auth, two_units, write_config

TZ = ZoneInfo("Europe/Stockholm")
PLAN = {"checks": ["23:00", "02:00", "05:00"], "all_well": ["in_bed", "door_closed"],
        "replaces_physical_visits": True}


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Runtime, date]]:
    folder = tmp_path_factory.mktemp("supapi")
    reg = two_units()
    reg["residents"][1]["consent"] = ["motion", "contact"]  # no bed data
    reg["residents"][0]["supervision"] = PLAN
    reg["staff"].append({"id": "s-assessor", "name": "Assessor", "role": "assessor"})
    cfg = write_config(folder, "mqtt://127.0.0.1:1", f"sqlite:///{folder}/t.db", reg=reg)
    rt = load_runtime(cfg)
    build_alerting(rt, publish=False)
    # A past night: in bed at 22:00, the bed mat reports every 5 minutes until 01:30 and then
    # falls silent; the door reports closed at 21:00 and 02:05.
    night = last_complete_night(datetime.now(UTC), TZ).date()
    start = datetime.combine(night, datetime.min.time(), TZ) + timedelta(hours=21)
    now = ms(datetime.now(UTC))

    def row(device: str, kind: str, value: Any, ts: datetime) -> dict[str, Any]:
        return {"resident_id": "r-1000", "device_id": device, "kind": kind, "value": value,
                "ts_ms": ms(ts), "received_ms": now, "room": None, "clock_override": False}

    rows = [row("door-0", "contact", "closed", start),
            row("bed-0", "bed", True, start + timedelta(hours=1))]
    t = start + timedelta(hours=1, minutes=5)
    while t <= start + timedelta(hours=4, minutes=30):
        rows.append(row("bed-0", "heartbeat", None, t))
        t += timedelta(minutes=5)
    rows.append(row("door-0", "contact", "closed", start + timedelta(hours=5, minutes=5)))
    batch = BatchRows()
    batch.observations = rows
    rt.store.commit_batch("seed", batch, [])
    assert rt.detectors is not None
    rt.detectors.feed(rows, {})
    with TestClient(create_app(rt)) as client:
        yield client, rt, night
    rt.store.close()


def test_tonight_shows_done_rechecking_and_pending(api: tuple[TestClient, Runtime, date]
                                                   ) -> None:
    client, rt, night = api
    r = client.get("/api/supervision/tonight", headers=auth(rt, "s-17"))
    assert r.status_code == 200, r.text
    [res] = r.json()["residents"]  # r-1001 lives in unit-b and has no plan
    assert (res["resident_id"], res["night"]) == ("r-1000", night.isoformat())
    c23, c02, c05 = (ms(d) for d in check_instants(night, PLAN["checks"], TZ))
    got = [(c["due_ms"], c["status"], c["outcome"], c["late"]) for c in res["checks"]]
    assert got == [(c23, "done", "ok", False), (c02, "rechecking", "unknown", False),
                   (c05, "pending", None, False)]
    recheck = res["checks"][1]
    assert recheck["recheck_at"] == datetime.fromtimestamp(
        (c02 + 15 * 60_000) / 1000, UTC).isoformat()
    [entry] = recheck["entries"]
    assert "bed sensor bed-0 silent" in entry["reasons"]
    bed = next(e for e in entry["evidence"] if e["criterion"] == "in_bed")
    assert (bed["device_id"], bed["last_seen_age_s"]) == ("bed-0", 30 * 60)


def test_morning_summary_and_counts(api: tuple[TestClient, Runtime, date]) -> None:
    client, rt, night = api
    s = client.get(f"/api/supervision/summary?night={night}", headers=auth(rt, "s-17"))
    assert s.status_code == 200, s.text
    body = s.json()
    assert body["unit"] == "unit-a"
    [mine] = body["residents"]
    assert (mine["checks_planned"], mine["digital_checks"], mine["ok"], mine["unknown"],
            mine["pending_recheck"], mine["physical_visits_made"],
            mine["physical_visits_avoided"]) == (3, 2, 1, 0, 1, 0, 2)
    c = client.get(f"/api/supervision/counts?first={night}&last={night}&resident_id=r-1000",
                   headers=auth(rt, "s-assessor"))
    assert c.status_code == 200 and c.json() == [mine]
    bad = client.get(f"/api/supervision/counts?first={night}&last={night - timedelta(1)}",
                     headers=auth(rt, "s-assessor"))
    assert bad.status_code == 422


def test_unit_scope_and_audit(api: tuple[TestClient, Runtime, date]) -> None:
    client, rt, night = api
    h = auth(rt, "s-17")
    assert client.get("/api/supervision/summary?unit=unit-b", headers=h).status_code == 404
    assert client.get("/api/supervision/tonight?unit=nowhere", headers=h).status_code == 404
    assert client.get("/api/residents/r-1001/supervision", headers=h).status_code == 404
    assert client.get("/api/supervision/tonight").status_code == 401
    assert client.get("/api/supervision/summary", headers=auth(rt, "s-admin")
                      ).status_code == 422  # an administrator names the unit
    j = client.get(f"/api/residents/r-1000/supervision/journal?night={night}", headers=h)
    assert [e["outcome"] for e in j.json()] == ["ok", "unknown"]
    with rt.store.engine.connect() as conn:
        actions = {(r.staff_id, r.action) for r in conn.execute(select(audit_log))}
    assert {("s-17", "read_supervision"), ("s-17", "read_supervision_summary"),
            ("s-17", "read_supervision_journal")} <= actions


def test_plan_read_and_change(api: tuple[TestClient, Runtime, date]) -> None:
    client, rt, _ = api
    got = client.get("/api/residents/r-1000/supervision", headers=auth(rt, "s-17")).json()
    assert got["source"] == "registry" and got["plan"]["checks"] == PLAN["checks"]
    new = {**PLAN, "checks": ["22:30", "03:00"], "recheck_minutes": 20,
           "bathroom_long_minutes": 45}
    denied = client.put("/api/residents/r-1000/supervision", json=new,
                        headers=auth(rt, "s-17"))
    assert denied.status_code == 403
    bad = client.put("/api/residents/r-1000/supervision",
                     json={**new, "all_well": ["in_bed"], "checks": ["25:00"]},
                     headers=auth(rt, "s-assessor"))
    assert bad.status_code == 422 and "25:00" in bad.text
    # r-1001 has not consented to bed data: a plan that needs it is refused, clearly.
    refused = client.put("/api/residents/r-1001/supervision", json=new,
                         headers=auth(rt, "s-admin"))
    assert refused.status_code == 422
    # Every 422 has FastAPI's documented shape: a list of {loc, msg, type}.
    assert [d["msg"] for d in refused.json()["detail"]] == [
        "plan.supervision.all_well.0: value 'in_bed': needs consent to bed"]
    ok = client.put("/api/residents/r-1000/supervision", json=new,
                    headers=auth(rt, "s-assessor"))
    assert ok.status_code == 200, ok.text
    assert (ok.json()["source"], ok.json()["changed_by"], ok.json()["plan"]["checks"]) == (
        "api", "s-assessor", ["22:30", "03:00"])
    assert rt.detectors is not None
    sup = rt.detectors.engines["r-1000"].supervisor
    assert sup is not None and sup.plan.times == ("22:30", "03:00")
    assert (sup.plan.recheck_minutes, sup.plan.bathroom_long_minutes) == (20, 45)
