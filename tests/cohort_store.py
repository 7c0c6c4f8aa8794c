"""A simulated cohort's readings in a fresh SQLite store, as a gateway would have stored
them (for the fall-risk tests and bench/risk.py: the feature paths read from the store)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from firmware_stubs.cohort import DayTruth, Person, cohort_registry, simulate
from gateway.storage.migrate import upgrade
from tests.homes import SITE, write_config

TZ = ZoneInfo("Europe/Stockholm")
Row = tuple[int, str, str, Any]


def insert_observations(conn: sqlite3.Connection, resident_id: str, rows: list[Row]) -> None:
    """A resident's readings (ts_ms, kind, device, value) as stored observations."""
    conn.executemany(
        "INSERT INTO observations (resident_id, device_id, kind, value, ts_ms, received_ms, "
        "room, clock_override) VALUES (?,?,?,?,?,?,?,0)",
        [(resident_id, dev, kind, json.dumps(value), ts, ts, None)
         for ts, kind, dev, value in rows])


@dataclass
class StoredCohort:
    """Where the readings are and what was played."""

    config: Path
    first: date
    last: date
    played: dict[str, tuple[list[Row], list[DayTruth]]]


def stored_cohort(folder: Path, people: list[Person], days: int, seed: int) -> StoredCohort:
    """`days` days of every person, ending two days ago, in `folder`/t.db with a config and
    the cohort's registry beside it."""
    first = datetime.now(UTC).astimezone(TZ).date() - timedelta(days=days + 2)
    url = f"sqlite:///{folder}/t.db"
    cfg = write_config(folder, "mqtt://127.0.0.1:1", url, reg=cohort_registry(people, SITE))
    upgrade(url)
    conn = sqlite3.connect(folder / "t.db")
    played = {}
    for p in people:
        rows, truth = simulate(p, first, days, TZ, seed)
        played[p.id] = (rows, truth)
        insert_observations(conn, p.id, rows)
    conn.commit()
    conn.close()
    return StoredCohort(cfg, first, first + timedelta(days=days - 1), played)
