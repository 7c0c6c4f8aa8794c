"""Fall risk through the real pipeline: simulated residents' sensors published to a real
Mosquitto, stored by the gateway, turned into daily features, scored by a trained model,
and a `fall_risk_rise` alert for the resident who slows down; the API and indicator read
the stored results."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from detectors.features import daily
from firmware_stubs.cohort import Person, as_events, cohort_registry, simulate
from firmware_stubs.player import Player
from gateway.api.app import create_app
from gateway.config.loader import load_registry
from gateway.ibic.facts import load_facts
from gateway.ibic.indicators import compute
from gateway.risk.dataset import cohort_spec
from gateway.risk.service import RiskService
from gateway.runtime import build_alerting
from gateway.storage.schema import alerts, audit_log, observations, risk_days
from tests.homes import SITE, auth, running_ingest
from tests.support import Mosquitto, wait_for

pytestmark = pytest.mark.broker
TZ = ZoneInfo("Europe/Stockholm")
DAYS = 56


def test_fall_risk_through_the_pipeline(mosquitto: Mosquitto, tmp_path: Path,
                                        model_dir: Path) -> None:
    dist = {"bedroom-hall": 2.4, "bathroom-hall": 2.0, "kitchen-hall": 3.6, "living-hall": 3.1}
    people = [
        Person("r-5000", 0, "stable", 64.0, 0.8, 35, 1.0, dist),
        # Slows by 10 cm/s over two weeks from day 42.
        Person("r-5001", 1, "decline", 58.0, 0.8, 35, 1.0, dist, onset_day=42,
               decline_cm_s=10.0, decline_days=14),
    ]
    today = datetime.now(UTC).astimezone(TZ).date()
    first = today - timedelta(days=DAYS + 1)
    last = first + timedelta(days=DAYS - 1)
    reg = cohort_registry(people, SITE)
    reg["staff"].append({"id": "s-other", "name": "Other unit", "unit": "unit-b",
                         "role": "night_staff"})
    reg["staff"].append({"id": "s-admin", "name": "Admin", "role": "admin"})
    reg["units"].append({"id": "unit-b", "name": "B"})
    played = {}
    events = []
    for p in people:
        rows, truth = simulate(p, first, DAYS, TZ, 11)
        played[p.id] = (rows, truth)
        events.extend(as_events(rows))
    events.sort()
    with running_ingest(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", "gw-risk",
                        reg=reg, site={"max_clock_behind_days": 90},
                        risk={"model": str(model_dir), "catch_up_days": 21,
                              "method": "model"}) as (rt, ingest):
        player = Player(mosquitto.url, load_registry(tmp_path / "registry.yaml"),
                        client_id="risk-player")
        try:
            sent = player.play(events, speed=0)
        finally:
            player.close()
        wait_for(lambda: rt.store.count(observations) >= sent, 180,
                 what=f"{sent} observations")
        played_rows = sum(len(rows) for rows, _ in played.values())
        assert sent == played_rows
        wait_for(lambda: sum(rt.store.count(observations, kind=k)
                             for k in ("motion", "bed", "contact")) >= played_rows, 60,
                 what="every reading")
        assert sum(rt.store.count(observations, kind=k)
                   for k in ("motion", "bed", "contact")) == played_rows
        risk = rt.risk
        assert risk is not None and risk.artefact is not None

        # 1. Features from what the gateway stored equal features from what was played.
        for p in people:
            rows, truth = played[p.id]
            direct = daily(rows, cohort_spec(p.index, p.distances_m, TZ), first, last)
            stored = risk.compute_features(rt.registry.residents[p.index], first, last)
            assert [f.as_dict() for f in stored] == [f.as_dict() for f in direct]
            # 2. Walking speed against the simulator's truth (sensors 2.0-3.6 m apart).
            errors = [abs(f.walking_speed - t.speed) for f, t in zip(stored, truth, strict=True)
                      if f.walking_speed is not None]
            # Walks a day are heavy-tailed (Variability.walks_shape): on about 7% of days
            # there are fewer than 5 transits and no speed.
            assert len(errors) >= 0.85 * DAYS
            assert statistics.fmean(errors) <= 2.5

        # 3. Daily scoring of the last 21 days, and a rise alert for the one slowing down.
        build_alerting(rt, publish=False)
        now = datetime.combine(last + timedelta(days=1), time(8), TZ)
        scored = risk.run_due(now)
        assert scored == 2 * 21
        assert risk.run_due(now) == 0  # each day once
        with rt.store.engine.connect() as conn:
            rows_db = conn.execute(select(risk_days.c.resident_id, risk_days.c.day,
                                          risk_days.c.status, risk_days.c.level)
                                   .where(risk_days.c.status != "features")).all()
            raised = conn.execute(select(alerts).where(alerts.c.kind == "fall_risk_rise")
                                  ).mappings().all()
        assert {r.status for r in rows_db} == {"scored"}
        assert [a["resident_id"] for a in raised] == ["r-5001"]
        alert = raised[0]
        assert alert["priority"] == 3
        assert alert["escalation_due_ms"] - alert["raised_ms"] == 24 * 3600 * 1000
        rise_day = date.fromisoformat(alert["detail"]["day"])
        onset = first + timedelta(days=42)
        assert 0 <= (rise_day - onset).days <= 14
        assert alert["detail"]["audience"] == "day"
        words = " ".join(f["en"] for f in alert["detail"]["factors"])
        assert "walking" in words
        # The slowing itself is flagged (detectors/trend.py), once: one alerted day.
        assert "walking_speed_decline" in alert["detail"]["reasons"]
        assert alert["detail"]["decline"]["z"] >= 2.5
        with rt.store.engine.connect() as conn:
            stored = conn.execute(select(risk_days.c.resident_id, risk_days.c.inputs)
                                  .where(risk_days.c.status == "scored")).all()
        alerted = [r.resident_id for r in stored if (r.inputs["decline"] or {}).get("alerted")]
        assert alerted == ["r-5001"]

        # 4. The API: trend with walking speed and levels; audited; scoped.
        client = TestClient(create_app(rt))
        r = client.get("/api/residents/r-5001/risk?days=30", headers=auth(rt, "s-17"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"]["simulated"] is True
        assert body["latest"]["level"] in ("moderate", "high")
        by_day = {s["day"]: s for s in body["series"]}
        truth_speed = {t.day.isoformat(): t.speed for t in played["r-5001"][1]}
        for day, s in by_day.items():
            if s["walking_speed"] is not None:
                assert abs(s["walking_speed"] - truth_speed[day]) < 6
        assert client.get("/api/residents/r-5001/risk", headers=auth(rt, "s-other")
                          ).status_code == 404
        with rt.store.engine.connect() as conn:
            audited = conn.execute(select(audit_log.c.staff_id).where(
                audit_log.c.action == "read_risk")).scalars().all()
        assert audited == ["s-17"]

        # 5. The walking-speed indicator: the median of the days' speeds.
        res = rt.registry.residents[1]
        period = [last - timedelta(days=i) for i in range(20, -1, -1)]
        facts = load_facts(rt.store, res, rt.config, rt.profiles, period[0], period[-1])
        v = compute("walking_speed", facts, period)
        expected = statistics.median(
            f.walking_speed for f in daily(played["r-5001"][0], cohort_spec(
                1, dist, TZ), period[0], period[-1]) if f.walking_speed is not None)
        assert v.status == "ok" and v.value == pytest.approx(expected, abs=0.01)
        level = compute("fall_risk_level", facts, period)
        assert level.status == "ok" and level.n == 21
        assert 0 < level.value <= 2  # not low all along

        # 6. Without a model the days are stored as no_model, and the slowing is still
        # flagged: the decline statistic needs no trained model.
        class Recorder:
            def __init__(self) -> None:
                self.decisions: list = []

            def handle(self, decisions: list) -> None:
                self.decisions.extend(decisions)

        with rt.store.engine.begin() as conn:
            conn.execute(delete(risk_days).where(risk_days.c.status != "features"))
        rec = Recorder()
        bare = RiskService(rt.store, rt.registry, rt.config, rt.profiles, None,
                           alerting=rec)  # type: ignore[arg-type]
        assert bare.run_due(now) == 2 * 21
        with rt.store.engine.connect() as conn:
            assert set(conn.execute(select(risk_days.c.status)
                                    .where(risk_days.c.status != "features")).scalars()
                       ) == {"no_model"}
        assert [(d.resident_id, d.detail["reasons"]) for d in rec.decisions] == \
            [("r-5001", ["walking_speed_decline"])]
        assert rec.decisions[0].detail["day"] == alert["detail"]["day"]

        # 7. A level rise is read from the stored levels: each of 14 days in a row above
        # every level of the 28 days before them (detectors.risk.RISE_PERSIST_DAYS).
        res = rt.registry.residents[0]
        start = first - timedelta(days=120)
        levels = ["low"] * 28 + ["moderate"] * 14
        with rt.store.engine.begin() as conn:
            conn.execute(risk_days.insert(), [
                {"resident_id": res.id, "day": (start + timedelta(days=i)).isoformat(),
                 "status": "scored", "level": lv, "features": {}, "computed_ms": 0}
                for i, lv in enumerate(levels)])
        assert risk.level_rise(res, start + timedelta(days=40)) is None  # 13 days
        assert risk.level_rise(res, start + timedelta(days=41)) == ("low", "moderate")
