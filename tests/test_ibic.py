"""IBIC indicators and the digital-trial report on simulated nights played through firmware
stubs, a real Mosquitto, the gateway and SQLite. Expected values come from the simulator's
own events (who went where, when), not from the code under test; alert and journal counts
are read from the stored alerts and journal, which are the indicators' input."""

from __future__ import annotations

import csv
import io
import statistics
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from firmware_stubs.home import SimEvent, last_complete_night
from firmware_stubs.scenarios import run, scenario_registry
from gateway.api.app import create_app
from gateway.ibic.indicators import compute
from gateway.runtime import Runtime, load_runtime, start_service, stop_service
from gateway.storage.schema import supervision_checks
from tests.homes import SITE, auth, write_config
from tests.support import Mosquitto, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]
TZ = ZoneInfo("Europe/Stockholm")
CHECKS = ["23:00", "02:00", "05:00"]
ALL_WELL = ["in_bed", "in_apartment", "door_closed", "sensors_online"]
NIGHT_GOAL = ["nights_without_staff_intervention", "digital_checks_passed", "alerts_per_night",
              "night_alerts_per_week", "physical_night_visits", "sleep_disturbed_nights",
              "response_time"]
MOVE_GOAL = ["independent_bed_exits_returned", "walks_returned_home", "time_out_of_home",
             "walking_speed", "fall_risk_level"]
TARGET = {"nights_without_staff_intervention": 0.9, "digital_checks_passed": 0.95,
          "sleep_disturbed_nights": 0.1}


def goals(start: date) -> list[dict[str, Any]]:
    follow = (start + timedelta(days=90)).isoformat()

    def inds(ids: list[str]) -> list[dict[str, Any]]:
        return [{"id": i, "target": TARGET.get(i, 1.0)} for i in ids]

    return [{"id": "g-night", "text": "Feel safe at night so that night visits can end",
             "life_area": "trygghet", "start": start.isoformat(), "follow_up": follow,
             "indicators": inds(NIGHT_GOAL)},
            {"id": "g-move", "text": "Walk in the neighbourhood on her own",
             "life_area": "d4", "icf": "d460", "start": start.isoformat(),
             "follow_up": follow, "indicators": inds(MOVE_GOAL)}]


def start(tmp_path: Path, mosquitto: Mosquitto, reg: dict[str, Any], client_id: str
          ) -> Runtime:
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", reg=reg,
                       client_id=client_id)
    rt = load_runtime(cfg)
    start_service(rt)
    wait_for(lambda: rt.ingest is not None and rt.ingest.connected, what="connected")
    return rt


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def night_span(d: date) -> tuple[int, int]:  # the site default night window 22:00-07:00
    return (ms(datetime.combine(d, time(22), TZ)),
            ms(datetime.combine(d + timedelta(days=1), time(7), TZ)))


def day_span(d: date) -> tuple[int, int]:
    return ms(datetime.combine(d, time(0), TZ)), ms(datetime.combine(d + timedelta(days=1),
                                                                     time(0), TZ))


def inside(t: int, span: tuple[int, int]) -> bool:
    return span[0] <= t < span[1]


def staff_visits(ev: list[SimEvent]) -> list[tuple[int, int]]:
    starts = [e.ts_ms for e in ev if e.kind == "lock" and e.value["state"] == "unlocked"]
    ends = [e.ts_ms for e in ev if e.kind == "lock" and e.value["state"] == "locked"]
    return list(zip(starts, ends, strict=True))


def bed_at(ev: list[SimEvent], t: int) -> bool | None:
    states = [e.value for e in ev if e.kind == "bed" and e.ts_ms <= t]
    return states[-1] if states else None


def test_each_indicator_on_simulated_nights_matches_the_simulation(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    nights = 4
    first = last_complete_night(datetime.now(UTC), TZ, nights_back=nights).date()
    dates = [first + timedelta(days=i) for i in range(nights)]
    reg = scenario_registry(2, SITE)
    for res in reg["residents"]:
        res["supervision"] = {"checks": CHECKS, "all_well": ALL_WELL,
                              "replaces_physical_visits": True}
        res["goals"] = goals(first - timedelta(days=7))
    rt = start(tmp_path, mosquitto, reg, "gw-ibic-ind")
    events: list[SimEvent] = []
    try:
        truths, sent = run(mosquitto.url, rt, nights=nights, seed=21,
                           incidents=(None, "wandering", "bed_exit_no_return", None),
                           staff_visit_every=2, events_out=events)
        assert rt.ingest is not None and rt.ingest.committed_messages == sent
        assert rt.alerts is not None and rt.ibic is not None
        stored_alerts = rt.alerts.list_alerts(limit=10_000)
        with rt.store.engine.connect() as conn:
            finals = [dict(r._mapping) for r in conn.execute(
                select(supervision_checks).where(supervision_checks.c.final.is_(True)))]
        wanderings = 0
        for i, res in enumerate(rt.registry.residents):
            ev = [e for e in events if e.device_id.endswith(f"-{i}")]
            truth = [t for t in truths if t.resident_id == res.id]
            facts = rt.ibic.facts(res, dates[0], dates[-1])
            got = {ident: compute(ident, facts, dates) for ident in NIGHT_GOAL + MOVE_GOAL}
            windows = [night_span(d) for d in dates]
            days = [day_span(d) for d in dates]
            visits = staff_visits(ev)
            assert len(visits) == sum(t.staff_visits for t in truth) > 0

            # physical visits in the night window, and those that found the person in bed
            night_visits = [v for v in visits if any(inside(v[0], w) for w in windows)]
            assert got["physical_night_visits"].value == round(len(night_visits) / nights, 4)
            disturbed = {j for j, w in enumerate(windows) for v in night_visits
                         if inside(v[0], w) and bed_at(ev, v[0]) is True}
            assert got["sleep_disturbed_nights"].value == round(len(disturbed) / nights, 4)

            # interventions: a staff visit, or an alert the staff resolved as visited
            mine = [a for a in stored_alerts if a["resident_id"] == res.id]
            intervened = {j for j, w in enumerate(windows)
                          if any(inside(v[0], w) for v in visits)
                          or any(inside(a["event_ms"], w) and a["outcome"] == "visited"
                                 for a in mine)}
            assert got["nights_without_staff_intervention"].value == \
                round((nights - len(intervened)) / nights, 4)

            # alerts in the night windows
            at_night = [a for a in mine if any(inside(a["event_ms"], w) for w in windows)]
            assert got["alerts_per_night"].value == round(len(at_night) / nights, 4)
            assert got["night_alerts_per_week"].value == round(len(at_night) * 7 / nights, 4)
            assert got["alerts_per_night"].details["alerts"] == len(at_night)

            # digital checks: every check time of every night, final outcome ok
            checks = [c for c in finals if c["resident_id"] == res.id]
            assert len(checks) == nights * len(CHECKS)
            assert got["digital_checks_passed"].value == round(
                sum(c["outcome"] == "ok" for c in checks) / len(checks), 4)

            # response: raise to the first staff action (the simulator's night staff
            # resolve everything after each night)
            in_period = [a for a in mine if any(inside(a["event_ms"], s)
                                                for s in windows + days)]
            secs = [((a["acknowledged_ms"] or a["resolved_ms"]) - a["raised_ms"]) / 1000
                    for a in in_period]
            if secs:
                assert got["response_time"].value == round(statistics.median(secs), 4)
            else:
                assert got["response_time"].status == "no_data"

            # independent bed exits that returned: the simulator's toilet visits at night
            toilet = [e for e in ev if e.kind == "bed" and e.value is False
                      and e.note == "toilet" and any(inside(e.ts_ms, w) for w in windows)]
            assert got["independent_bed_exits_returned"].value == round(len(toilet) / nights, 4)

            # walks: afternoon walks with the position alarm and night-time walks out of
            # the door (the wandering incident: out at +1 min, back at +40 min)
            outs = []
            for e in ev:
                if e.kind == "geofence" and e.value["event"] == "leave":
                    back = next(x.ts_ms for x in ev if x.kind == "geofence"
                                and x.value["event"] == "enter" and x.ts_ms > e.ts_ms)
                    outs.append((e.ts_ms, back))
            for kind, t in (i_ for tr in truth for i_ in tr.incidents):
                if kind == "wandering":
                    outs.append((t + 60_000, t + 40 * 60_000))
                    wanderings += 1
            walks = [o for o in outs if any(inside(o[0], d) for d in days)]
            assert got["walks_returned_home"].value == round(len(walks) * 7 / nights, 4)
            hours = sum(max(0, min(b, d[1]) - max(a, d[0])) for a, b in outs for d in days)
            assert got["time_out_of_home"].value == round(hours / 3_600_000 / nights, 4)

            for ident in ("walking_speed", "fall_risk_level"):
                # No movement features were scored for these homes (no sensor distances,
                # no model): unknown, with the reason, never a value.
                assert (got[ident].status, got[ident].value) == ("no_data", None)
                assert got[ident].reason
        assert wanderings > 0  # the door-based walks were exercised

        # The weekly series of the goal page add up to the same nights.
        res = rt.registry.residents[0]
        goal = rt.ibic.goal(res, "g-night")
        progress = rt.ibic.progress(res, goal, until=dates[-1])
        visits_series = next(s for s in progress["indicators"]
                             if s["id"] == "physical_night_visits")
        with_data = [p for p in visits_series["points"] if p["n"]]
        assert sum(p["n"] for p in with_data) == nights
    finally:
        stop_service(rt)
        rt.store.close()


def test_digital_trial_report_counts_match_the_simulation(mosquitto: Mosquitto,
                                                          tmp_path: Path) -> None:
    """Three nights of physical supervision (a staff visit every night), then the plan
    switches to digital checks replacing the visits, and three nights without visits."""
    n = 3
    now = datetime.now(UTC)
    base_first = last_complete_night(now - timedelta(days=n), TZ, nights_back=n).date()
    trial_first = last_complete_night(now, TZ, nights_back=n).date()
    assert trial_first == base_first + timedelta(days=n)
    reg = scenario_registry(1, SITE)
    reg["staff"].append({"id": "s-bh", "name": "Assessor", "role": "assessor"})
    reg["residents"][0]["goals"] = goals(base_first)
    rt = start(tmp_path, mosquitto, reg, "gw-ibic-trial")
    try:
        before, _ = run(mosquitto.url, rt, nights=n, seed=31, now=now - timedelta(days=n),
                        incidents=(), staff_visit_every=1)
        with TestClient(create_app(rt)) as client:
            r = client.put("/api/residents/r-2000/supervision", headers=auth(rt, "s-bh"),
                           json={"checks": CHECKS, "all_well": ALL_WELL,
                                 "replaces_physical_visits": True})
            assert r.status_code == 200, r.text
            during, _ = run(mosquitto.url, rt, nights=n, seed=41, now=now, incidents=(),
                            staff_visit_every=0)
            params = {"baseline_first": base_first.isoformat(),
                      "baseline_last": (base_first + timedelta(days=n - 1)).isoformat(),
                      "trial_first": trial_first.isoformat(),
                      "trial_last": (trial_first + timedelta(days=n - 1)).isoformat()}
            r = client.get("/api/reports/digital-trial/r-2000", params=params,
                           headers=auth(rt, "s-bh"))
            assert r.status_code == 200, r.text
            rep = r.json()
            csv_r = client.get("/api/reports/digital-trial/r-2000",
                               params={**params, "format": "csv"}, headers=auth(rt, "s-bh"))
            html_r = client.get("/api/reports/digital-trial/r-2000",
                                params={**params, "format": "html", "lang": "en"},
                                headers=auth(rt, "s-bh"))
            night_staff = client.get("/api/reports/digital-trial/r-2000", params=params,
                                     headers=auth(rt, "s-17"))
        assert night_staff.status_code == 403
        b, t = rep["baseline"], rep["trial"]
        assert (b["nights"], b["nights_with_data"], t["nights"], t["nights_with_data"]) == (
            n, n, n, n)
        # physical night visits: the simulator's, all before the switch
        assert b["physical_night_visits"] == sum(x.staff_visits for x in before) == n
        assert t["physical_night_visits"] == sum(x.staff_visits for x in during) == 0
        # every visit found her asleep in bed; none during the trial
        assert (b["sleep_disturbed_nights"], t["sleep_disturbed_nights"]) == (n, 0)
        # digital checks: none before the plan, every check time of every trial night
        assert (b["digital_checks"], t["digital_checks"]) == (0, n * len(CHECKS))
        assert t["checks_ok"] == n * len(CHECKS)
        assert t["physical_visits_avoided"] == n * len(CHECKS)
        # alerts: the stored ones, split at the periods' windows
        stored = rt.alerts.list_alerts(limit=10_000) if rt.alerts else []
        lo, mid, hi = (ms(datetime.combine(d, time(0), TZ)) for d in (
            base_first, trial_first, trial_first + timedelta(days=n + 1)))
        assert b["alerts"] + t["alerts"] == len([a for a in stored
                                                if lo <= a["event_ms"] < hi])
        rows = {row["measure"]: row for row in csv.DictReader(io.StringIO(csv_r.text))}
        assert rows["physical_night_visits"]["baseline"] == str(n)
        assert rows["physical_night_visits"]["trial"] == "0"
        assert rows["digital_checks"]["trial"] == str(n * len(CHECKS))
        assert html_r.headers["content-type"].startswith("text/html")
        assert "Physical night visits" in html_r.text and "<svg" in html_r.text
        assert mid > lo
    finally:
        stop_service(rt)
        rt.store.close()
