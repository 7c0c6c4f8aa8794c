"""Privacy: consent changed live through the API (real Mosquitto, real ingest), retention by
the scheduled job of a running gateway and by `tillsyn db prune`, a person's export and
erasure with the real commands (real SQLite)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from gateway.api.app import create_app
from gateway.ingest.pipeline import BatchRows
from gateway.runtime import build_alerting, load_runtime
from gateway.storage.schema import (
    alerts,
    audit_log,
    dead_letters,
    observations,
    visits,
)
from gateway.storage.store import Store
from tests.gateway_proc import GatewayProcess
from tests.homes import auth, registry, running_ingest, write_config
from tests.mqtt_client import Publisher
from tests.support import Mosquitto, free_port, tillsyn, wait_for

DAY = 86_400_000


def _obs(resident: str, device: str, kind: str, ts_ms: int) -> dict[str, Any]:
    return {"resident_id": resident, "device_id": device, "kind": kind, "value": True,
            "ts_ms": ts_ms, "received_ms": ts_ms, "room": "hall", "clock_override": False}


@pytest.mark.broker
def test_consent_withdrawn_and_granted_through_the_api_applies_to_the_next_message(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/t.db"
    motion = ("zigbee2mqtt/hall-pir-0", b'{"occupancy":true}')
    contact = ("zigbee2mqtt/door-0", b'{"contact":false}')
    with running_ingest(tmp_path, mosquitto.url, db, "gw-consent") as (rt, _), \
            TestClient(create_app(rt)) as client, \
            Publisher(mosquitto.url, client_id="pub-consent") as pub:
        def stored(kind: str) -> int:
            return rt.store.count(observations, resident_id="r-1000", kind=kind)

        pub.publish_many([motion])
        wait_for(lambda: stored("motion") == 1, what="motion stored under consent")
        assert client.put("/api/residents/r-1000/consent", json={"kinds": ["contact"]},
                          headers=auth(rt, "s-17")).status_code == 403  # night staff: no
        r = client.put("/api/residents/r-1000/consent", json={"kinds": ["contact", "bed"]},
                       headers=auth(rt, "s-admin"))
        assert r.status_code == 200 and r.json()["kinds"] == ["bed", "contact"]
        pub.publish_many([motion, contact])
        wait_for(lambda: stored("contact") == 1, what="contact still stored")
        assert stored("motion") == 1  # the motion after the withdrawal was not stored
        assert rt.metrics.consent_filtered._value.get() == 1
        view = client.get("/api/residents/r-1000/consent", headers=auth(rt, "s-17")).json()
        assert view["source"] == "changed" and view["changed_by"] == "s-admin"
        assert view["kinds"] == ["bed", "contact"]
    # The change outlives a restart, and wins over the registry file's list.
    with running_ingest(tmp_path, mosquitto.url, db, "gw-consent") as (rt, _), \
            TestClient(create_app(rt)) as client, \
            Publisher(mosquitto.url, client_id="pub-consent") as pub:
        pub.publish_many([motion, contact])
        wait_for(lambda: rt.store.count(observations, kind="contact") == 2, what="contact")
        assert rt.store.count(observations, kind="motion") == 1
        client.put("/api/residents/r-1000/consent", json={"kinds": ["motion", "contact"]},
                   headers=auth(rt, "s-admin"))
        pub.publish_many([motion])
        wait_for(lambda: rt.store.count(observations, kind="motion") == 2,
                 what="motion stored again once consent is given back")
        changes = [e for e in rt.store.audit_entries(resident_id="r-1000")
                   if e["action"] == "change_consent"]
        assert len(changes) == 2


def _seed_for_retention(store: Store, now: int) -> None:
    rows = BatchRows()
    rows.observations += [
        _obs("r-1000", "hall-pir-0", "motion", now - 91 * DAY),  # motion: 90 days: goes
        _obs("r-1000", "hall-pir-0", "motion", now - 89 * DAY),  # stays
        _obs("r-1000", "alarm-0", "position", now - 31 * DAY),  # position: 30 days: goes
        _obs("r-1000", "alarm-0", "position", now - 29 * DAY),  # stays
        _obs("r-1001", "bed-1", "bed", now - 400 * DAY),  # goes
    ]
    store.commit_batch("seed", rows, [])
    with store.engine.begin() as conn:
        conn.execute(insert(dead_letters), [
            {"topic": "x", "payload": b"old", "payload_size": 3, "reason": "r",
             "received_ms": now - 31 * DAY, "partial": False},
            {"topic": "x", "payload": b"new", "payload_size": 3, "reason": "r",
             "received_ms": now - 1 * DAY, "partial": False}])
        base = {"unit_id": "unit-a", "kind": "sos", "priority": 1, "escalated": False,
                "condition_cleared": False, "detail": {}}
        conn.execute(insert(alerts), [
            {**base, "resident_id": "r-1000", "key": "old-resolved", "status": "resolved",
             "event_ms": now - 2000 * DAY, "raised_ms": now - 2000 * DAY,
             "escalation_due_ms": now - 2000 * DAY, "resolved_ms": now - 1900 * DAY},
            {**base, "resident_id": "r-1000", "key": "old-open", "status": "open",
             "event_ms": now - 2000 * DAY, "raised_ms": now - 2000 * DAY,
             "escalation_due_ms": now - 2000 * DAY, "resolved_ms": None},
            {**base, "resident_id": "r-1000", "key": "recent", "status": "resolved",
             "event_ms": now - 10 * DAY, "raised_ms": now - 10 * DAY,
             "escalation_due_ms": now - 10 * DAY, "resolved_ms": now - 9 * DAY}])
        conn.execute(insert(audit_log), [
            {"at_ms": now - 1900 * DAY, "staff_id": "s-17", "action": "read_resident",
             "resident_id": "r-1000", "detail": None}])


def test_db_prune_applies_retention_per_kind(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db",
                       storage={"retention": {"observation_days_by_kind": {"position": 30}}})
    store = Store(f"sqlite:///{tmp_path}/t.db")
    assert tillsyn("db", "upgrade", "--config", str(cfg)).returncode == 0
    _seed_for_retention(store, int(time.time() * 1000))
    r = tillsyn("db", "prune", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert store.count(observations) == 2
    assert {o["kind"] for o in store.observations("r-1000")} == {"motion", "position"}
    assert store.count(dead_letters) == 1
    with store.engine.connect() as conn:
        keys = {row.key for row in conn.execute(alerts.select())}
    assert keys == {"old-open", "recent"}  # an open alert is never removed
    assert store.count(audit_log, action="read_resident") == 0  # older than audit_days
    bad = write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db",
                       storage={"retention": {"observation_days_by_kind": {"mood": 3}}})
    r = tillsyn("check-config", str(bad))
    assert r.returncode == 2 and "unknown observation kind 'mood'" in r.stderr
    store.close()


@pytest.mark.broker
def test_running_gateway_applies_retention_on_schedule(mosquitto: Mosquitto,
                                                       tmp_path: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db",
                       client_id="gw-retention", api_port=port)
    rt = load_runtime(cfg)  # creates the schema
    now = int(time.time() * 1000)
    _seed_for_retention(rt.store, now)
    rt.store.close()
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    try:
        store = Store(f"sqlite:///{tmp_path}/t.db")
        # Default retention: 90 days for every kind; the job runs at start.
        wait_for(lambda: store.count(observations) == 3, 30, what="old observations pruned")
        assert store.count(dead_letters) == 1
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        assert 'tillsyn_retention_deleted_total{table="observations"} 2.0' in text
        store.close()
    finally:
        gw.stop()


def test_export_and_erase_a_resident(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db",
                       reg=registry(2))
    rt = load_runtime(cfg)
    now = int(time.time() * 1000)
    rows = BatchRows()
    rows.observations += [_obs("r-1000", "hall-pir-0", "motion", now - i * 60_000)
                          for i in range(7000)]  # more than one streamed chunk
    rows.observations += [_obs("r-1001", "hall-pir-1", "motion", now)]
    rt.store.commit_batch("seed", rows, [])
    build_alerting(rt, publish=False)
    with rt.store.engine.begin() as conn:
        conn.execute(insert(visits), [{"resident_id": "r-1000", "staff_id": "s-17",
                                       "device_id": "lock-0", "start_ms": now - DAY,
                                       "end_ms": now - DAY + 600_000}])
    rt.store.audit("s-17", "read_resident", "r-1000", None)
    rt.store.record_consent("r-1000", ["motion", "contact"], "s-admin")
    rt.store.close()

    out = tmp_path / "r-1000.json"
    r = tillsyn("export", "resident", "r-1000", "--config", str(cfg), "--out", str(out),
             "--by", "s-admin")
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["resident_id"] == "r-1000"
    assert data["registry"]["name"] == "Test Person 0"  # the person's own data, in full
    assert len(data["observations"]) == 7000
    assert {o["resident_id"] for o in data["observations"]} == {"r-1000"}
    assert data["observations"][0]["ts_utc"].endswith("+00:00")
    assert [v["staff_id"] for v in data["visits"]] == ["s-17"]
    assert any(a["action"] == "read_resident" and a["staff_id"] == "s-17"
               for a in data["audit_log"])  # who has read their data
    assert data["consent_changes"][0]["kinds"] == ["contact", "motion"]
    assert tillsyn("export", "resident", "r-9999", "--config", str(cfg)).returncode == 2

    r = tillsyn("erase", "resident", "r-1000", "--config", str(cfg), "--yes", "--by", "s-admin")
    assert r.returncode == 0, r.stderr
    assert "still in the registry" in r.stderr  # the registry must be changed too
    store = Store(f"sqlite:///{tmp_path}/t.db")
    assert store.count(observations, resident_id="r-1000") == 0
    assert store.count(observations, resident_id="r-1001") == 1  # nobody else's
    assert store.count(visits, resident_id="r-1000") == 1  # documentation is kept
    assert store.consent_in_force() == {}
    erased = [e for e in store.audit_entries(resident_id="r-1000")
              if e["action"] == "erase_resident"]
    assert erased and erased[0]["staff_id"] == "s-admin"
    assert "observations=7000" in erased[0]["detail"]
    store.close()
