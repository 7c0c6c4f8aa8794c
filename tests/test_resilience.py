"""Broker restarts, hostile messages and the service's own health endpoints."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.storage.schema import dead_letters, observations
from gateway.storage.store import Store
from tests.gateway_proc import GatewayProcess
from tests.homes import SITE, running_ingest, write_config
from tests.mqtt_client import Publisher
from tests.support import Mosquitto, free_port, wait_for

pytestmark = pytest.mark.broker


def test_broker_restart_reconnects_and_loses_nothing(tmp_path: Path) -> None:
    broker = Mosquitto()
    broker.start()
    port = free_port()
    db = f"sqlite:///{tmp_path}/t.db"
    cfg = write_config(tmp_path, broker.url, db, client_id="gw-rs", api_port=port)
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    store = Store(db)
    try:
        time.sleep(0.5)
        pub = Publisher(broker.url, client_id="pub-rs-1")
        pub.publish_many([("zigbee2mqtt/hall-pir-0", b'{"occupancy":true}')] * 100)
        pub.close()
        wait_for(lambda: store.count(observations) == 100, what="first 100")
        broker.stop()
        wait_for(lambda: gw.health().get("mqtt_connected") is False, what="disconnect noticed")
        assert gw.health()["status"] == "degraded"
        broker.start()  # same port, same persistence: the session survives
        pub = Publisher(broker.url, client_id="pub-rs-2")
        pub.publish_many([("zigbee2mqtt/door-0", b'{"contact":false}')] * 100)
        pub.close()
        wait_for(lambda: store.count(observations) == 200, 60, what="next 100")
        log_text = (tmp_path / "gw.log").read_text()
        assert "MQTT connection lost" in log_text
        assert "reconnecting with back-off 1-30 s" in log_text
        assert log_text.count("MQTT connected") >= 2
    finally:
        gw.stop()
        store.close()
        broker.cleanup()


def test_hostile_messages_never_stop_ingest(mosquitto: Mosquitto, tmp_path: Path) -> None:
    base = f"tillsyn/v1/{SITE}/bed-0/event"
    hostile = [
        (base, b"\x00\xff" * 10),
        (base, b"[" * 50_000),
        (base, json.dumps({"ts": 1, "kind": "bed", "value": True, "x": "y" * 300_000})),
        (base, json.dumps({"ts": 10 ** 30, "kind": "bed", "value": True})),
        (base, b'{"ts": "\\ud800", "kind": "bed", "value": true}'),
        ("zigbee2mqtt/lock-0", b'{"lock_state": {"$ne": 1}}'),
        ("zigbee2mqtt/door-0/availability", b"maybe"),
        ("owntracks/r-1000/alarm", b'{"_type":"location","lat":"DROP TABLE","lon":1,"tst":1}'),
    ]
    good = (base, json.dumps({"ts": int(time.time() * 1000), "kind": "bed", "value": True}))
    with (running_ingest(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db",
                         "gw-hostile") as (rt, gw),
          Publisher(mosquitto.url, client_id="pub-hostile") as pub):
        pub.publish_many([*hostile, good])
        wait_for(lambda: gw.committed_messages >= len(hostile) + 1, what="all handled")
        assert rt.store.count(observations, kind="bed") == 1
        assert rt.store.count(dead_letters) == len(hostile)
        reasons = {d["reason"] for d in rt.store.dead_letters()}
        assert any("exceeds the limit of 262144" in r for r in reasons)
        oversized = next(d for d in rt.store.dead_letters() if "exceeds" in d["reason"])
        assert len(oversized["payload"]) == 4096  # capped
        assert oversized["payload_size"] > 300_000
        assert gw.connected


def test_service_health_and_metrics(mosquitto: Mosquitto, tmp_path: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db",
                       client_id="gw-health", api_port=port)
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    pub = Publisher(mosquitto.url, client_id="pub-health")
    try:
        health = gw.health()
        assert health["status"] == "ok"
        assert health["database"] is True
        assert health["devices_registered"] == 10
        pub.publish_many([("zigbee2mqtt/hall-pir-0", b'{"occupancy":true}'),
                          ("zigbee2mqtt/hall-pir-1", b"not json")])

        def metrics() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                return str(r.read().decode())

        wait_for(lambda: "tillsyn_messages_received_total 2.0" in metrics(), what="metrics")
        text = metrics()
        assert "tillsyn_observations_stored_total 1.0" in text
        assert "tillsyn_dead_letters_total 1.0" in text
        assert "tillsyn_ingest_lag_seconds" in text
        assert "tillsyn_mqtt_connected 1.0" in text
    finally:
        pub.close()
        gw.stop()


def test_receiver_process_killed_is_restarted(mosquitto: Mosquitto, tmp_path: Path) -> None:
    with (running_ingest(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db",
                         "gw-recv-kill") as (rt, gw),
          Publisher(mosquitto.url, client_id="pub-recv-kill") as pub):
        pub.publish_many([("zigbee2mqtt/hall-pir-0", b'{"occupancy":true}')] * 100)
        wait_for(lambda: rt.store.count(observations) == 100, what="first 100")
        os.kill(gw.receiver.proc.pid, signal.SIGKILL)
        wait_for(lambda: not gw.connected, what="loss noticed")
        pub.publish_many([("zigbee2mqtt/door-0", b'{"contact":false}')] * 100)
        wait_for(lambda: rt.store.count(observations) == 200, 60, what="next 100")
        assert gw.receiver.restarts == 1
        assert gw.connected


def test_json_logs_from_every_process(mosquitto: Mosquitto, tmp_path: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db",
                       client_id="gw-json-logs", api_port=port,
                       logging={"json_format": True})
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    gw.stop()
    lines = [ln for ln in (tmp_path / "gw.log").read_text().splitlines() if ln.strip()]
    records = [json.loads(ln) for ln in lines]  # every line is JSON
    loggers = {r["logger"] for r in records}
    assert "gateway.mqtt.wire_client" in loggers  # the receiver process's lines too
    assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)


def test_password_broker_with_secret_from_environment(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver process must log in with the real password (from the environment),
    not the masked form a pydantic secret takes in JSON."""
    broker = Mosquitto(users={"gateway": "gw-s3cret", "sensor": "sensor-pw"})
    broker.start()
    monkeypatch.setenv("TILLSYN_MQTT_PASSWORD", "gw-s3cret")
    port = free_port()
    db = f"sqlite:///{tmp_path}/t.db"
    cfg = write_config(tmp_path, broker.url, db, client_id="gw-auth", api_port=port,
                       mqtt={"username": "gateway"})
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    store = Store(db)
    try:
        gw.start()  # waits until /healthz says the broker is connected
        with Publisher(broker.url, client_id="pub-auth", username="sensor",
                       password="sensor-pw") as pub:
            pub.publish_many([("zigbee2mqtt/hall-pir-0", b'{"occupancy":true}')])
        wait_for(lambda: store.count(observations) == 1, what="stored through auth broker")
        assert "gw-s3cret" not in (tmp_path / "gw.log").read_text()
    finally:
        gw.stop()
        store.close()
        broker.cleanup()
