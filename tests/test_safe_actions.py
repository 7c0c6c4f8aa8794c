"""The API behind the board's safe actions: an acknowledgement can be undone by the same
person within 10 s (and by nobody else, and not later); resolving as a false alarm or a
technical fault needs a note; pickers list only the caller's residents; /api/auth/me tells
the pages the unit's name, the site's time zone and the registry's room names."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from detectors.model import Decision
from gateway.alerting import service as alert_service
from gateway.api.app import create_app
from gateway.runtime import Runtime, build_alerting, load_runtime
from gateway.storage.schema import alert_events, audit_log
from tests.homes import auth, two_units, write_config


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Runtime, TestClient, int]]:
    reg = two_units()
    reg["staff"].append({"id": "s-18", "name": "Nattsköterska 18", "unit": "unit-a",
                         "role": "night_staff"})
    reg["staff"].append({"id": "s-bh", "name": "Handläggare", "unit": "unit-b",
                         "role": "assessor"})
    reg["rooms"] = [{"id": "orangeri", "sv": "Orangeriet", "en": "Orangery"}]
    rt = load_runtime(write_config(tmp_path, "mqtt://127.0.0.1:1",
                                   f"sqlite:///{tmp_path}/t.db", reg=reg))
    alerts = build_alerting(rt, publish=False)
    [alert] = alerts.handle([Decision("raise", "sos", "r-1000", "sos:x", datetime.now(UTC),
                                      {}, None)])
    assert alert is not None
    yield rt, TestClient(create_app(rt)), alert
    rt.store.close()


def events(rt: Runtime, alert: int) -> list[tuple[str, str | None]]:
    with rt.store.engine.connect() as conn:
        return [(r.transition, r.by) for r in conn.execute(
            select(alert_events.c.transition, alert_events.c["by"])
            .where(alert_events.c.alert_id == alert).order_by(alert_events.c.id))]


def status(client: TestClient, headers: dict[str, str]) -> str:
    [alert] = client.get("/api/alerts", headers=headers).json()["alerts"]
    return str(alert["status"])


def test_undo_of_an_acknowledgement(world: tuple[Runtime, TestClient, int]) -> None:
    rt, client, alert = world
    me, colleague = auth(rt, "s-17"), auth(rt, "s-18")
    # Nothing to undo yet.
    assert client.post(f"/api/alerts/{alert}/unack", headers=me).status_code == 409
    r = client.post(f"/api/alerts/{alert}/ack", headers=me)
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    # A colleague cannot undo my acknowledgement.
    r = client.post(f"/api/alerts/{alert}/unack", headers=colleague)
    assert r.status_code == 409, r.text
    r = client.post(f"/api/alerts/{alert}/unack", headers=me)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["acknowledged_by"]) == ("open", None)
    assert [e for e, _ in events(rt, alert)] == ["raised", "acknowledged", "ack_undone"]
    # Open again, it escalates on the original clock if nobody acknowledges it.
    assert rt.alerts is not None
    assert rt.alerts.escalate_due(body["escalation_due_ms"] + 1) == [alert]
    # Acknowledged again, then the 10 s pass: the undo is refused and it stays acknowledged.
    assert client.post(f"/api/alerts/{alert}/ack", headers=me).status_code == 200
    later = alert_service.now_ms() + (alert_service.UNDO_SECONDS + 1) * 1000
    with mock.patch.object(alert_service, "now_ms", return_value=later):
        r = client.post(f"/api/alerts/{alert}/unack", headers=me)
    assert r.status_code == 409 and "10 s" in r.json()["detail"]
    assert status(client, me) == "acknowledged"
    # Outside the unit it does not exist.
    assert client.post(f"/api/alerts/{alert}/unack",
                       headers=auth(rt, "s-bh")).status_code == 404
    with rt.store.engine.connect() as conn:
        assert conn.execute(select(audit_log.c.id).where(
            audit_log.c.action == "unacknowledge_alert")).first() is not None


@pytest.mark.parametrize("outcome", ["false_alarm", "technical"])
def test_false_alarm_and_technical_need_a_note(world: tuple[Runtime, TestClient, int],
                                                outcome: str) -> None:
    rt, client, alert = world
    me = auth(rt, "s-17")
    for body in ({"outcome": outcome}, {"outcome": outcome, "note": "   "}):
        r = client.post(f"/api/alerts/{alert}/resolve", json=body, headers=me)
        assert r.status_code == 422 and "note" in r.text, r.text
    assert status(client, me) == "open"
    r = client.post(f"/api/alerts/{alert}/resolve", headers=me,
                    json={"outcome": outcome, "note": "Larmknappen låg under kudden"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["outcome"]) == ("resolved", outcome)


def test_visited_needs_no_note_and_outcome_is_required(
        world: tuple[Runtime, TestClient, int]) -> None:
    rt, client, alert = world
    me = auth(rt, "s-17")
    assert client.post(f"/api/alerts/{alert}/resolve", json={},
                       headers=me).status_code == 422
    r = client.post(f"/api/alerts/{alert}/resolve", json={"outcome": "visited"}, headers=me)
    assert r.status_code == 200 and r.json()["outcome"] == "visited"


def test_resident_list_is_the_callers_scope(world: tuple[Runtime, TestClient, int]) -> None:
    rt, client, _ = world
    night = client.get("/api/residents", headers=auth(rt, "s-17"))
    assert night.status_code == 200
    assert night.json() == [{"id": "r-1000", "name": "Test Person 0", "unit": "unit-a"}]
    assessor = client.get("/api/residents", headers=auth(rt, "s-bh")).json()
    assert [r["id"] for r in assessor] == ["r-1001"]
    admin = client.get("/api/residents", headers=auth(rt, "s-admin")).json()
    assert sorted(r["id"] for r in admin) == ["r-1000", "r-1001"]
    assert client.get("/api/residents").status_code == 401
    with rt.store.engine.connect() as conn:
        seen = {(r.staff_id, r.resident_id) for r in conn.execute(
            select(audit_log.c.staff_id, audit_log.c.resident_id)
            .where(audit_log.c.action == "list_residents"))}
    assert {("s-17", "r-1000"), ("s-bh", "r-1001")} <= seen


def test_me_gives_unit_name_time_zone_and_rooms(world: tuple[Runtime, TestClient, int]) -> None:
    rt, client, _ = world
    me = client.get("/api/auth/me", headers=auth(rt, "s-17")).json()
    assert me["unit_name"] == "Solgården A"
    assert me["units"] == {"unit-a": "Solgården A"}
    assert me["timezone"] == "Europe/Stockholm"
    assert me["rooms"]["orangeri"] == {"sv": "Orangeriet", "en": "Orangery"}
    admin = client.get("/api/auth/me", headers=auth(rt, "s-admin")).json()
    assert admin["unit_name"] is None
    assert admin["units"] == {"unit-a": "Solgården A", "unit-b": "Solgården B"}
