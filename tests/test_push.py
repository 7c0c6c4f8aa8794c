"""Web Push end to end: an SOS published to Mosquitto reaches a phone's push endpoint (a
real HTTP server on loopback standing in for the push service) as an RFC 8291 message that
only the phone can read; the test decrypts it with the subscription's keys. Gone
subscriptions are removed, failures counted, other units and low priorities not pushed."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import http_ece
import pytest
from fastapi.testclient import TestClient

from gateway.api.app import create_app
from gateway.runtime import Runtime, load_runtime, start_service, stop_service
from tests.homes import SITE, auth, two_units, write_config
from tests.mqtt_client import Publisher
from tests.pushing import Phone, PushService
from tests.support import Mosquitto, wait_for

pytestmark = pytest.mark.broker


@pytest.fixture
def world(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[tuple[Runtime, PushService]]:
    reg = two_units()
    reg["staff"].append({"id": "s-b", "name": "Night nurse B", "unit": "unit-b",
                         "role": "night_staff"})
    reg["residents"][0]["action_plan"] = "Knacka och vänta på svar.\nHon vill klara sig själv."
    service = PushService()
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", reg=reg,
                       client_id="gw-push",
                       push={"endpoint_hosts": ["127.0.0.1", "fcm.googleapis.com"]})
    rt = load_runtime(cfg)
    start_service(rt)
    try:
        wait_for(lambda: rt.ingest is not None and rt.ingest.connected, what="connected")
        yield rt, service
    finally:
        stop_service(rt)
        rt.store.close()
        service.close()


def sos(mosquitto: Mosquitto, device: str, kind: str = "sos", value: Any = True) -> None:
    pub = Publisher(mosquitto.url, client_id=f"pub-{device}-{time.monotonic_ns()}")
    pub.publish_many([(f"tillsyn/v1/{SITE}/{device}/event",
                       json.dumps({"ts": int(time.time() * 1000), "kind": kind,
                                   "value": value}))])
    pub.close()


def test_an_sos_reaches_the_units_phones_encrypted(
        world: tuple[Runtime, PushService], mosquitto: Mosquitto) -> None:
    rt, service = world
    client = TestClient(create_app(rt))
    a, b = Phone(service, "nurse-a"), Phone(service, "nurse-b")
    key = client.get("/api/push/key", headers=auth(rt, "s-17")).json()["public_key"]
    assert len(base64.urlsafe_b64decode(key + "==")) == 65  # an uncompressed P-256 point
    for phone, staff in ((a, "s-17"), (b, "s-b")):
        r = client.post("/api/push/subscriptions", json=phone.subscription(),
                        headers=auth(rt, staff))
        assert r.status_code == 201, r.text
    sos(mosquitto, "bed-0")  # r-1000 of unit-a
    wait_for(lambda: len(service.received) >= 1, 20, what="a push")
    time.sleep(0.5)
    got = service.received
    assert [g["path"] for g in got] == [a.path]  # not unit-b's phone
    msg = got[0]
    assert msg["headers"]["content-encoding"] == "aes128gcm"
    assert msg["headers"]["authorization"].startswith("vapid t=")
    assert f"k={key}" in msg["headers"]["authorization"]
    assert int(msg["headers"]["ttl"]) == 600 and msg["headers"]["urgency"] == "high"
    assert b"Trygghetslarm" not in msg["body"]  # the push service sees only ciphertext
    data = a.read(msg["body"])
    assert data["title"] == "Prio 1 · Trygghetslarm"
    assert data["body"] == "Rum: Sovrum\nKnacka och vänta på svar."
    assert data["url"] == f"/?alert={data['alert_id']}"
    assert "Test Person" not in json.dumps(data)  # no name in a notification
    with pytest.raises(http_ece.ECEException, match="InvalidTag"):
        b.read(msg["body"])  # another phone cannot read it
    # Low priority alerts are not pushed (battery low is priority 3).
    sos(mosquitto, "bed-0", "battery", 5)
    time.sleep(1.5)
    assert len(service.received) == 1


def test_gone_subscriptions_are_removed_and_failures_counted(
        world: tuple[Runtime, PushService], mosquitto: Mosquitto) -> None:
    rt, service = world
    client = TestClient(create_app(rt))
    gone, broken, fine = (Phone(service, n) for n in ("gone", "broken", "fine"))
    service.status[gone.path] = 410
    service.status[broken.path] = 500
    for phone in (gone, broken, fine):
        assert client.post("/api/push/subscriptions", json=phone.subscription(),
                           headers=auth(rt, "s-17")).status_code == 201
    assert rt.push is not None
    assert len(rt.push.subscriptions(["s-17"])) == 3
    sos(mosquitto, "bed-0")
    wait_for(lambda: len(service.received) >= 3, 20, what="three pushes")
    wait_for(lambda: rt.push is not None and rt.push.idle(), 10, what="sender idle")
    left = {s.endpoint for s in rt.push.subscriptions(["s-17"])}
    assert left == {broken.endpoint, fine.endpoint}
    metrics = rt.metrics.render().decode()
    assert "tillsyn_push_subscriptions_removed_total 1.0" in metrics
    assert 'tillsyn_push_failed_total{reason="http_500"} 1.0' in metrics
    assert "tillsyn_push_sent_total 1.0" in metrics
    assert "tillsyn_push_subscriptions 2.0" in metrics


def test_only_push_services_may_be_endpoints(world: tuple[Runtime, PushService]) -> None:
    rt, service = world
    client = TestClient(create_app(rt))
    phone = Phone(service, "x")
    for endpoint, why in (("https://internal.example/hook", "not a push service"),
                          ("http://fcm.googleapis.com/fcm/send/x", "over https"),
                          ("https://fcm.googleapis.com.evil.example/x", "not a push service")):
        body = {**phone.subscription(), "endpoint": endpoint}
        r = client.post("/api/push/subscriptions", json=body, headers=auth(rt, "s-17"))
        assert r.status_code == 422 and why in r.text, (endpoint, r.text)
    ok = {**phone.subscription(), "endpoint": "https://fcm.googleapis.com/fcm/send/abc"}
    assert client.post("/api/push/subscriptions", json=ok,
                       headers=auth(rt, "s-17")).status_code == 201
    r = client.request("DELETE", "/api/push/subscriptions", json={"endpoint": ok["endpoint"]},
                       headers=auth(rt, "s-b"))
    assert r.json()["removed"] is False  # another staff member's phone is not theirs
    r = client.request("DELETE", "/api/push/subscriptions", json={"endpoint": ok["endpoint"]},
                       headers=auth(rt, "s-17"))
    assert r.json()["removed"] is True
