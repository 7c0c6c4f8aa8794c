"""Alert latency: MQTT publish of an SOS -> its alert on a server-sent-event client.

A private Mosquitto and `tillsyn run` (SQLite). 1,000 residents each press their alarm
once, one press every 20 ms, while a background load of 2,000 zigbee2mqtt messages/s
(from a separate process) flows to other devices. An SSE client (the same stream the
night-staff board uses) timestamps each `raised` event. Prints p50, p99 and max.

Usage: python bench/alert_latency.py [--alerts 1000] [--background 2000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.auth import create_token  # noqa: E402
from gateway.broker import PrivateMosquitto, free_port  # noqa: E402
from tests.gateway_proc import GatewayProcess  # noqa: E402
from tests.homes import SITE, write_config  # noqa: E402
from tests.mqtt_client import Publisher  # noqa: E402


def registry(n: int) -> dict[str, object]:
    residents = [{
        "id": f"r-{i}", "name": f"Bench {i}", "unit": "u", "consent": ["motion", "sos"],
        "devices": [
            {"id": f"alarm-{i}", "profile": "tillsyn.native",
             "source": f"tillsyn/v1/{SITE}/alarm-{i}", "room": "hall"},
            {"id": f"pir-{i}", "profile": "zigbee2mqtt.occupancy",
             "source": f"zigbee2mqtt/pir-{i}", "room": "kitchen"}]} for i in range(n)]
    return {"units": [{"id": "u", "name": "Bench"}],
            "staff": [{"id": "s-admin", "name": "Admin", "role": "admin"}],
            "residents": residents}


def background(url: str, devices: int, rate: int, stop: Any) -> None:
    """Publish `rate` zigbee2mqtt messages per second until told to stop."""
    pub = Publisher(url, client_id="bench-bg")
    i = 0
    t0 = time.monotonic()
    while not stop.is_set():
        for k in range(100):
            pub.client.publish(f"zigbee2mqtt/pir-{(i + k) % devices}",
                               b'{"occupancy":true,"linkquality":90}', qos=1)
        i += 100
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    pub.close()
    print(f"background: {i} messages in {time.monotonic() - t0:.1f} s "
          f"({i / (time.monotonic() - t0):.0f} msg/s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--alerts", type=int, default=1000)
    ap.add_argument("--background", type=int, default=2000, help="messages per second")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tillsyn-latency-"))
    broker = PrivateMosquitto(work / "mosquitto")
    broker.start()
    port = free_port()
    cfg = write_config(work, broker.url, f"sqlite:///{work}/t.db", reg=registry(args.alerts),
                       client_id="bench-latency", api_port=port)
    gw = GatewayProcess(cfg, port, work / "gw.log")
    gw.start()
    token = create_token("test-secret-not-for-production", "s-admin", 3600)
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    stop = multiprocessing.get_context("spawn").Event()

    def listen() -> None:
        with httpx.stream("GET", f"http://127.0.0.1:{port}/api/alerts/stream",
                          headers={"Authorization": f"Bearer {token}"},
                          timeout=httpx.Timeout(10, read=60)) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    msg = json.loads(line[6:])
                    if msg["transition"] == "raised" and msg["alert"]["kind"] == "sos":
                        got.setdefault(msg["alert"]["resident_id"], time.time())
                        if len(got) >= args.alerts:
                            return

    try:
        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        # The load runs in its own process, so it does not share an interpreter lock with
        # the client that timestamps publishes and arrivals.
        ctx = multiprocessing.get_context("spawn")
        bg = ctx.Process(target=background, args=(broker.url, args.alerts, args.background,
                                                   stop), daemon=True)
        bg.start()
        time.sleep(2.0)  # load running, stream open
        pub = Publisher(broker.url, client_id="bench-sos")
        for i in range(args.alerts):
            rid = f"r-{i}"
            body = json.dumps({"ts": int(time.time() * 1000), "kind": "sos", "value": True})
            sent[rid] = time.time()
            pub.client.publish(f"tillsyn/v1/{SITE}/alarm-{i}/event", body, qos=1)
            time.sleep(0.02)
        listener.join(120)
        stop.set()
        bg.join(20)
        pub.close()
    finally:
        gw.stop()
        broker.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    lat = sorted((got[r] - sent[r]) * 1000 for r in got if r in sent)
    missing = args.alerts - len(lat)
    q = statistics.quantiles(lat, n=100)
    print(f"alerts: {len(lat)} received of {args.alerts} sent ({missing} missing)")
    print(f"publish -> SSE latency: p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms, "
          f"max {lat[-1]:.1f} ms (background {args.background} msg/s)")


if __name__ == "__main__":
    main()
