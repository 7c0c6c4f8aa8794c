"""Simulated homes through firmware stubs, broker and gateway: every event stored once."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from firmware_stubs.home import HomeLayout, last_complete_night, plan_nights
from firmware_stubs.player import Player
from gateway.config.loader import load_registry
from gateway.storage.schema import observations
from tests.homes import registry, running_ingest
from tests.support import Mosquitto, wait_for

pytestmark = pytest.mark.broker
TZ = ZoneInfo("Europe/Stockholm")


def test_home_layout_roles() -> None:
    from gateway.config.registry import Registry

    res = Registry.model_validate(registry(1)).residents[0]
    home = HomeLayout.from_resident(res)
    assert home.pir == {"hall": "hall-pir-0"}
    assert home.bed == "bed-0"
    assert home.door == "door-0"
    assert home.lock == "lock-0"
    assert home.position == "alarm-0"


def test_nights_through_the_real_pipeline(mosquitto: Mosquitto, tmp_path: Path) -> None:
    with running_ingest(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", "gw-sim",
                        reg=registry(3)) as (rt, _gw):
        first = last_complete_night(datetime.now(UTC), TZ, nights_back=2)
        events, truths = plan_nights(rt.registry, first, 2, seed=7, tz=TZ, staff_visit_every=2)
        assert sum(t.staff_visits for t in truths) >= 1
        player = Player(mosquitto.url, rt.registry, client_id="sim-test")
        player.play(events, speed=0)
        player.close()
        # Check-ins (hourly zigbee reports, alarm pings) are observations too: the alarm's
        # ping is a position, and zigbee2mqtt repeats the cached state in every report: the
        # door's contact, the PIR's occupancy, and the lock's state once it has one.
        checkin_kind = {"alarm": "position", "door": "contact", "hall": "motion"}
        by_kind: Counter[str] = Counter()
        locked: set[str] = set()
        for e in sorted(events):
            prefix = e.device_id.split("-")[0]
            if e.kind == "lock":
                locked.add(e.device_id)
            if e.kind != "checkin":
                by_kind[e.kind] += 1
            elif prefix in checkin_kind:
                by_kind[checkin_kind[prefix]] += 1
            elif prefix == "lock" and e.device_id in locked:
                by_kind["lock"] += 1
        devices = {e.device_id for e in events}
        expected = sum(by_kind.values()) + len(devices)  # + first battery reading per device
        wait_for(lambda: rt.store.count(observations) >= expected, 60,
                 what=f"{expected} observations")
        for kind, n in by_kind.items():
            assert rt.store.count(observations, kind=kind) == n, kind
        assert rt.store.count(observations, kind="battery") == len(devices)
        assert rt.store.count(observations, clock_override=True) == 0
        assert sum(t.walks for t in truths) == 6  # every home has a position alarm
        walk = rt.store.observations("r-1000", kind="geofence")
        assert [o["value"]["event"] for o in walk] == ["leave", "enter", "leave", "enter"]
        assert rt.store.count(observations, kind="position") == by_kind["position"] > 0
        locks = rt.store.observations("r-1000", kind="lock")
        assert locks
        assert all(o["value"]["credential"] == "keypad:2" for o in locks)


def test_simulate_command(mosquitto: Mosquitto, tmp_path: Path) -> None:
    with running_ingest(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", "gw-sim-cli",
                        reg=registry(2)) as (rt, gw):
        r = subprocess.run([sys.executable, "-m", "gateway", "simulate", "--broker",
                            mosquitto.url, "--registry", str(tmp_path / "registry.yaml"),
                            "--speed", "0", "--nights", "1"], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        published = int(r.stdout.split("published ")[1].split()[0])
        reg = load_registry(tmp_path / "registry.yaml")
        assert published > 100 * len(reg.residents)
        wait_for(lambda: gw.committed_messages >= published, 60, what="all committed")
        assert rt.metrics.dead_letters._value.get() == 0
