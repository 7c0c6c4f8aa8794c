"""Ingest against a real Mosquitto and real databases."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gateway.runtime import build_ingest, load_runtime
from gateway.storage.schema import dead_letters, observations
from tests.homes import SITE, registry, running_ingest, write_config
from tests.mqtt_client import Publisher
from tests.support import PAYLOADS, Mosquitto, wait_for

pytestmark = pytest.mark.broker


def test_real_payloads_through_broker_are_stored(mosquitto: Mosquitto, db_url: str,
                                                 tmp_path: Path) -> None:
    z2m = PAYLOADS / "zigbee2mqtt"
    now_ms = int(time.time() * 1000)
    msgs = [
        ("zigbee2mqtt/hall-pir-0", (z2m / "RTCGQ11LM_state_occupancy_true.json").read_bytes()),
        ("zigbee2mqtt/lock-0",
         (z2m / "yale_YRD226_lock_state_unlocked_keypad_user2.json").read_bytes()),
        ("zigbee2mqtt/door-0/availability",
         (z2m / "availability_legacy_offline.txt").read_bytes()),
        (f"tillsyn/v1/{SITE}/bed-0/event",
         json.dumps({"ts": now_ms, "kind": "bed", "value": True})),
        ("owntracks/r-1000/alarm",
         (PAYLOADS / "owntracks" / "location_quicksetup.json").read_bytes()),
        # bad ones: invalid JSON, wrong value type
        (f"tillsyn/v1/{SITE}/bed-0/event", b"{not json"),
        ("zigbee2mqtt/door-0", b'{"contact": "maybe"}'),
    ]
    with (running_ingest(tmp_path, mosquitto.url, db_url, f"gw-{tmp_path.name}") as (rt, gw),
          Publisher(mosquitto.url, client_id=f"pub-{tmp_path.name}") as pub):
        pub.publish_many(msgs)
        wait_for(lambda: gw.committed_messages >= len(msgs), what="all committed")
        rows = rt.store.observations("r-1000", limit=100)
        kinds = sorted(r["kind"] for r in rows)
        # motion+battery 100, lock+battery 100, availability, bed, position+battery 53
        assert kinds == sorted(["motion", "battery", "lock", "battery", "availability", "bed",
                                "position", "battery"])
        lock = next(r for r in rows if r["kind"] == "lock")
        assert lock["value"]["credential"] == "keypad:2"
        bed = next(r for r in rows if r["kind"] == "bed")
        assert bed["ts_ms"] == now_ms and bed["room"] == "bedroom"
        pos = next(r for r in rows if r["kind"] == "position")
        assert pos["clock_override"] is True  # the 2024 sample time is > 7 days old
        reasons = sorted(d["reason"] for d in rt.store.dead_letters())
        assert any(r.startswith("invalid JSON") for r in reasons)
        assert any(r.startswith("contact: expected true or false") for r in reasons)
        assert rt.store.count(dead_letters) == 2
        status = {s["device_id"]: s for s in rt.store.device_status()}
        assert status["door-0"]["availability"] == "offline"
        assert status["hall-pir-0"]["battery"] == 100
        assert status["hall-pir-0"]["linkquality"] == 26


def test_consent_filter(mosquitto: Mosquitto, tmp_path: Path) -> None:
    with (running_ingest(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db",
                         f"gw-{tmp_path.name}", reg=registry(1, consent=["bed"])) as (rt, gw),
          Publisher(mosquitto.url, client_id=f"pub-{tmp_path.name}") as pub):
        pub.publish_many([
            ("zigbee2mqtt/hall-pir-0", b'{"occupancy": true}'),
            (f"tillsyn/v1/{SITE}/bed-0/event",
             json.dumps({"ts": int(time.time() * 1000), "kind": "bed", "value": False})),
        ])
        wait_for(lambda: gw.committed_messages >= 2, what="committed")
        assert [r["kind"] for r in rt.store.observations("r-1000")] == ["bed"]
        assert rt.store.count(observations, kind="motion") == 0
        assert rt.metrics.consent_filtered._value.get() == 1


def test_redelivery_after_commit_without_ack_is_not_stored_twice(
        mosquitto: Mosquitto, db_url: str, tmp_path: Path) -> None:
    """Commit, then lose the connection before any PUBACK: the broker redelivers (DUP)
    and the gateway must recognise every message, including byte-identical ones."""
    cid = f"gw-redeliver-{tmp_path.name}"[:60]
    cfg = write_config(tmp_path, mosquitto.url, db_url, client_id=cid)
    rt = load_runtime(cfg)
    first = build_ingest(rt)
    assert first.cfg.receiver == "process"
    # Run this one with paho in-process so the test can cut it off between commit and ack.
    from gateway.ingest.receiver import ThreadReceiver
    from gateway.ingest.settings import ClientSettings

    first.receiver = ThreadReceiver(ClientSettings.of(first.cfg), first.router.topics(),
                                    first.pipeline, first._deliver, first._connection)
    client = first.receiver.session.client
    client.ack = lambda *a, **k: None  # type: ignore[method-assign]  # "crash" before acking
    first.start()
    pub = Publisher(mosquitto.url, client_id=f"pub-{cid}"[:60])
    n = 50
    try:
        wait_for(lambda: first.connected, what="connected")
        time.sleep(0.3)
        pub.publish_many([("zigbee2mqtt/hall-pir-0", b'{"occupancy":true}')] * n)
        wait_for(lambda: first.committed_messages >= n, what="first commit")
        assert rt.store.count(observations) == n
        # Drop the TCP connection without DISCONNECT, as a killed process would.
        first._stop.set()
        client.loop_stop()
        sock = client.socket()
        assert sock is not None
        sock.close()
        second = build_ingest(rt)
        second.start()
        try:
            wait_for(lambda: rt.metrics.redeliveries._value.get() >= n, 20,
                     what="redeliveries recognised")
            time.sleep(0.5)
            assert rt.store.count(observations) == n
        finally:
            second.stop()
    finally:
        pub.close()
        rt.store.close()
