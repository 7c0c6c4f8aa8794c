"""Faults under load, each against real services: Mosquitto restarted, PostgreSQL stopped for
30 s, the gateway killed with SIGKILL while alerts are open and escalations pending.

Load is native motion events with a unique device time each (`ts` = base + sequence
number), so every stored row names the message it came from: lost and doubled messages are
counted exactly."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.auth import create_token
from gateway.storage.schema import alerts
from gateway.storage.store import Store
from tests.gateway_proc import GatewayProcess
from tests.homes import SITE, registry, write_config
from tests.load import Load, Nurse
from tests.mqtt_client import Publisher
from tests.support import Mosquitto, Postgres, free_port, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]
SECRET = "test-secret-not-for-production"


def _sos(url: str, device: str, client_id: str) -> None:
    with Publisher(url, client_id=client_id) as pub:
        pub.publish_many([(f"tillsyn/v1/{SITE}/{device}/event", json.dumps(
            {"ts": int(time.time() * 1000), "kind": "sos", "value": True}))])


def _api(port: int, method: str, path: str, staff: str = "s-17") -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers={
        "Authorization": f"Bearer {create_token(SECRET, staff, 3600)}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_mosquitto_restarted_under_load(tmp_path: Path) -> None:
    # The broker's folder sits under pytest's private (0700) folder, as a real deployment's
    # may: started as root, a broker that dropped to another user could not save its
    # sessions there, and every message queued across the restart was lost (the soak
    # found it; this test passed before only because its broker folder was world-readable).
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    port = free_port()
    db = f"sqlite:///{tmp_path}/t.db"
    gw = GatewayProcess(write_config(tmp_path, broker.url, db, client_id="gw-fault-mq",
                                     api_port=port), port, tmp_path / "gw.log")
    gw.start()
    store = Store(db)
    load = Load(broker.url, "load-mq").start()
    try:
        time.sleep(3)
        broker.stop()  # under load: the gateway and the publisher both lose the broker
        wait_for(lambda: gw.health().get("mqtt_connected") is False, what="outage noticed")
        time.sleep(2)
        broker.start()  # same port and persistence: sessions and queued messages survive
        wait_for(lambda: gw.health().get("mqtt_connected") is True, 60, what="reconnected")
        time.sleep(3)
        load.stop()
        wait_for(lambda: set(load.stored(store)) >= load.acked, 60,
                 what="every acknowledged message stored")
        stored = load.stored(store)
        assert not load.acked - set(stored)  # none lost
        # QoS 1 is at-least-once from the publisher: a message in flight when the broker
        # stopped may be sent again (at most the publisher's 10 in flight). Nothing else
        # may be doubled.
        assert len(stored) - len(set(stored)) <= 10
        assert len(load.acked) > 1000
        print(f"broker restart: {len(load.acked)} acknowledged, {len(set(stored))} stored, "
              f"{len(stored) - len(set(stored))} doubled by publisher resends")
        log = (tmp_path / "gw.log").read_text()
        assert "reconnecting with back-off" in log
        assert "session present: True" in log  # the broker kept our session
        assert gw.health()["mqtt_sessions_lost"] == 0
    finally:
        gw.stop()
        store.close()
        broker.cleanup()


def _stored_motion(store: Store) -> int:
    from sqlalchemy import func

    from gateway.storage.schema import observations
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(observations)
                                .where(observations.c.kind == "motion")).scalar_one())


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not on /metrics")


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])  # our wire client; paho
def test_broker_that_lost_our_session_is_reported(tmp_path: Path, protocol: str) -> None:
    """A broker that comes back without our persistent session has dropped whatever was
    published for us meanwhile, and nothing else can tell: the gateway must say so (error
    log, /metrics, /healthz), resubscribe, and not cry wolf when the session is there."""
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    port = free_port()
    db = f"sqlite:///{tmp_path}/t.db"
    gw = GatewayProcess(write_config(tmp_path, broker.url, db, client_id="gw-lost-session",
                                     api_port=port, mqtt={"protocol": protocol}),
                        port, tmp_path / "gw.log")
    store = Store(db)
    motion = b'{"occupancy": true}'
    try:
        gw.start()
        time.sleep(0.5)  # subscriptions granted
        with Publisher(broker.url, client_id="pub-lost-1") as pub:
            pub.publish_many([("zigbee2mqtt/hall-pir-0", motion)])
        wait_for(lambda: _stored_motion(store) == 1, what="first message stored")
        assert gw.health()["mqtt_sessions_lost"] == 0
        broker.stop()
        (broker.dir / "mosquitto.db").unlink()  # the broker forgets every session
        broker.start()
        wait_for(lambda: gw.health().get("mqtt_sessions_lost") == 1, 60,
                 what="lost session reported on /healthz")
        assert gw.health()["status"] == "ok"  # a past event, not a failing gateway
        assert _metric(port, "tillsyn_mqtt_sessions_lost_total") == 1
        assert "the broker had no session for client gw-lost-session" in \
            (tmp_path / "gw.log").read_text()
        time.sleep(0.5)
        with Publisher(broker.url, client_id="pub-lost-2") as pub:
            pub.publish_many([("zigbee2mqtt/hall-pir-0", motion)])
        wait_for(lambda: _stored_motion(store) == 2, what="stored after resubscribing")
        # A restarted gateway whose session the broker kept reports nothing.
        gw.stop()
        gw.start()
        assert gw.health()["mqtt_sessions_lost"] == 0
        assert (tmp_path / "gw.log").read_text().count("the broker had no session") == 1
    finally:
        gw.stop()
        store.close()
        broker.cleanup()


def test_postgres_down_30s_under_load(mosquitto: Mosquitto, tmp_path: Path) -> None:
    pg = Postgres()
    pg.start()
    port = free_port()
    cfg = write_config(tmp_path, mosquitto.url, pg.url, client_id="gw-fault-pg",
                       api_port=port, site={"alerts": {"escalation_seconds": 10}})
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    nurse = Nurse(mosquitto.url)
    store = Store(pg.url)
    load = Load(mosquitto.url, "load-pg").start()
    try:
        _sos(mosquitto.url, "bed-0", "sos-pg")
        wait_for(lambda: "raised" in nurse.transitions(), 20, what="SOS alert raised")
        alert_id = nurse.messages[0]["alert"]["id"]
        pg.stop_server()  # 30 s outage under load, escalation due in 10 s
        down_at = time.monotonic()
        wait_for(lambda: gw.health().get("database") is False, 20, what="/healthz degraded")
        health = gw.health()
        assert health["status"] == "degraded"
        # The open alert is escalated from memory while the database is down.
        wait_for(lambda: "escalated" in nurse.transitions(alert_id), 25,
                 what="escalation during the outage")
        escalated = [m for m in nurse.messages if m["transition"] == "escalated"][0]
        assert escalated["stored"] is False and escalated["alert"]["escalated"] is True
        time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
        assert gw.health().get("database") is False
        pg.start_server()
        wait_for(lambda: gw.health().get("status") == "ok", 60, what="healthy again")
        time.sleep(2)
        load.stop()
        wait_for(lambda: len(load.stored(store)) >= len(load.acked), 90,
                 what="everything queued during the outage stored")
        stored = load.stored(store)
        assert set(stored) == load.acked and len(stored) == len(set(stored))  # exact
        assert len(load.acked) > 5000
        print(f"postgres outage: {len(load.acked)} acknowledged, {len(stored)} stored once")
        time.sleep(2)  # the tick that stores the escalation made during the outage
        with store.engine.connect() as conn:
            row = conn.execute(select(alerts.c.escalated, alerts.c.status).where(
                alerts.c.id == alert_id)).one()
        assert row.escalated and row.status == "open"
        assert nurse.transitions(alert_id).count("escalated") == 1  # sent once, not twice
        log = (tmp_path / "gw.log").read_text()
        assert f"alert {alert_id} escalated from memory" in log
    finally:
        gw.stop()
        nurse.close()
        store.close()
        pg.cleanup()


def test_sigkill_with_open_alerts_and_pending_escalations(mosquitto: Mosquitto,
                                                          tmp_path: Path) -> None:
    port = free_port()
    db = f"sqlite:///{tmp_path}/t.db"
    cfg = write_config(tmp_path, mosquitto.url, db, reg=registry(2), client_id="gw-fault-kill",
                       api_port=port, site={"alerts": {"escalation_seconds": 10}})
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    nurse = Nurse(mosquitto.url)
    store = Store(db)
    try:
        _sos(mosquitto.url, "bed-0", "sos-a")
        _sos(mosquitto.url, "bed-1", "sos-b")
        wait_for(lambda: nurse.transitions().count("raised") == 2, 20, what="two alerts")
        ids = {m["alert"]["resident_id"]: m["alert"]["id"] for m in nurse.messages}
        a, b = ids["r-1000"], ids["r-1001"]
        _api(port, "POST", f"/api/alerts/{b}/ack")  # b acknowledged: must never escalate
        wait_for(lambda: "acknowledged" in nurse.transitions(b), what="ack delivered")
        load = Load(mosquitto.url, "load-kill").start()
        time.sleep(1)
        gw.kill()  # SIGKILL: a's escalation is pending (due 10 s after it was raised)
        killed = time.monotonic()
        _sos(mosquitto.url, "bed-0", "sos-a2")  # the same condition again, while down
        time.sleep(12)  # a's escalation falls due while the gateway is dead
        assert "escalated" not in nurse.transitions()
        gw.start()
        restarted = time.monotonic()
        wait_for(lambda: "escalated" in nurse.transitions(a), 30,
                 what="overdue escalation fired after restart")
        assert time.monotonic() - killed < 60
        print(f"sigkill: overdue escalation {time.monotonic() - restarted:.1f} s after the "
              "restart returned")
        load.stop()
        wait_for(lambda: set(load.stored(store)) >= load.acked, 60, what="load stored")
        stored = load.stored(store)
        assert set(stored) == load.acked and len(stored) == len(set(stored))
        time.sleep(3)  # room for a wrong second escalation or a doubled alert to show
        assert nurse.transitions(a).count("escalated") == 1
        assert "escalated" not in nurse.transitions(b)
        with store.engine.connect() as conn:
            rows = conn.execute(select(alerts.c.id, alerts.c.resident_id, alerts.c.status,
                                       alerts.c.escalated)).all()
        assert sorted((r.resident_id, r.status, r.escalated) for r in rows) == [
            ("r-1000", "open", True), ("r-1001", "acknowledged", False)]  # nothing doubled
    finally:
        gw.stop()
        nurse.close()
        store.close()
