"""Planned absences and occupancy through the HTTP API: roles, scope, validation, audit,
and the detectors and checks taking them in force (real SQLite, the real runner)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from detectors.occupancy import OccupancyChange
from gateway.api.app import create_app
from gateway.runtime import Runtime, build_alerting, load_runtime
from gateway.storage.schema import audit_log
from tests.homes import auth, two_units, write_config


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    reg = two_units()
    reg["staff"] += [{"id": "s-assessor", "name": "Assessor", "role": "assessor"},
                     {"id": "s-b", "name": "Night nurse B", "unit": "unit-b",
                      "role": "night_staff"}]
    reg["residents"][0]["absences"] = [{"start": "2026-12-24T10:00:00", "end":
                                        "2026-12-27T18:00:00", "reason": "hos dottern"}]
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db", reg=reg)
    rt = load_runtime(cfg)
    build_alerting(rt, publish=False)
    with TestClient(create_app(rt)) as client:
        yield client, rt
    rt.store.close()


def test_plan_list_and_withdraw_an_absence(api: tuple[TestClient, Runtime]) -> None:
    client, rt = api
    start = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    body = {"start": start.isoformat(), "end": (start + timedelta(days=3)).isoformat(),
            "reason": "sjukhusvistelse"}
    # Night staff read but do not plan.
    assert client.post("/api/residents/r-1000/absences", json=body,
                       headers=auth(rt, "s-17")).status_code == 403
    r = client.post("/api/residents/r-1000/absences", json=body,
                    headers=auth(rt, "s-assessor"))
    assert r.status_code == 201, r.text
    new = r.json()
    assert (new["source"], new["created_by"], new["reason"]) == ("api", "s-assessor",
                                                                  "sjukhusvistelse")
    rows = client.get("/api/residents/r-1000/absences", headers=auth(rt, "s-17")).json()
    assert [(x["source"], x["reason"]) for x in rows] == [
        ("api", "sjukhusvistelse"), ("registry", "hos dottern")]
    # The detectors have it at once: an hour from now she is away, planned.
    engine = rt.detectors.engines["r-1000"]  # type: ignore[union-attr]
    occ = engine.occupancy.at(start + timedelta(minutes=1))
    assert (occ.state, occ.source) == ("away", "planned")
    # Withdrawn: kept, marked, gone from the list and from the detectors.
    r = client.delete(f"/api/residents/r-1000/absences/{new['id']}",
                      headers=auth(rt, "s-assessor"))
    assert r.status_code == 200
    assert [x["source"] for x in client.get(
        "/api/residents/r-1000/absences", headers=auth(rt, "s-17")).json()] == ["registry"]
    assert engine.occupancy.at(start + timedelta(minutes=1)).source != "planned"
    assert client.delete(f"/api/residents/r-1000/absences/{new['id']}",
                         headers=auth(rt, "s-assessor")).status_code == 404
    assert client.delete("/api/residents/r-1000/absences/registry-0",
                         headers=auth(rt, "s-assessor")).status_code == 409
    with rt.store.engine.connect() as conn:
        actions = [(a.staff_id, a.action, a.resident_id) for a in conn.execute(
            select(audit_log).where(audit_log.c.action.like("%absence%")))]
    assert ("s-assessor", "add_absence", "r-1000") in actions
    assert ("s-17", "read_absences", "r-1000") in actions
    assert ("s-assessor", "delete_absence", "r-1000") in actions


def test_bad_absences_get_clear_answers(api: tuple[TestClient, Runtime]) -> None:
    client, rt = api
    h = auth(rt, "s-admin")
    now = datetime.now(UTC)
    r = client.post("/api/residents/r-1000/absences", headers=h, json={
        "start": now.isoformat(), "end": (now - timedelta(hours=1)).isoformat()})
    assert r.status_code == 422 and "must be after start" in r.text
    r = client.post("/api/residents/r-1000/absences", headers=h, json={
        "start": (now - timedelta(days=3)).isoformat(),
        "end": (now - timedelta(days=2)).isoformat()})
    assert r.status_code == 422 and "already over" in r.text
    r = client.post("/api/residents/r-1000/absences", headers=h, json={
        "start": now.isoformat(), "end": (now + timedelta(days=400)).isoformat()})
    assert r.status_code == 422 and "at most a year" in r.text
    r = client.post("/api/residents/r-1000/absences", headers=h, json={
        "start": now.isoformat(), "end": (now + timedelta(days=1)).isoformat(), "x": 1})
    assert r.status_code == 422
    assert client.delete("/api/residents/r-1000/absences/abc",
                         headers=h).status_code == 404


def test_absences_and_occupancy_follow_the_unit_scope(api: tuple[TestClient, Runtime]) -> None:
    client, rt = api
    # Night staff of unit-a see nothing of the unit-b resident: 404, as if not there.
    for path in ("/api/residents/r-1001/absences", "/api/residents/r-1001/occupancy"):
        assert client.get(path, headers=auth(rt, "s-17")).status_code == 404
        assert client.get(path, headers=auth(rt, "s-b")).status_code == 200
    r = client.get("/api/residents/r-1000/occupancy", headers=auth(rt, "s-17"))
    assert r.status_code == 200
    assert r.json()["state"] == "unknown"  # nothing seen yet, and it says why
    assert r.json()["reason"]


def test_morning_summary_says_who_could_not_be_told(api: tuple[TestClient, Runtime]) -> None:
    client, rt = api
    assert rt.detectors is not None and rt.supervision is not None
    night = datetime.now(UTC).date() - timedelta(days=2)
    lo, _ = rt.supervision.window(rt.registry.residents[0], night)
    rt.detectors.facts.record([OccupancyChange("r-1000", "away", lo - timedelta(hours=3),
                                               "door")], [])
    out = client.get(f"/api/supervision/summary?unit=unit-a&night={night.isoformat()}",
                     headers=auth(rt, "s-17")).json()
    row = next(r for r in out["residents"] if r["resident_id"] == "r-1000")
    assert row["occupancy_at_start"]["state"] == "away"
    assert row["occupancy_at_start"]["source"] == "door"
    assert out["total"]["occupancy_at_start"] == {"away": 1}
    # A night before anything was known: unknown, with the reason.
    early = client.get(f"/api/supervision/summary?unit=unit-a&night="
                       f"{(night - timedelta(days=5)).isoformat()}",
                       headers=auth(rt, "s-17")).json()
    first = early["residents"][0]["occupancy_at_start"]
    assert first["state"] == "unknown" and "nothing seen yet" in first["reason"]
