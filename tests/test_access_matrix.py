"""The route x role matrix, generated from the OpenAPI schema: every operation, every role
(bound to unit-a, or to no unit), a resident or alert of its own unit and of another,
against the documented answer (docs/security.md, "Who may do what").

The expected answers are written out below, apart from the policy module they check
(gateway/api/policy.py): an operation added without an entry in both fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from detectors.model import Decision
from gateway.api.app import create_app
from gateway.api.policy import POLICY, PUBLIC
from gateway.runtime import Runtime, build_alerting, load_runtime
from tests.homes import auth, two_units, write_config

ALL = {"night_staff", "assessor", "manager", "admin"}
EDITORS = {"assessor", "manager", "admin"}
ADMIN = {"admin"}
# The documented answer: (who may, what is checked). "resident"/"alert": a resident or
# alert of another unit answers 404; "units": lists hold the caller's unit only; "site":
# staff bound to a unit get 403; "none": no personal data.
EXPECTED: dict[str, tuple[set[str], str]] = {
    "GET /api/auth/me": (ALL, "none"),
    "POST /api/auth/stream-ticket": (ALL, "none"),
    "GET /api/audit": (ADMIN, "site"),
    "GET /api/dead-letters": (ADMIN, "site"),
    "GET /api/devices/status": (ADMIN, "units"),
    "GET /api/icf": (ALL, "none"),
    "GET /api/push/key": (ALL, "none"),
    "POST /api/push/subscriptions": (ALL, "none"),
    "DELETE /api/push/subscriptions": (ALL, "none"),
    "GET /api/indicators": (ALL, "none"),
    "GET /api/alerts": (ALL, "units"),
    "GET /api/alerts/stream": (ALL, "units"),
    "POST /api/alerts/{alert_id}/ack": (ALL, "alert"),
    "POST /api/alerts/{alert_id}/resolve": (ALL, "alert"),
    "POST /api/alerts/{alert_id}/unack": (ALL, "alert"),
    "GET /api/residents": (ALL, "units"),
    "GET /api/alerts/{alert_id}/goals": (ALL, "alert"),
    "GET /api/supervision/tonight": (ALL, "units"),
    "GET /api/supervision/summary": (ALL, "units"),
    "GET /api/supervision/counts": (ALL, "units"),
    "GET /api/supervision/stream": (ALL, "units"),
    "GET /api/residents/{resident_id}": (ALL, "resident"),
    "GET /api/residents/{resident_id}/observations": (ALL, "resident"),
    "GET /api/residents/{resident_id}/visits": (ALL, "resident"),
    "GET /api/residents/{resident_id}/risk": (ALL, "resident"),
    "GET /api/residents/{resident_id}/consent": (ALL, "resident"),
    "PUT /api/residents/{resident_id}/consent": (ADMIN, "resident"),
    "GET /api/residents/{resident_id}/supervision": (ALL, "resident"),
    "PUT /api/residents/{resident_id}/supervision": (EDITORS, "resident"),
    "GET /api/residents/{resident_id}/supervision/journal": (ALL, "resident"),
    "GET /api/residents/{resident_id}/absences": (ALL, "resident"),
    "POST /api/residents/{resident_id}/absences": (EDITORS, "resident"),
    "DELETE /api/residents/{resident_id}/absences/{absence_id}": (EDITORS, "resident"),
    "GET /api/residents/{resident_id}/occupancy": (ALL, "resident"),
    "GET /api/residents/{resident_id}/needs": (ALL, "resident"),
    "PUT /api/residents/{resident_id}/needs": (EDITORS, "resident"),
    "GET /api/residents/{resident_id}/goals": (ALL, "resident"),
    "POST /api/residents/{resident_id}/goals": (EDITORS, "resident"),
    "GET /api/residents/{resident_id}/goals/{goal_id}": (ALL, "resident"),
    "PUT /api/residents/{resident_id}/goals/{goal_id}": (EDITORS, "resident"),
    "POST /api/residents/{resident_id}/goals/{goal_id}/follow-up": (EDITORS, "resident"),
    "GET /api/reports/followup/{resident_id}": (EDITORS, "resident"),
    "GET /api/reports/digital-trial/{resident_id}": (EDITORS, "resident"),
    "GET /api/reports/unit": (EDITORS, "units"),
}
PUBLIC_OPS = {"GET /healthz", "GET /metrics", "POST /api/auth/login"}
# Every role bound to unit-a, and the unit-less ones (they see the whole site).
STAFF = {"night_staff": "s-17", "assessor": "s-ass-a", "manager": "s-man-a",
         "admin": "s-adm-a"}
SITE_STAFF = {"assessor": "s-ass", "admin": "s-admin"}
TODAY = datetime.now(UTC).date()


def goal(rid: str) -> dict[str, Any]:
    return {"id": f"g-{rid}", "text": "Känna sig trygg på natten", "life_area": "trygghet",
            "start": str(TODAY - timedelta(days=30)), "follow_up": str(TODAY + timedelta(
                days=60))}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[TestClient, Runtime, dict[str, dict[str, str]]]]:
    folder: Path = tmp_path_factory.mktemp("matrix")
    reg = two_units()
    reg["staff"] = [s for s in reg["staff"] if s["id"] != "s-admin"] + [
        {"id": "s-ass-a", "name": "Assessor A", "role": "assessor", "unit": "unit-a"},
        {"id": "s-man-a", "name": "Manager A", "role": "manager", "unit": "unit-a"},
        {"id": "s-adm-a", "name": "Admin A", "role": "admin", "unit": "unit-a"},
        {"id": "s-ass", "name": "Assessor", "role": "assessor"},
        {"id": "s-admin", "name": "Admin", "role": "admin"}]
    for res in reg["residents"]:
        res["goals"] = [goal(res["id"])]
    rt = load_runtime(write_config(folder, "mqtt://127.0.0.1:1",
                                   f"sqlite:///{folder}/t.db", reg=reg))
    build_alerting(rt, publish=False)
    assert rt.alerts is not None and rt.absences is not None
    ids: dict[str, dict[str, str]] = {}
    for rid, unit in (("r-1000", "unit-a"), ("r-1001", "unit-b")):
        [alert] = rt.alerts.handle([Decision("raise", "sos", rid, "sos:x",
                                             datetime.now(UTC), {}, None)])
        from gateway.config.registry import Absence

        start = datetime.now(UTC) + timedelta(days=10)
        absence = rt.absences.add(rid, Absence(start=start, end=start + timedelta(days=1)),
                                  "s-admin")
        ids[rid] = {"resident_id": rid, "alert_id": str(alert), "goal_id": f"g-{rid}",
                    "absence_id": absence["id"], "unit": unit}
    with TestClient(create_app(rt)) as client:
        yield client, rt, ids
    rt.store.close()


def operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    return [(method.upper(), path, op) for path, ops in spec["paths"].items()
            for method, op in ops.items()]


SCOPE_404 = ("no such resident in your scope", "no such alert", "no such unit in your scope")


def call(client: TestClient, method: str, path: str, op: dict[str, Any],
         target: dict[str, str], headers: dict[str, str]) -> int:
    """The answer's status; a 404 about the resource itself (an absence already withdrawn
    by an earlier caller) is reported as 410, apart from the policy's 404s."""
    url = path
    for k, v in target.items():
        url = url.replace("{" + k + "}", v)
    query: dict[str, str] = {}
    for p in op.get("parameters", []):
        name = p["name"]
        if p["in"] == "query" and name in ("first", "last"):
            query[name] = str(TODAY - timedelta(days=7 if name == "first" else 1))
        elif p["in"] == "query" and name == "unit":
            query[name] = target["unit"]
    if path.endswith("/stream"):
        # An event stream never ends: ask with an invalid `since`, so that a caller the
        # policy lets through gets 422 (parameters are judged after the policy).
        return _status(client.request(method, url, params={**query, "since": "-1"},
                                      headers=headers))
    body: Any = None
    if "requestBody" in op:
        body = sample_body(path)
    return _status(client.request(method, url, params=query, headers=headers, json=body))


def _status(r: Any) -> int:
    if r.status_code == 404 and r.json().get("detail") not in SCOPE_404:
        return 410
    return int(r.status_code)


def sample_body(path: str) -> Any:
    if path.endswith("/consent"):
        return {"kinds": ["motion", "contact", "bed"]}
    if path.endswith("/supervision"):
        return {"checks": [], "all_well": []}
    if path.endswith("/absences"):
        start = datetime.now(UTC) + timedelta(days=20)
        return {"start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat()}
    if path.endswith("/needs"):
        return []
    if path.endswith("/follow-up"):
        return {"status": "partly_achieved", "comment": "matrix"}
    if path.endswith("/resolve"):
        return {"outcome": "no_action_needed"}
    if path.endswith("/unack"):
        return None
    if "/goals" in path:
        return {**goal("x"), "id": "g-matrix"}
    return {}


def test_every_operation_has_a_policy_entry_and_a_documented_answer() -> None:
    from gateway.api.app import create_app as make

    with TestClient(make(_bare_runtime())) as client:
        ops = {f"{m} {p}" for m, p, _ in operations(client)}
    policy = {f"{m} {p}" for m, p in POLICY} | {f"{m} {p}" for m, p in PUBLIC}
    assert ops - policy == set(), "operations without a policy entry"
    assert policy - ops == set(), "policy entries for operations that do not exist"
    assert ops - set(EXPECTED) - PUBLIC_OPS == set(), "operations without a documented answer"


def _bare_runtime() -> Runtime:
    import tempfile

    folder = Path(tempfile.mkdtemp())
    return load_runtime(write_config(folder, "mqtt://127.0.0.1:1",
                                     f"sqlite:///{folder}/t.db"))


def test_the_matrix(world: tuple[TestClient, Runtime, dict[str, dict[str, str]]]) -> None:
    client, rt, ids = world
    own, other = ids["r-1000"], ids["r-1001"]
    checked = 0
    failures = []
    for method, path, op in operations(client):
        name = f"{method} {path}"
        if name in PUBLIC_OPS:
            continue
        who, scope = EXPECTED[name]
        if call(client, method, path, op, own, {}) != 401:
            failures.append(f"{name}: no token must be 401")
        for role, staff in [*STAFF.items(), *(("site-" + r, s) for r, s in
                                             SITE_STAFF.items())]:
            base_role = role.removeprefix("site-")
            bound = not role.startswith("site-")
            h = auth(rt, staff)
            got_own = call(client, method, path, op, own, h)
            checked += 1
            if base_role not in who or (scope == "site" and bound):
                want_own = "403"
                ok = got_own == 403
            else:
                want_own = "allowed"
                ok = got_own not in (401, 403, 404) and got_own < 500
            if not ok:
                failures.append(f"{name} as {role} on its own unit: {got_own}, want {want_own}")
            if scope in ("resident", "alert", "units"):
                got_other = call(client, method, path, op, other, h)
                checked += 1
                if base_role not in who:
                    want, ok = "403", got_other == 403
                elif scope == "units" and not ({p["name"] for p in op.get("parameters", [])}
                                              & {"unit"}):
                    want, ok = "allowed", got_other < 400 or got_other == 422
                elif bound:
                    want, ok = "404", got_other == 404
                else:
                    want, ok = "allowed", got_other not in (401, 403, 404)
                if not ok:
                    failures.append(f"{name} as {role} on the other unit: {got_other}, "
                                    f"want {want}")
    assert failures == [], "\n".join(failures)
    print(f"matrix: {len(EXPECTED)} operations with a token, {checked} calls")
    assert checked > 300


def test_lists_hold_the_callers_unit_only(
        world: tuple[TestClient, Runtime, dict[str, dict[str, str]]]) -> None:
    client, rt, ids = world
    for staff in STAFF.values():
        alerts = client.get("/api/alerts", headers=auth(rt, staff)).json()["alerts"]
        assert {a["unit_id"] for a in alerts} == {"unit-a"}, staff
        # A filter on a resident of another unit is 404, never an empty answer.
        assert client.get("/api/alerts?resident_id=r-1001",
                          headers=auth(rt, staff)).status_code == 404
        assert client.get("/api/alerts?resident_id=1e309",
                          headers=auth(rt, staff)).status_code == 404
    site = client.get("/api/alerts", headers=auth(rt, "s-admin")).json()["alerts"]
    assert {a["unit_id"] for a in site} == {"unit-a", "unit-b"}
    devices = client.get("/api/devices/status", headers=auth(rt, "s-adm-a")).json()
    assert all(d["resident_id"] == "r-1000" for d in devices)
    assert client.get("/api/reports/unit", params={"first": str(date.today() - timedelta(
        days=7)), "last": str(date.today()), "unit": "unit-b"},
        headers=auth(rt, "s-man-a")).status_code == 404
