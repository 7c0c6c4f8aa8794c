"""IBIC through the HTTP API on a real SQLite file: needs and goals (registry and API),
validation, follow-up proposal and confirmation, alert-goal links, role rules, the unit
report's follow-ups on time, audit, and the `tillsyn report` command."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from detectors.model import Decision
from gateway.api.app import create_app
from gateway.runtime import Runtime, build_alerting, load_runtime
from gateway.storage.schema import audit_log
from tests.homes import auth, registry, write_config

TZ = ZoneInfo("Europe/Stockholm")
TODAY = datetime.now(UTC).astimezone(TZ).date()


def goal(gid: str, follow_up: date, indicators: list[dict[str, Any]], **extra: Any
         ) -> dict[str, Any]:
    return {"id": gid, "text": f"Goal {gid}", "life_area": "trygghet",
            "start": (follow_up - timedelta(days=60)).isoformat(),
            "follow_up": follow_up.isoformat(), "indicators": indicators, **extra}


NIGHTS = [{"id": "nights_without_staff_intervention", "target": 0.9}]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[tuple[TestClient, Runtime, Path]]:
    folder = tmp_path_factory.mktemp("ibicapi")
    reg = registry(2)
    reg["units"][0]["provider"] = "Provider Väst"
    reg["units"].append({"id": "unit-b", "name": "Solgården B"})
    reg["residents"][1]["unit"] = "unit-b"
    reg["staff"] += [{"id": "s-bh", "name": "Assessor", "role": "assessor"},
                     {"id": "s-mgr-b", "name": "Manager B", "unit": "unit-b",
                      "role": "manager"}]
    reg["residents"][0]["needs"] = [{"life_area": "d4", "icf": ["d450", "d460"],
                                     "text": "Walks with a rollator"}]
    reg["residents"][0]["goals"] = [
        goal("g-soon", TODAY - timedelta(days=3), NIGHTS),  # follow-up done on time below
        goal("g-old", TODAY - timedelta(days=30), NIGHTS),  # done late below
        goal("g-missed", TODAY - timedelta(days=5), NIGHTS),  # never followed up
        goal("g-walk", TODAY + timedelta(days=60), [{"id": "walks_returned_home",
                                                     "target": 3}],
             life_area="d4", icf="d460")]
    reg["residents"][1]["goals"] = [goal("g-speed", TODAY + timedelta(days=30),
                                         [{"id": "walking_speed", "target": 60}],
                                         life_area="d4", icf="d450")]
    cfg = write_config(folder, "mqtt://127.0.0.1:1", f"sqlite:///{folder}/t.db", reg=reg)
    rt = load_runtime(cfg)
    build_alerting(rt, publish=False)
    with TestClient(create_app(rt)) as client:
        yield client, rt, cfg
    rt.store.close()


def test_catalogue_and_indicator_library(api: tuple[TestClient, Runtime, Path]) -> None:
    client, rt, _ = api
    icf = client.get("/api/icf", headers=auth(rt, "s-17")).json()
    assert set(icf["life_areas"]) == {f"d{i}" for i in range(1, 10)} | {"trygghet"}
    for code in ("d410", "d415", "d420", "d450", "d460", "d530", "d230", "b134", "e115"):
        assert icf["codes"][code]["sv"] and icf["codes"][code]["en"]
    assert icf["codes"]["d450"] == {"sv": "Att gå", "en": "Walking"}
    lib = {i["id"]: i for i in client.get("/api/indicators", headers=auth(rt, "s-17")).json()}
    assert lib["walking_speed"]["available"] is True
    assert lib["walking_speed"]["unit"] == "cm_per_s"


def test_goals_and_needs_create_update_validate(api: tuple[TestClient, Runtime, Path]
                                                ) -> None:
    client, rt, _ = api
    bh = auth(rt, "s-bh")
    needs = client.get("/api/residents/r-1000/needs", headers=bh).json()
    assert needs["source"] == "registry" and needs["needs"][0]["icf"] == ["d450", "d460"]
    bad = client.put("/api/residents/r-1000/needs", headers=bh,
                     json=[{"life_area": "d5", "icf": ["d450"], "text": "x"}])
    assert bad.status_code == 422 and "belongs to life area d4" in bad.text
    bad = client.put("/api/residents/r-1000/needs", headers=bh,
                     json=[{"life_area": "d5", "icf": ["d999"]}])
    assert bad.status_code == 422 and "not in the shipped catalogue" in bad.text
    ok = client.put("/api/residents/r-1000/needs", headers=bh,
                    json=[{"life_area": "d5", "icf": ["d530"], "text": "Toilet at night"}])
    assert ok.status_code == 200 and ok.json()["source"] == "api"
    assert ok.json()["changed_by"] == "s-bh"

    new = goal("g-new", TODAY + timedelta(days=90), NIGHTS)
    r = client.post("/api/residents/r-1000/goals", headers=bh, json=new)
    assert r.status_code == 201, r.text
    assert (r.json()["source"], r.json()["status"]) == ("api", "active")
    assert client.post("/api/residents/r-1000/goals", headers=bh, json=new).status_code == 409
    for broken, reason in (
            ({**new, "indicators": [{"id": "steps", "target": 1}]}, "is not one of"),
            ({**new, "indicators": [{"id": "digital_checks_passed", "target": 5}]},
             "a share is between 0 and 1"),
            ({**new, "follow_up": new["start"]}, "must be after start"),
            ({**new, "life_area": "d5", "icf": "d450"}, "belongs to life area d4")):
        r = client.put("/api/residents/r-1000/goals/g-new", headers=bh, json=broken)
        assert r.status_code == 422 and reason in r.text, r.text
    changed = {**new, "text": "Feel safe enough to sleep through the night"}
    r = client.put("/api/residents/r-1000/goals/g-new", headers=bh, json=changed)
    assert r.status_code == 200 and r.json()["text"] == changed["text"]
    events = [e["event"] for e in r.json()["history"]]
    assert events == ["created", "updated"]
    listed = [g["id"] for g in client.get("/api/residents/r-1000/goals", headers=bh).json()]
    assert listed == ["g-soon", "g-old", "g-missed", "g-walk", "g-new"]
    # night staff read goals and the action plan of their own unit only, and change nothing
    ns = auth(rt, "s-17")
    assert client.get("/api/residents/r-1000/goals", headers=ns).status_code == 200
    assert client.get("/api/residents/r-1001/goals", headers=ns).status_code == 404
    assert client.post("/api/residents/r-1000/goals", headers=ns,
                       json=goal("g-x", TODAY, NIGHTS)).status_code == 403
    assert client.put("/api/residents/r-1000/needs", headers=ns, json=[]).status_code == 403
    card = client.get("/api/residents/r-1000", headers=ns).json()
    assert "g-new" in [g["id"] for g in card["goals"]]


def test_follow_up_proposal_confirmation_and_override(api: tuple[TestClient, Runtime, Path]
                                                      ) -> None:
    client, rt, _ = api
    assert rt.ibic is not None
    made = rt.ibic.propose_due(TODAY)
    assert made == 3  # g-soon, g-old and g-missed are due; g-walk and g-speed are not
    assert rt.ibic.propose_due(TODAY) == 0  # once per follow-up date
    bh = auth(rt, "s-bh")
    soon = client.get("/api/residents/r-1000/goals/g-soon", headers=bh).json()
    # no observations were stored: nothing could be measured, so no proposal is made
    assert soon["proposal"]["status"] is None
    assert "a person must assess" in soon["proposal"]["evidence"]["reason"]
    assert soon["proposal"]["evidence"]["indicators"][0]["status"] == "no_data"
    r = client.post("/api/residents/r-1000/goals/g-soon/follow-up", headers=bh,
                    json={"status": "achieved"})
    assert r.status_code == 422 and "comment is required" in r.text
    r = client.post("/api/residents/r-1000/goals/g-soon/follow-up", headers=bh,
                    json={"status": "achieved", "comment": "She sleeps through; agreed"})
    assert r.json() == {"goal_id": "g-soon", "event": "overridden", "status": "achieved"}
    r = client.post("/api/residents/r-1000/goals/g-old/follow-up", headers=bh,
                    json={"status": "partly_achieved", "comment": "Late follow-up"})
    assert r.status_code == 200
    assert client.post("/api/residents/r-1000/goals/g-old/follow-up", headers=auth(rt, "s-17"),
                       json={"status": "achieved"}).status_code == 403
    assert client.post("/api/residents/r-1000/goals/nope/follow-up", headers=bh,
                       json={"status": "achieved"}).status_code == 404
    after = client.get("/api/residents/r-1000/goals/g-soon", headers=bh).json()
    assert (after["status"], after["assessed_by"], after["proposal"]) == ("achieved", "s-bh",
                                                                          None)
    assert [e["event"] for e in after["history"]] == ["proposed", "overridden"]


def test_unit_report_and_scope(api: tuple[TestClient, Runtime, Path]) -> None:
    client, rt, _ = api
    params = {"first": (TODAY - timedelta(days=40)).isoformat(), "last": TODAY.isoformat()}
    rep = client.get("/api/reports/unit", params=params, headers=auth(rt, "s-bh")).json()
    units = {u["unit"]: u for u in rep["units"]}
    a, b = units["unit-a"], units["unit-b"]
    assert a["provider"] == "Provider Väst"
    # g-soon (due 3 days ago, followed up today): on time; g-old (due 30 days ago,
    # followed up today, 14 days' grace): late; g-missed: missing
    assert (a["follow_ups_due"], a["follow_ups_on_time"], a["follow_ups_late"],
            a["follow_ups_missing"]) == (3, 1, 1, 1)
    assert a["on_time_share"] == 0.3333
    # Both have goals with indicators (r-1001's is walking speed).
    assert (a["residents_with_measurable_goals"], b["residents_with_measurable_goals"]) == (1, 1)
    assert a["life_areas"]["trygghet"]["achieved"] == 1
    assert a["life_areas"]["trygghet"]["partly_achieved"] == 1
    # a manager of unit B sees unit B only; night staff see no reports
    mgr = client.get("/api/reports/unit", params=params, headers=auth(rt, "s-mgr-b")).json()
    assert [u["unit"] for u in mgr["units"]] == ["unit-b"]
    assert client.get("/api/reports/followup/r-1000", headers=auth(rt, "s-mgr-b")
                      ).status_code == 404
    assert client.get("/api/reports/unit", params=params, headers=auth(rt, "s-17")
                      ).status_code == 403
    assert client.get("/api/reports/unit", params={**params, "first": "2020-01-01"},
                      headers=auth(rt, "s-bh")).status_code == 422
    text = client.get("/api/reports/unit", params={**params, "format": "csv"},
                      headers=auth(rt, "s-bh")).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {(r["unit"], r["life_area"]) for r in rows} >= {("unit-a", "trygghet"),
                                                           ("unit-b", "d4")}
    with rt.store.engine.connect() as conn:
        actions = {r.action for r in conn.execute(select(audit_log.c.action))}
    assert {"read_goals", "read_goal", "read_needs", "follow_up_goal", "report_unit",
            "create_goal", "update_goal", "change_needs"} <= actions


def test_alerts_link_to_goals(api: tuple[TestClient, Runtime, Path]) -> None:
    client, rt, _ = api
    assert rt.alerts is not None
    when = datetime.combine(TODAY, datetime.min.time(), TZ) + timedelta(hours=2)
    alert_id = rt.alerts.raise_alert(Decision("raise", "door_open_night", "r-1000",
                                              "door_open_night:door-0", when,
                                              device_id="door-0"))
    assert alert_id is not None
    got = client.get(f"/api/alerts/{alert_id}/goals", headers=auth(rt, "s-17")).json()
    # g-walk (d460, walks) runs today; the night goals g-soon/g-old/g-missed have passed
    # their follow-up and g-new starts in 30 days
    assert got["goals"] == ["g-walk"]
    walk = client.get("/api/residents/r-1000/goals/g-walk", headers=auth(rt, "s-bh")).json()
    assert [a["id"] for a in walk["linked_alerts"]] == [alert_id]
    assert client.get("/api/alerts/999999/goals", headers=auth(rt, "s-17")).status_code == 404


def test_report_command_writes_html_csv_and_json(api: tuple[TestClient, Runtime, Path],
                                                 tmp_path: Path) -> None:
    _, _, cfg = api
    out = tmp_path / "f.html"
    r = subprocess.run([sys.executable, "-m", "gateway", "report", "followup", "--config",
                        str(cfg), "--resident", "r-1000", "--out", str(out), "--lang", "en"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    assert "Individual follow-up" in html and "Goal g-walk" in html and "<svg" in html
    r = subprocess.run([sys.executable, "-m", "gateway", "report", "unit", "--config", str(cfg),
                        "--first", "2026-01-01", "--last", "2026-12-31", "--format", "json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert '"report": "unit"' in r.stdout
    r = subprocess.run([sys.executable, "-m", "gateway", "report", "followup", "--config",
                        str(cfg), "--resident", "r-9999"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "--resident: value 'r-9999'" in r.stderr
    r = subprocess.run([sys.executable, "-m", "gateway", "report", "unit", "--config", str(cfg),
                        "--first", "2026-13-01", "--last", "2026-12-31"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--first: value '2026-13-01'" in r.stderr
