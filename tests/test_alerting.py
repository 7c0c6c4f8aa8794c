"""Alert lifecycle against real SQLite, and end to end through broker, gateway and SSE."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

import gateway.alerting.runner as runner_module
from detectors.model import Decision
from gateway.alerting.runner import DetectorRunner
from gateway.alerting.service import AlertError
from gateway.auth import create_token
from gateway.ingest.pipeline import BatchRows
from gateway.runtime import Runtime, build_alerting, load_runtime
from gateway.storage.schema import alert_events, alerts
from tests.gateway_proc import GatewayProcess
from tests.homes import SITE, write_config
from tests.mqtt_client import Publisher
from tests.support import Mosquitto, free_port, wait_for


def runtime(tmp_path: Path) -> Runtime:
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db")
    rt = load_runtime(cfg)
    build_alerting(rt, publish=False)
    return rt


def sos(at: datetime, resident: str = "r-1000") -> Decision:
    return Decision("raise", "sos", resident, "sos:bed-0", at, {}, "bed-0")


def test_lifecycle_dedup_and_transitions(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    svc = rt.alerts
    assert svc is not None
    now = datetime.now(UTC)
    first = svc.handle([sos(now)])
    assert len(first) == 1
    assert svc.handle([sos(now)]) == []  # same condition, still unresolved: no second alert
    a = svc.get(first[0])
    assert (a["status"], a["priority"], a["room"], a["unit_id"]) == ("open", 1, "bedroom",
                                                                      "unit-a")
    svc.acknowledge(first[0], "s-17")
    with pytest.raises(AlertError, match="cannot become acknowledged"):
        svc.acknowledge(first[0], "s-17")
    with pytest.raises(AlertError, match="outcome must be one of"):
        svc.resolve(first[0], "s-17", "vanished")
    done = svc.resolve(first[0], "s-17", "visited")
    assert (done["status"], done["outcome"], done["resolved_by"]) == ("resolved", "visited",
                                                                      "s-17")
    again = svc.handle([sos(now)])  # the condition recurs after resolution: a new alert
    assert len(again) == 1
    assert again[0] != first[0]
    with rt.store.engine.connect() as conn:
        trail = conn.execute(select(alert_events.c.transition, alert_events.c.by)
                             .where(alert_events.c.alert_id == first[0])
                             .order_by(alert_events.c.id)).all()
    assert [tuple(t) for t in trail] == [("raised", None), ("acknowledged", "s-17"),
                                         ("resolved", "s-17")]
    rt.store.close()


def test_escalation_survives_restart(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    assert rt.alerts is not None
    alert_id = rt.alerts.handle([sos(datetime.now(UTC))])[0]
    due = rt.alerts.get(alert_id)["escalation_due_ms"]
    assert due - rt.alerts.get(alert_id)["raised_ms"] == 120_000  # site default 120 s
    assert rt.alerts.escalate_due(due - 1) == []
    rt.store.close()
    # The gateway was down when the escalation fell due: a new process escalates at start.
    rt2 = runtime(tmp_path)
    assert rt2.alerts is not None
    assert rt2.alerts.escalate_due(due + 5_000) == [alert_id]
    assert rt2.alerts.escalate_due(due + 10_000) == []  # once
    assert rt2.alerts.get(alert_id)["escalated"] is True
    rt2.store.close()


def test_detectors_rebuilt_after_crash_raise_once(tmp_path: Path) -> None:
    """An SOS committed just before a crash (detectors never saw it) is alerted at start,
    and only once however often the gateway restarts."""
    rt = runtime(tmp_path)
    now = int(time.time() * 1000)
    rows = BatchRows()
    rows.observations = [{"resident_id": "r-1000", "device_id": "bed-0", "kind": "sos",
                          "value": True, "ts_ms": now - 60_000, "received_ms": now,
                          "room": "bedroom", "clock_override": False}]
    rt.store.commit_batch("gw", rows, [])
    for _ in range(2):
        assert rt.alerts is not None
        runner = DetectorRunner(rt.config, rt.registry, rt.profiles, rt.store, rt.alerts)
        runner.rebuild()
    with rt.store.engine.connect() as conn:
        kinds = [r.kind for r in conn.execute(select(alerts.c.kind))]
    assert kinds == ["sos"]
    rt.store.close()


def test_a_more_urgent_raise_of_the_same_condition_raises_its_priority(tmp_path: Path
                                                                       ) -> None:
    rt = runtime(tmp_path)
    assert rt.alerts is not None
    at = datetime.now(UTC)

    def bed_exit(level: int) -> Decision:
        return Decision("raise", "bed_exit_no_return", "r-1000", "bed_exit_no_return", at,
                        {"moving": level == 3}, "bed-0", level)

    [first] = rt.alerts.handle([bed_exit(3)])
    assert rt.alerts.handle([bed_exit(2)]) == []  # no second alert: the same one, now 2
    assert rt.alerts.get(first)["priority"] == 2
    rt.alerts.handle([bed_exit(3)])  # never lowered
    assert rt.alerts.get(first)["priority"] == 2
    rt.alerts.acknowledge(first, "s-17")
    rt.alerts.handle([bed_exit(1)])  # raised even when acknowledged: still the same alert
    got = rt.alerts.get(first)
    assert (got["priority"], got["status"], got["detail"]["moving"]) == (1, "acknowledged",
                                                                          False)
    with rt.store.engine.connect() as conn:
        steps = [(r.transition, r.note) for r in conn.execute(
            select(alert_events.c.transition, alert_events.c.note)
            .where(alert_events.c.alert_id == first).order_by(alert_events.c.id))]
    assert steps == [("raised", None), ("priority_raised", "priority 3 -> 2"),
                     ("acknowledged", None), ("priority_raised", "priority 2 -> 1")]
    rt.store.close()


def test_occupancy_outlasts_the_restart_replay(tmp_path: Path) -> None:
    """Away for longer than the 12 h the detectors replay at start: the stored occupancy
    carries over, so the night's not_home_at_night is still raised after a restart."""
    rt = runtime(tmp_path)
    assert rt.alerts is not None
    now = datetime.now(UTC)
    start = now - timedelta(hours=30)
    received = int(now.timestamp() * 1000)

    def row(device: str, kind: str, value: Any, at: datetime) -> dict[str, Any]:
        return {"resident_id": "r-1000", "device_id": device, "kind": kind, "value": value,
                "ts_ms": int(at.timestamp() * 1000), "received_ms": received, "room": None,
                "clock_override": False}

    rows = [row("door-0", "contact", "closed", start),
            row("hall-pir-0", "motion", True, start + timedelta(minutes=1)),
            row("door-0", "contact", "open", start + timedelta(minutes=2)),
            row("door-0", "contact", "closed", start + timedelta(minutes=2, seconds=10))]
    # Afterwards only the door's hourly report, repeating "closed".
    rows += [row("door-0", "contact", "closed", start + timedelta(hours=h))
             for h in range(1, 31)]
    batch = BatchRows()
    batch.observations = rows
    rt.store.commit_batch("gw", batch, [])
    first = DetectorRunner(rt.config, rt.registry, rt.profiles, rt.store, rt.alerts)
    first.feed(rows, {})
    assert first.occupancy("r-1000")["state"] == "away"
    again = DetectorRunner(rt.config, rt.registry, rt.profiles, rt.store, rt.alerts)
    again.rebuild()
    assert again.occupancy("r-1000")["state"] == "away"
    assert again.occupancy("r-1000")["since"] == (
        start + timedelta(minutes=2, seconds=10)).replace(microsecond=(
            start.microsecond // 1000) * 1000).isoformat()
    # Without the stored fact the replay of the last 12 h alone would not know.
    cold = DetectorRunner(rt.config, rt.registry, rt.profiles, rt.store, rt.alerts)
    cold.facts.occupancy_before = lambda ids, before: {}  # type: ignore[method-assign]
    cold.rebuild()
    assert cold.occupancy("r-1000")["state"] != "away"
    rt.store.close()


@pytest.mark.broker
def test_alert_end_to_end(mosquitto: Mosquitto, tmp_path: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db",
                       client_id="gw-alert-e2e", api_port=port)
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    token = create_token("test-secret-not-for-production", "s-17", 3600)
    h = {"Authorization": f"Bearer {token}"}
    base = f"http://127.0.0.1:{port}"
    received: list[dict[str, Any]] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="alert-listener")
    sub.on_message = lambda c, u, m: received.append({"topic": m.topic,
                                                      **json.loads(m.payload)})
    host, mport = mosquitto.url.split("://")[1].split(":")
    sub.connect(host, int(mport))
    sub.subscribe(f"tillsyn/v1/{SITE}/alerts/#", 1)
    sub.loop_start()
    stream_events: list[dict[str, Any]] = []

    def read_stream() -> None:
        with httpx.stream("GET", f"{base}/api/alerts/stream", headers={**h, "Last-Event-ID": "0"},
                          timeout=httpx.Timeout(5, read=30)) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    stream_events.append(json.loads(line[6:]))
                    if len(stream_events) >= 3:
                        return

    reader = threading.Thread(target=read_stream, daemon=True)
    reader.start()
    try:
        time.sleep(0.5)
        with Publisher(mosquitto.url, client_id="pub-alert-e2e") as pub:
            pub.publish_many([(f"tillsyn/v1/{SITE}/bed-0/event",
                               json.dumps({"ts": int(time.time() * 1000), "kind": "sos",
                                           "value": True}))])
        wait_for(lambda: any(m["transition"] == "raised" for m in received), 20,
                 what="alert on MQTT")
        msg = received[0]
        assert msg["topic"] == f"tillsyn/v1/{SITE}/alerts/unit-a"
        assert msg["alert"]["kind"] == "sos"
        assert msg["alert"]["resident_id"] == "r-1000"
        assert "Test Person" not in json.dumps(msg)  # no names leave on MQTT
        listing = httpx.get(f"{base}/api/alerts", headers=h).json()
        alert_id = listing["alerts"][0]["id"]
        assert httpx.post(f"{base}/api/alerts/{alert_id}/ack", headers=h).status_code == 200
        r = httpx.post(f"{base}/api/alerts/{alert_id}/resolve", headers=h,
                       json={"outcome": "called"})
        assert r.json()["status"] == "resolved"
        reader.join(20)
        assert [e["transition"] for e in stream_events] == ["raised", "acknowledged",
                                                             "resolved"]
        ids = [e["event_id"] for e in stream_events]
        assert ids == sorted(ids)
        # Resuming after the first event gives exactly the two that followed.
        with httpx.stream("GET", f"{base}/api/alerts/stream",
                          headers={**h, "Last-Event-ID": str(ids[0])},
                          timeout=httpx.Timeout(5, read=10)) as resp:
            got = []
            for line in resp.iter_lines():
                if line.startswith("id: "):
                    got.append(int(line[4:]))
                    if len(got) == 2:
                        break
        assert got == ids[1:]
        wait_for(lambda: [m["transition"] for m in received] ==
                 ["raised", "acknowledged", "resolved"], 10, what="all transitions on MQTT")
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
            assert json.loads(resp.read())["status"] == "ok"
    finally:
        sub.loop_stop()
        sub.disconnect()
        gw.stop()


@pytest.mark.broker
def test_unacknowledged_alert_escalates_to_target_topic(mosquitto: Mosquitto,
                                                        tmp_path: Path) -> None:
    from tests.homes import registry

    reg = registry(1)
    reg["units"] = [{"id": "unit-a", "name": "A", "escalation_unit": "unit-night-lead"},
                    {"id": "unit-night-lead", "name": "Night lead"}]
    reg["residents"][0]["alerts"] = {"escalation_seconds": 10}
    port = free_port()
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", reg=reg,
                       client_id="gw-escalate", api_port=port)
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    received: list[tuple[str, dict[str, Any]]] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="escalation-listener")
    sub.on_message = lambda c, u, m: received.append((m.topic, json.loads(m.payload)))
    host, mport = mosquitto.url.split("://")[1].split(":")
    sub.connect(host, int(mport))
    sub.subscribe(f"tillsyn/v1/{SITE}/alerts/#", 1)
    sub.loop_start()
    try:
        time.sleep(0.5)
        with Publisher(mosquitto.url, client_id="pub-escalate") as pub:
            pub.publish_many([(f"tillsyn/v1/{SITE}/bed-0/event", json.dumps(
                {"ts": int(time.time() * 1000), "kind": "fall", "value": True}))])
        wait_for(lambda: any(b["transition"] == "escalated" for _, b in received), 30,
                 what="escalation")
        topics = [(t.rsplit("/", 1)[1], b["transition"]) for t, b in received]
        assert topics == [("unit-a", "raised"), ("unit-night-lead", "escalated")]
        escalated = received[1][1]["alert"]
        assert escalated["escalated"] is True
        assert escalated["status"] == "open"
        assert 9_500 <= escalated["escalation_due_ms"] - escalated["raised_ms"] <= 10_500
    finally:
        sub.loop_stop()
        sub.disconnect()
        gw.stop()


def test_alert_endpoints_respect_unit_scope(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from gateway.api.app import create_app
    from tests.homes import registry

    reg = registry(2)
    reg["units"].append({"id": "unit-b", "name": "B"})
    reg["residents"][1]["unit"] = "unit-b"
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db", reg=reg)
    rt = load_runtime(cfg)
    build_alerting(rt, publish=False)
    assert rt.alerts is not None
    mine = rt.alerts.handle([sos(datetime.now(UTC), "r-1000")])[0]
    theirs = rt.alerts.handle([sos(datetime.now(UTC), "r-1001")])[0]
    night = {"Authorization": "Bearer " + create_token(rt.token_secret(), "s-17", 600)}
    with TestClient(create_app(rt)) as client:
        listed = client.get("/api/alerts", headers=night).json()["alerts"]
        assert [a["id"] for a in listed] == [mine]
        assert client.post(f"/api/alerts/{theirs}/ack", headers=night).status_code == 404
        assert client.post(f"/api/alerts/{mine}/ack", headers=night).status_code == 200
        assert client.post(f"/api/alerts/{mine}/ack", headers=night).status_code == 409
        bad = client.post(f"/api/alerts/{mine}/resolve", headers=night,
                          json={"outcome": "vanished"})
        assert bad.status_code == 422
        assert client.get("/api/alerts").status_code == 401
    rt.store.close()


@pytest.mark.parametrize("chunk", [1, 20_000])  # the replay streams rows in chunks
def test_restart_does_not_store_staff_visits_twice(tmp_path: Path, chunk: int,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "REBUILD_CHUNK", chunk)
    rt = runtime(tmp_path)
    assert rt.alerts is not None
    now = int(time.time() * 1000)
    unlock = {"state": "unlocked", "method": "keypad", "user": 2, "credential": "keypad:2"}
    lock = {"state": "locked", "method": "keypad", "user": 2, "credential": "keypad:2"}
    rows = BatchRows()
    rows.observations = [
        {"resident_id": "r-1000", "device_id": "lock-0", "kind": "lock", "value": v,
         "ts_ms": now - 600_000 + i * 300_000, "received_ms": now, "room": "entrance",
         "clock_override": False} for i, v in enumerate([unlock, lock])]
    rt.store.commit_batch("gw", rows, [])
    for _ in range(3):  # the first start and two restarts each rebuild from the same data
        DetectorRunner(rt.config, rt.registry, rt.profiles, rt.store, rt.alerts).rebuild()
    stored = rt.alerts.visits("r-1000")
    assert [(v["staff_id"], v["end_ms"] - v["start_ms"]) for v in stored] == [("s-17", 300_000)]
    rt.store.close()
