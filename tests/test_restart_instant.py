"""No alert waits on a restart. The gateway starts on a database holding 300,000
observations of the last hours, so its detectors spend seconds rebuilding; an SOS published
as soon as it is connected must reach the board's event stream while that rebuild still
runs, and once the rebuild is done it must not be raised a second time (also when staff
resolved it meanwhile). A door opened at night during the rebuild reaches the timed rules
afterwards, in order."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from gateway.auth import create_token
from gateway.runtime import load_runtime
from gateway.storage.schema import observations
from tests.gateway_proc import GatewayProcess, follow_alerts
from tests.homes import SITE, registry, write_config
from tests.mqtt_client import Publisher
from tests.support import Mosquitto, free_port, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]
ROWS = 300_000
SECRET = "test-secret-not-for-production"


def fill(cfg: Path, rows: int, residents: int) -> None:
    """`rows` motion observations spread over the last 10 hours (what a busy site stores)."""
    rt = load_runtime(cfg)
    now = int(time.time() * 1000)
    rnd = random.Random(3)
    with rt.store.engine.begin() as conn:
        for start in range(0, rows, 20_000):
            conn.execute(insert(observations), [
                {"resident_id": f"r-{1000 + (i % residents)}",
                 "device_id": f"hall-pir-{i % residents}", "kind": "motion",
                 "value": rnd.random() < 0.5,
                 "ts_ms": now - 10 * 3_600_000 + i * (10 * 3_600_000 // rows),
                 "received_ms": now - 10 * 3_600_000 + i * (10 * 3_600_000 // rows),
                 "room": "hall", "clock_override": False}
                for i in range(start, min(rows, start + 20_000))])
    rt.store.close()


def test_sos_during_a_large_rebuild_is_on_the_board_at_once(mosquitto: Mosquitto,
                                                            tmp_path: Path) -> None:
    port = free_port()
    reg = registry(4)
    night = {"start": "00:00", "end": "23:59"}  # door-at-night applies whenever it runs
    for r in reg["residents"]:
        r["night"] = night
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", reg=reg,
                       client_id="gw-instant", api_port=port,
                       site={"timezone": "Europe/Stockholm"})
    fill(cfg, ROWS, 4)
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    base = f"http://127.0.0.1:{port}"
    token = create_token(SECRET, "s-17", 3600)
    auth = {"Authorization": f"Bearer {token}"}
    events: list[tuple[float, dict[str, Any]]] = []

    def listen() -> None:
        follow_alerts(base, auth, lambda e: events.append((time.monotonic(), e)))

    try:
        gw.start()  # returns once MQTT is connected; the rebuild runs meanwhile
        health = gw.health()
        assert health["detectors_rebuilding"] is True, health
        threading.Thread(target=listen, daemon=True).start()
        time.sleep(0.3)
        sent = time.monotonic()
        with Publisher(mosquitto.url, client_id="pub-instant") as pub:
            pub.publish_many([
                (f"tillsyn/v1/{SITE}/bed-1/event", json.dumps(
                    {"ts": int(time.time() * 1000), "kind": "sos", "value": True})),
                ("zigbee2mqtt/door-2", json.dumps({"contact": False}))])
        wait_for(lambda: any(e["alert"]["kind"] == "sos" for _, e in events), 30,
                 what="the SOS on the stream")
        arrived = next(t for t, e in events if e["alert"]["kind"] == "sos")
        assert gw.health()["detectors_rebuilding"] is True  # it did not wait for it
        print(f"\nSOS publish -> stream {1000 * (arrived - sent):.0f} ms during a rebuild "
              f"of {ROWS} observations")
        # Staff resolve it before the rebuild ends.
        [sos] = [a for a in httpx.get(base + "/api/alerts", headers=auth).json()["alerts"]
                 if a["kind"] == "sos"]
        httpx.post(f"{base}/api/alerts/{sos['id']}/ack", headers=auth).raise_for_status()
        httpx.post(f"{base}/api/alerts/{sos['id']}/resolve", headers=auth,
                   json={"outcome": "visited"}).raise_for_status()
        wait_for(lambda: gw.health()["detectors_rebuilding"] is False, 120,
                 what="the rebuild done")
        # The door opened during the rebuild reaches the timed rules afterwards.
        wait_for(lambda: any(e["alert"]["kind"] == "door_open_night" for _, e in events),
                 30, what="door opened at night, judged after the rebuild")
        time.sleep(2)
        alerts = httpx.get(base + "/api/alerts?status=resolved", headers=auth).json()["alerts"]
        alerts += httpx.get(base + "/api/alerts?status=unresolved",
                            headers=auth).json()["alerts"]
        assert [a["kind"] for a in alerts].count("sos") == 1, alerts  # not raised again
        log = (tmp_path / "gw.log").read_text()
        assert f"detectors rebuilt from {ROWS} observations" in log
    finally:
        gw.stop()
