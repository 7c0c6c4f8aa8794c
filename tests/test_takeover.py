"""A broker that lets any client use the gateway's client id (not the shipped
configuration: tests/test_device_security.py shows that one refuses): the gateway notices
that its connection is being taken, says so on /healthz (degraded) and on /metrics, and
logs it. MQTT 3.1.1 (the default, Tillsyn's own client) sees the broker close the
connection, and so does MQTT 5 (paho) with Debian's Mosquitto 2.0.11, which closes the
connection without the DISCONNECT "session taken over" (0x8E) that MQTT 5 allows; where a
broker sends it, the gateway counts it as `session_taken_over` and reports it at once."""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient

from gateway.api.app import create_app
from tests.homes import running_ingest
from tests.support import Mosquitto, wait_for

pytestmark = pytest.mark.broker


def intrude(broker: Mosquitto, client_id: str, protocol: int) -> None:
    """Connect with the gateway's client id, stay a moment, leave."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    time.sleep(0.5)
    c.disconnect()
    c.loop_stop()


@pytest.mark.parametrize(("protocol", "times", "reason"), [
    ("3.1.1", 3, "closed_by_broker"), ("5", 3, "closed_by_broker")])
def test_a_takeover_of_the_gateways_client_id_is_reported(
        mosquitto: Mosquitto, tmp_path: Path, protocol: str, times: int, reason: str) -> None:
    cid = f"gw-takeover-{protocol}"
    with running_ingest(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", cid,
                        mqtt={"protocol": protocol}) as (rt, ingest):
        rt.ingest = ingest
        client = TestClient(create_app(rt))
        assert client.get("/healthz").json()["mqtt_takeover_suspected"] is False
        for _ in range(times):
            intrude(mosquitto, cid, mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311)
            wait_for(lambda: ingest.connected, 20, what="the gateway back")
        wait_for(ingest.takeover_suspected, 10, what="takeover noticed")
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        assert health.json()["mqtt_takeover_suspected"] is True
        metrics = client.get("/metrics").text
        line = f'tillsyn_mqtt_disconnects_total{{reason="{reason}"}}'
        counted = float(next(x for x in metrics.splitlines() if x.startswith(line)).split()[1])
        assert counted >= times
