"""Scale-out: two `tillsyn run` workers share one site through MQTT shared subscriptions
($share) on a real Mosquitto and one real PostgreSQL."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from gateway.scale.coordinator import fair_share
from gateway.scale.worker import partition_of
from gateway.storage.schema import alerts
from gateway.storage.store import Store
from tests.gateway_proc import GatewayProcess
from tests.homes import SITE, registry, write_config
from tests.load import Load, Nurse
from tests.mqtt_client import Publisher
from tests.support import Mosquitto, Postgres, free_port, wait_for


@given(total=st.integers(1, 300), n=st.integers(1, 20))
def test_fair_shares_add_up_and_differ_by_at_most_one(total: int, n: int) -> None:
    workers = [f"w{i:02d}" for i in range(n)]
    shares = [fair_share(total, workers, w) for w in workers]
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1
    assert fair_share(total, workers, "not-live") == 0


@pytest.mark.postgres
def test_leases_on_postgres(pg_url: str) -> None:
    """Take, renew, refuse to another, expire, release (the database's clock)."""
    from gateway.scale.leases import Leases
    from gateway.storage.migrate import upgrade

    upgrade(pg_url)
    store = Store(pg_url)
    try:
        a, b = Leases(store, "a", 1500), Leases(store, "b", 1500)
        a.heartbeat()
        b.heartbeat()
        assert a.live_workers() == ["a", "b"]
        assert a.acquire("slot:0") and a.acquire("slot:0")  # ours: taking again renews
        assert not b.acquire("slot:0")
        assert a.renew(["slot:0", "slot:1"]) == {"slot:0"}  # slot:1 was never ours
        time.sleep(1.7)
        assert a.renew(["slot:0"]) == set()  # expired: not renewable
        assert b.acquire("slot:0")  # expired: another takes it
        assert not a.acquire("slot:0")
        b.release("slot:0")
        assert a.acquire("slot:0")
        assert b.live_workers() == []  # heartbeats older than the lease
        a.leave()
        assert a.all() == []
    finally:
        store.close()


@pytest.mark.postgres
def test_two_workers_escalate_each_alert_once(pg_url: str) -> None:
    """Both workers look for due escalations at the same moment; each alert is escalated
    (and sent) by exactly one of them."""
    import threading

    from sqlalchemy import insert

    from gateway.alerting.service import AlertService
    from gateway.config.registry import Registry
    from gateway.storage.migrate import upgrade
    from gateway.storage.schema import alert_events

    upgrade(pg_url)
    reg = Registry.model_validate(registry(2))
    stores = [Store(pg_url), Store(pg_url)]
    sent: list[list[int]] = [[], []]

    def publisher(i: int) -> Any:
        return lambda unit, body: sent[i].append(body["alert"]["id"])

    services = [AlertService(st_, reg, escalation_seconds=60, publish=publisher(i))
                for i, st_ in enumerate(stores)]
    try:
        with stores[0].engine.begin() as conn:
            for n in range(40):
                conn.execute(insert(alerts).values(
                    resident_id="r-1000", unit_id="unit-a", kind="sos", priority=1,
                    key=f"sos:{n}", status="open", escalated=False, condition_cleared=False,
                    event_ms=1, raised_ms=1, escalation_due_ms=2))
        for _ in range(2):
            barrier = threading.Barrier(2)

            def run(i: int, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                services[i].escalate_due()

            threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert not set(sent[0]) & set(sent[1])
        assert sorted(sent[0] + sent[1]) == sorted(range(1, 41))
        with stores[0].engine.connect() as conn:
            events = conn.execute(select(alert_events.c.alert_id).where(
                alert_events.c.transition == "escalated")).scalars().all()
        assert sorted(events) == sorted(range(1, 41))
    finally:
        for st_ in stores:
            st_.close()


def _night_now() -> dict[str, str]:
    """A night window around now (the door detector only alerts at night)."""
    now = datetime.now(ZoneInfo("Europe/Stockholm"))
    return {"start": (now - timedelta(hours=1)).strftime("%H:%M"),
            "end": (now + timedelta(hours=2)).strftime("%H:%M")}


def _config(folder: Path, broker: str, pg: str, worker: str, port: int,
            reg: dict[str, Any]) -> Path:
    folder.mkdir()
    return write_config(folder, broker, pg, reg=reg, client_id="gw", api_port=port,
                        mqtt={"shared_group": "tillsyn"},
                        site={"night": _night_now(), "alerts": {"escalation_seconds": 10}},
                        scale={"enabled": True, "worker_id": worker, "slots": 2,
                               "partitions": 4, "lease_seconds": 4, "reorder_ms": 500},
                        risk={"enabled": False})


def _holds(gw: GatewayProcess, slots: list[int], partitions: list[int]) -> bool:
    h = gw.health()
    return h.get("slots") == slots and h.get("partitions") == partitions


def _door(pub: Publisher, i: int) -> None:
    pub.publish_many([(f"zigbee2mqtt/door-{i}", b'{"contact":false}')])  # false = open


@pytest.mark.broker
@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_share_the_load_and_take_over(mosquitto: Mosquitto,
                                                   tmp_path: Path) -> None:
    pg = Postgres()
    pg.start()
    reg = registry(8)
    residents = [r["id"] for r in reg["residents"]]
    ports = [free_port(), free_port()]
    w1 = GatewayProcess(_config(tmp_path / "w1", mosquitto.url, pg.url, "w1", ports[0], reg),
                        ports[0], tmp_path / "w1.log")
    w2 = GatewayProcess(_config(tmp_path / "w2", mosquitto.url, pg.url, "w2", ports[1], reg),
                        ports[1], tmp_path / "w2.log")
    store = Store(pg.url)
    nurse = Nurse(mosquitto.url)
    load: Load | None = None
    try:
        w1.start()
        wait_for(lambda: _holds(w1, [0, 1], [0, 1, 2, 3]), 30, what="w1 holds everything")
        w2.start()
        wait_for(lambda: _holds(w1, [0], [0, 1]) and _holds(w2, [1], [2, 3]), 30,
                 what="shares balanced")
        time.sleep(0.5)  # the new session's subscription granted
        topics = [f"tillsyn/v1/{SITE}/bed-{i}/event" for i in range(len(residents))]
        load = Load(mosquitto.url, "load-scale", rate=200, topics=topics).start()

        # Incidents while both run. A staff visit (Yale keypad user 2 = s-17's
        # credential) then the door: no alert, although the broker may hand the two
        # messages to different workers. The same door without a visit: one alert.
        w2_residents = [i for i, r in enumerate(residents) if partition_of(r, 4) in (2, 3)]
        w1_residents = [i for i, r in enumerate(residents) if partition_of(r, 4) in (0, 1)]
        visit, alone, sos = w2_residents[0], w1_residents[0], w2_residents[1]
        with Publisher(mosquitto.url, client_id="pub-scale") as pub:
            pub.publish_many([(f"zigbee2mqtt/lock-{visit}", json.dumps(
                {"lock_state": "unlocked", "action_source": 0, "action_user": 2}))])
            time.sleep(0.1)
            _door(pub, visit)
            _door(pub, alone)
            pub.publish_many([(f"tillsyn/v1/{SITE}/bed-{sos}/event", json.dumps(
                {"ts": int(time.time() * 1000), "kind": "sos", "value": True}))])
        wait_for(lambda: len(nurse.transitions()) >= 2, 20, what="two alerts raised")
        # the alerts escalate after 10 s: both workers look for due escalations
        wait_for(lambda: "escalated" in nurse.transitions(), 30, what="escalation")
        time.sleep(3)

        # Kill one worker under load; the other takes over its session and residents.
        w2.kill()
        killed = time.monotonic()
        wait_for(lambda: _holds(w1, [0, 1], [0, 1, 2, 3]), 60, what="takeover")
        takeover_s = time.monotonic() - killed
        after = w2_residents[2]
        with Publisher(mosquitto.url, client_id="pub-scale") as pub:
            _door(pub, after)  # a resident of the dead worker's partitions
        wait_for(lambda: len([m for m in nurse.messages if m["transition"] == "raised"]) >= 3,
                 20, what="alert for a taken-over resident")

        # The killed worker comes back: shares balance again, its rebuild repeats nothing.
        w2.start()
        wait_for(lambda: _holds(w1, [0], [0, 1]) and _holds(w2, [1], [2, 3]), 60,
                 what="balanced again")
        time.sleep(3)
        load.stop()
        wait_for(lambda: set(load.stored(store)) >= load.acked, 60,
                 what="every acknowledged message stored")
        stored = load.stored(store)

        assert not load.acked - set(stored), "lost messages"
        assert len(stored) == len(set(stored)), "doubled messages"
        assert len(load.acked) > 3000
        with store.engine.connect() as conn:
            rows = conn.execute(select(alerts.c.resident_id, alerts.c.kind,
                                       alerts.c.escalated)).all()
        got = sorted((r.resident_id, r.kind) for r in rows)
        assert got == sorted([(residents[alone], "door_open_night"),
                              (residents[sos], "sos"),
                              (residents[after], "door_open_night")])
        raised = [m for m in nurse.messages if m["transition"] == "raised"]
        escalated = [m for m in nurse.messages if m["transition"] == "escalated"]
        assert len(raised) == 3  # none doubled by two workers or by the rebuilds
        assert sorted(m["alert"]["resident_id"] for m in escalated) == \
            sorted({m["alert"]["resident_id"] for m in escalated})  # each escalated once
        print(f"scale-out: {len(load.acked)} acknowledged, {len(set(stored))} stored once; "
              f"takeover after SIGKILL in {takeover_s:.1f} s (lease 4 s)")
    finally:
        if load is not None and not load._stop.is_set():
            load.stop()
        nurse.close()
        w1.stop()
        w2.stop()
        store.close()
        pg.cleanup()
