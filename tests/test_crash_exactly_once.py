"""5,000 QoS 1 messages, the gateway SIGKILLed twice: exactly 5,000 observations stored."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import pytest

from gateway.storage.schema import observations
from gateway.storage.store import Store
from tests.gateway_proc import GatewayProcess
from tests.homes import SITE, registry, write_config
from tests.mqtt_client import Publisher
from tests.support import Mosquitto, free_port, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]

N = 5000
RESIDENTS = 10


def messages(base_ms: int) -> list[tuple[str, bytes]]:
    """N messages over four profiles, each yielding exactly one observation.

    The zigbee2mqtt payloads repeat byte for byte (as real sensors' do): deduplication
    must not merge distinct messages that happen to look alike.
    """
    out = []
    for i in range(N):
        r = i % RESIDENTS
        k = i % 4
        if k == 0:
            out.append((f"zigbee2mqtt/hall-pir-{r}", b'{"occupancy":true}'))
        elif k == 1:
            out.append((f"zigbee2mqtt/door-{r}", b'{"contact":false}'))
        elif k == 2:
            out.append((f"tillsyn/v1/{SITE}/bed-{r}/event",
                        json.dumps({"ts": base_ms + i, "kind": "bed", "value": True}).encode()))
        else:
            out.append((f"owntracks/r-{1000 + r}/alarm", json.dumps(
                {"_type": "location", "lat": 55.7, "lon": 13.19, "tst": base_ms // 1000 - i,
                 "tid": "ab"}).encode()))
    return out


def test_sigkill_twice_loses_and_doubles_nothing(mosquitto: Mosquitto, db_url: str,
                                                  tmp_path: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path, mosquitto.url, db_url, reg=registry(RESIDENTS),
                       client_id=f"gw-crash-{tmp_path.name}"[:60], api_port=port,
                       storage={"batch_max": 200})
    gw = GatewayProcess(cfg, port, tmp_path / "gateway.log")
    gw.start()
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    kill_at = sorted(rng.sample(range(500, N - 500), 2))
    msgs = messages(int(time.time() * 1000))
    pub = Publisher(mosquitto.url, client_id=f"pub-crash-{tmp_path.name}"[:60])
    store = Store(db_url)
    try:
        def publish() -> None:
            for i in range(0, N, 100):
                pub.publish_many(msgs[i:i + 100])
                time.sleep(0.02)  # a steady stream, so kills land mid-flow

        t = threading.Thread(target=publish)
        t.start()
        for threshold in kill_at:
            # Kill while the stored count is still climbing: messages are in flight,
            # some committed but not yet acknowledged.
            wait_for(lambda th=threshold: store.count(observations) >= th, 120,
                     interval=0.01, what=f"{threshold} stored (seed {seed})")
            gw.kill()
            time.sleep(rng.uniform(0.05, 0.5))
            gw.start(wait_connected=False)
        t.join()
        wait_for(lambda: store.count(observations) >= N, 120,
                 what=f"{N} observations (seed {seed}, kills at {kill_at})")
        time.sleep(2.0)  # anything doubled would arrive now
        assert store.count(observations) == N, f"seed {seed}, kills at {kill_at}"
        assert store.count(observations, kind="motion") == N // 4
        assert store.count(observations, kind="contact") == N // 4
        assert store.count(observations, kind="bed") == N // 4
        assert store.count(observations, kind="position") == N // 4
        # Every uniquely stamped native message is there exactly once.
        beds = [r["ts_ms"] for rid in range(RESIDENTS)
                for r in store.observations(f"r-{1000 + rid}", kind="bed", limit=N)]
        assert len(beds) == len(set(beds)) == N // 4
    finally:
        pub.close()
        gw.stop()
        store.close()
