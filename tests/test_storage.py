"""Storage on SQLite (WAL) and a private PostgreSQL: migrations, batches, lookups."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from gateway.ingest.pipeline import BatchRows
from gateway.storage.engine import make_engine
from gateway.storage.migrate import alembic_config, upgrade
from gateway.storage.schema import dead_letters, device_status, ingest_batches, observations
from gateway.storage.store import Store
from tests.homes import write_config


def test_db_upgrade_command(db_url: str, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1", db_url)
    for _ in range(2):  # idempotent
        r = subprocess.run([sys.executable, "-m", "gateway", "db", "upgrade", "--config",
                            str(cfg)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    store = Store(db_url)
    with store.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert {"observations", "dead_letters", "device_status", "ingest_batches",
            "audit_log", "settings", "alerts", "alert_events", "visits",
            "supervision_checks", "supervision_plans", "goals", "resident_needs",
            "goal_events", "staff_passwords", "consent_changes", "login_failures"} <= tables
    assert version == "0013"
    store.close()


def test_concurrent_upgrades_on_postgres(pg_url: str, tmp_path: Path) -> None:
    """Scaled workers each run `tillsyn db upgrade` at start (Kubernetes init containers):
    started together on an empty database, all must succeed and leave one schema."""
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1", pg_url)
    procs = [subprocess.Popen([sys.executable, "-m", "gateway", "db", "upgrade", "--config",
                               str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    results = [(p.communicate(timeout=120)[1], p.returncode) for p in procs]
    assert [code for _, code in results] == [0, 0, 0], [err[-500:] for err, _ in results]
    store = Store(pg_url)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == \
            [("0013",)]
    store.close()


def test_upgrade_keeps_what_the_old_dedup_log_knew(db_url: str) -> None:
    """Migration 0006 turns the per-message dedup rows into batches of one: a message the
    broker redelivers right after the upgrade is still recognised."""
    upgrade(db_url, "0005")
    eng = make_engine(db_url)
    with eng.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO ingest_inflight (client_id, mid, digest, seq, committed_ms) VALUES "
            "('gw', 7, :a, 41, 1), ('gw', 9, :b, 42, 1), ('other', 7, :b, 5, 1)"),
            {"a": "a" * 32, "b": "b" * 32})
    eng.dispose()
    upgrade(db_url)
    store = Store(db_url)
    assert store.last_seq("gw") == 42
    assert store.redelivered("gw", [(7, "a" * 32), (9, "b" * 32), (7, "b" * 32)], 0) == {7, 9}
    assert store.redelivered("gw", [(7, "a" * 32), (9, "b" * 32)], 41) == {9}
    assert store.redelivered("other", [(7, "b" * 32)], 0) == {7}
    store.commit_batch("gw", BatchRows(), [(7, "c" * 32, 43), (8, "d" * 32, 44)])
    store.close()
    command.downgrade(alembic_config(db_url), "0005")  # and back: latest use per packet id
    eng = make_engine(db_url)
    with eng.connect() as conn:
        rows = conn.execute(sa.text("SELECT client_id, mid, digest, seq FROM ingest_inflight "
                                    "ORDER BY client_id, mid")).all()
    eng.dispose()
    assert [tuple(r) for r in rows] == [("gw", 7, "c" * 32, 43), ("gw", 8, "d" * 32, 44),
                                        ("gw", 9, "b" * 32, 42), ("other", 7, "b" * 32, 5)]


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    upgrade(url)
    store = Store(url)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    store.close()


def test_batch_commit_and_reads(db_url: str) -> None:
    upgrade(db_url)
    store = Store(db_url)
    now = int(time.time() * 1000)
    rows = BatchRows()
    rows.observations = [
        {"resident_id": "r-1", "device_id": "d-1", "kind": "position",
         "value": {"lat": 55.7, "lon": 13.19, "acc": None}, "ts_ms": now, "received_ms": now,
         "room": None, "clock_override": True},
        {"resident_id": "r-1", "device_id": "d-2", "kind": "heartbeat", "value": None,
         "ts_ms": now + 1, "received_ms": now, "room": "hall", "clock_override": False}]
    rows.dead_letters = [{"topic": "t", "payload": b"\x00\xff", "payload_size": 2,
                          "reason": "invalid", "device_id": None, "partial": False,
                          "received_ms": now}]
    rows.status = {"d-1": {"device_id": "d-1", "resident_id": "r-1", "last_seen_ms": now,
                           "battery": 80.0}}
    store.commit_batch("gw", rows, [(1, "a" * 32, 1), (2, "b" * 32, 2)])
    # A later batch without battery keeps the known battery (COALESCE) and updates last seen.
    rows2 = BatchRows()
    rows2.status = {"d-1": {"device_id": "d-1", "resident_id": "r-1", "last_seen_ms": now + 5,
                            "availability": "online"}}
    store.commit_batch("gw", rows2, [(1, "c" * 32, 3)])
    obs = store.observations("r-1")
    assert obs[0]["value"] == {"lat": 55.7, "lon": 13.19, "acc": None}
    assert obs[0]["clock_override"] is True
    assert obs[1]["value"] is None
    assert store.count(dead_letters) == 1
    assert bytes(store.dead_letters()[0]["payload"]) == b"\x00\xff"
    status = store.device_status()[0]
    assert status["battery"] == 80.0
    assert status["availability"] == "online"
    assert status["last_seen_ms"] == now + 5
    assert store.count(ingest_batches) == 2  # one row per batch
    assert store.last_seq("gw") == 3
    # Packet 1 now holds digest c (seq 3); packet 2 digest b (seq 2).
    assert store.redelivered("gw", [(1, "c" * 32), (2, "b" * 32), (2, "x" * 32)], 0) == {1, 2}
    assert store.redelivered("gw", [(1, "c" * 32), (2, "b" * 32)], 2) == {1}
    assert store.redelivered("other", [(1, "c" * 32)], 0) == set()
    assert store.count(device_status) == 1
    assert store.count(observations, kind="heartbeat") == 1
    store.close()
