"""Gateway memory with 10,000 registered devices stays under 300 MB resident."""

from __future__ import annotations

import json
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


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_memory_with_10000_devices(mosquitto: Mosquitto, tmp_path: Path) -> None:
    reg = registry(2000)  # 5 devices each
    port = free_port()
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", reg=reg,
                       client_id="gw-mem", api_port=port)
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    assert gw.proc is not None
    pub = Publisher(mosquitto.url, client_id="pub-mem")
    store = Store(f"sqlite:///{tmp_path}/t.db")
    try:
        assert gw.health()["devices_registered"] == 10_000
        time.sleep(2.0)  # subscriptions for ~22,000 topics granted
        now = int(time.time() * 1000)
        msgs = [(f"tillsyn/v1/{SITE}/bed-{i % 2000}/event",
                 json.dumps({"ts": now + i, "kind": "bed", "value": True}))
                for i in range(20_000)]
        for i in range(0, len(msgs), 2000):
            pub.publish_many(msgs[i:i + 2000])
        wait_for(lambda: store.count(observations) >= 20_000, 120, what="20,000 stored")
        rss = rss_mb(gw.proc.pid)
        # Its child processes count too: the receiver (MQTT client and decoding, with its
        # own copy of the routes) and multiprocessing's resource tracker.
        children = [int(p) for p in Path(f"/proc/{gw.proc.pid}/task/{gw.proc.pid}/children")
                    .read_text().split()]
        in_children = sum(rss_mb(pid) for pid in children)
        print(f"gateway RSS with 10,000 devices after 20,000 messages: {rss:.0f} MB, "
              f"its {len(children)} child processes {in_children:.0f} MB")
        assert children
        assert rss + in_children < 300
    finally:
        pub.close()
        store.close()
        gw.stop()
