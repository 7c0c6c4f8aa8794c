"""Storage service: the one place that reads and writes the database."""

from __future__ import annotations

import json
import secrets as pysecrets
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Row, Select, Table, delete, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import Fenced, StorageError
from gateway.ingest.pipeline import BatchRows
from gateway.storage.engine import WalCheckpointer, make_engine
from gateway.storage.schema import (
    audit_log,
    consent_changes,
    dead_letters,
    device_status,
    ingest_batches,
    login_failures,
    observations,
    settings,
    staff_passwords,
)


def now_ms() -> int:
    """Current time in epoch milliseconds."""
    return int(time.time() * 1000)


def to_ms(ts: datetime) -> int:
    """An aware datetime as epoch milliseconds (how every time is stored)."""
    return int(ts.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    """Stored epoch milliseconds as an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, UTC)


# Advisory lock key serialising ingest commits of several workers ("TILL" in ASCII).
COMMIT_ORDER_LOCK = 0x54494C4C
_INGEST_SQL = {
    "obs": "INSERT INTO observations (resident_id, device_id, kind, value, ts_ms, received_ms, "
           "room, clock_override) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "dead": "INSERT INTO dead_letters (topic, payload, payload_size, reason, device_id, "
            "partial, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "status": "INSERT INTO device_status (device_id, resident_id, last_seen_ms, battery, "
              "linkquality, availability) VALUES (?, ?, ?, ?, ?, ?) "
              "ON CONFLICT (device_id) DO UPDATE SET resident_id = excluded.resident_id, "
              "last_seen_ms = MAX(excluded.last_seen_ms, device_status.last_seen_ms), "
              "battery = COALESCE(excluded.battery, device_status.battery), "
              "linkquality = COALESCE(excluded.linkquality, device_status.linkquality), "
              "availability = COALESCE(excluded.availability, device_status.availability)",
    "batch": "INSERT INTO ingest_batches (client_id, last_seq, first_seq, entries, "
             "committed_ms) VALUES (?, ?, ?, ?, ?)",
    "prune": "DELETE FROM ingest_batches WHERE client_id = ? AND last_seq < ?",
    # several workers (PostgreSQL only)
    "fence": "SELECT 1 FROM leases WHERE name = ? AND holder = ? "
             "AND expires_ms > tillsyn_now_ms() FOR SHARE",
    "order": f"SELECT pg_advisory_xact_lock({COMMIT_ORDER_LOCK})",
}


# Batches of the dedup log older than this many messages are deleted (a redelivery can
# only be one of the last in-flight-window messages; this is many windows).
DEDUP_KEEP = 200_000
_ENTRY = struct.Struct(">H16s")


def _device(entry: dict[str, Any]) -> str:
    return str(entry["device_id"])


_TEXT_JSON: dict[str, str] = {}  # JSON of the few text values observations take


def value_json(value: Any) -> str:
    """An observation's value as the JSON text stored, exactly as `json.dumps` writes it.

    The ingest hot path: nearly every value is a boolean or one of a few words ("open",
    "locked"), whose JSON is looked up instead of encoded again for every row."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is str:
        text = _TEXT_JSON.get(value)
        if text is None:
            text = json.dumps(value)
            if len(value) <= 32 and len(_TEXT_JSON) < 1024:
                _TEXT_JSON[value] = text
        return text
    return json.dumps(value)


def pack_entries(inflight: list[tuple[int, str, int]]) -> bytes:
    """Packet id and digest (32 hex digits) of each message of a batch, in commit order."""
    pack = _ENTRY.pack
    return b"".join([pack(mid, bytes.fromhex(digest)) for mid, digest, _ in inflight])


def unpack_entries(entries: bytes) -> list[tuple[int, str]]:
    """(packet id, digest) of each message of a batch, in commit order."""
    return [(mid, digest.hex()) for mid, digest in _ENTRY.iter_unpack(entries)]


class Store:
    """Durable storage for ingest, the API and the CLI."""

    def __init__(self, url: str) -> None:
        self.url = url
        file_db = url.startswith("sqlite:///") and ":memory:" not in url
        self.engine: Engine = make_engine(url, autocheckpoint=not file_db)
        self.checkpointer = WalCheckpointer(self.engine) if file_db else None
        if self.checkpointer is not None:
            self.checkpointer.start()
        self._sql_cache: dict[str, str] | None = None

    def close(self) -> None:
        """Release connections (SQLite: after a last checkpoint)."""
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.engine.dispose()

    def ping(self) -> bool:
        """Whether the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    # --- ingest ---------------------------------------------------------------------------

    def last_seq(self, client_id: str) -> int:
        """Highest commit sequence number for this MQTT session."""
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(ingest_batches.c.last_seq))
                                 .where(ingest_batches.c.client_id == client_id)).scalar()
        return int(value or 0)

    def redelivered(self, client_id: str, candidates: list[tuple[int, str]],
                    min_seq: int) -> set[int]:
        """Packet ids among `candidates` (mid, digest) that we committed already.

        Only messages committed late enough to have still been in flight when the
        connection broke count (seq > min_seq); an older one with the same packet id was
        an earlier message that the broker had already seen acknowledged. Where a packet
        id was used twice in that window, its latest use counts.
        """
        if not candidates:
            return set()
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(ingest_batches.c.first_seq, ingest_batches.c.entries)
                    .where(ingest_batches.c.client_id == client_id)
                    .where(ingest_batches.c.last_seq > min_seq)
                    .order_by(ingest_batches.c.last_seq)).all()
        except SQLAlchemyError as exc:
            raise StorageError(f"redelivery lookup failed: {type(exc).__name__}") from None
        known: dict[int, str] = {}
        for first_seq, entries in rows:
            for i, (mid, digest) in enumerate(unpack_entries(bytes(entries))):
                if first_seq + i > min_seq:
                    known[mid] = digest
        return {m for m, d in candidates if known.get(m) == d}

    def commit_batch(self, client_id: str, rows: BatchRows,
                     inflight: list[tuple[int, str, int]],
                     fence: tuple[str, str] | None = None) -> int:
        """Write one batch in one transaction; returns the observations committed.

        Raises StorageError if it did not commit.

        `fence` (several workers, PostgreSQL): (lease name, worker id). The batch commits
        only while that worker holds the session slot's lease (the lease row is locked
        until commit, so it cannot pass to another worker meanwhile; Fenced otherwise),
        and under one transaction-level advisory lock, so observation ids become visible
        in id order: a reader going on from the highest id it has seen misses nothing.

        This is the ingest hot path, so it hands prepared tuples straight to the driver's
        executemany (SQLAlchemy's per-row parameter processing cost more than SQLite's
        own insert, measured in docs/performance.md). Same SQL on SQLite and PostgreSQL.
        """
        ts = now_ms()
        sql = self._sql()
        try:
            with self.engine.begin() as conn:
                if fence is not None:
                    held = conn.exec_driver_sql(sql["fence"], fence).first()
                    if held is None:
                        raise Fenced(f"lease {fence[0]} is no longer held by {fence[1]}")
                    conn.exec_driver_sql(sql["order"])
                if rows.observations:
                    conn.exec_driver_sql(sql["obs"], [
                        (o["resident_id"], o["device_id"], o["kind"], value_json(o["value"]),
                         o["ts_ms"], o["received_ms"], o["room"], o["clock_override"])
                        for o in rows.observations])
                if rows.dead_letters:
                    conn.exec_driver_sql(sql["dead"], [
                        (d["topic"], d["payload"], d["payload_size"], d["reason"],
                         d["device_id"], d["partial"], d["received_ms"])
                        for d in rows.dead_letters])
                if rows.status:
                    # in device order: two workers updating the same rows lock them in the
                    # same order, so they wait for each other instead of deadlocking
                    conn.exec_driver_sql(sql["status"], [
                        (s["device_id"], s["resident_id"], s["last_seen_ms"], s.get("battery"),
                         s.get("linkquality"), s.get("availability"))
                        for s in sorted(rows.status.values(), key=_device)])
                if inflight:
                    first, last = inflight[0][2], inflight[-1][2]
                    if last - first + 1 != len(inflight):
                        raise ValueError("a batch's sequence numbers must be consecutive")
                    conn.exec_driver_sql(sql["batch"], (client_id, last, first,
                                                        pack_entries(inflight), ts))
                    conn.exec_driver_sql(sql["prune"], (client_id, last - DEDUP_KEEP))
        except SQLAlchemyError as exc:
            raise StorageError(f"commit failed: {type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:200]}") from None
        return len(rows.observations)

    def _sql(self) -> dict[str, str]:
        if self._sql_cache is None:
            sql = dict(_INGEST_SQL)
            if self.engine.dialect.name == "postgresql":
                # psycopg uses %s placeholders and needs the JSON column cast explicitly.
                sql = {k: v.replace("?", "%s") for k, v in sql.items()}
                sql["status"] = sql["status"].replace("MAX(", "GREATEST(")
                sql["obs"] = sql["obs"].replace("%s, %s, %s, %s,", "%s, %s, %s, %s::json,", 1)
            self._sql_cache = sql
        return self._sql_cache

    def battery_levels(self) -> dict[str, float]:
        """Last known battery per device (to store battery only when it changes)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(device_status.c.device_id, device_status.c.battery)
                                .where(device_status.c.battery.is_not(None))).all()
        return {d: float(b) for d, b in rows}

    # --- reads ----------------------------------------------------------------------------

    def observations(self, resident_id: str, since_ms: int | None = None,
                     until_ms: int | None = None, kind: str | None = None,
                     limit: int = 1000) -> list[dict[str, Any]]:
        """Observations of one resident, oldest first."""
        q = select(observations).where(observations.c.resident_id == resident_id)
        if since_ms is not None:
            q = q.where(observations.c.ts_ms >= since_ms)
        if until_ms is not None:
            q = q.where(observations.c.ts_ms < until_ms)
        if kind is not None:
            q = q.where(observations.c.kind == kind)
        q = q.order_by(observations.c.ts_ms, observations.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def stream(self, query: Select[Any], size: int = 2000) -> Iterator[list[dict[str, Any]]]:
        """A query's rows as dicts in lists of `size`, streamed from the server: memory
        stays flat however many rows there are."""
        for part in self.stream_rows(query, size):
            yield [dict(r._mapping) for r in part]

    def stream_rows(self, query: Select[Any], size: int = 2000) -> Iterator[Sequence[Row[Any]]]:
        """The same as rows (tuples by position): for a hot loop that would pay for the
        dicts (the detectors' replay at start)."""
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=size).execute(query)
            yield from result.partitions(size)

    def observations_between(self, since_ms: int, until_ms: int,
                             size: int = 5000) -> Iterator[list[dict[str, Any]]]:
        """Every resident's observations in [since, until), oldest first, in lists of
        `size` (streamed)."""
        return self.stream(
            select(observations)
            .where(observations.c.ts_ms >= since_ms, observations.c.ts_ms < until_ms)
            .order_by(observations.c.ts_ms, observations.c.id), size)

    def count_between(self, since_ms: int, until_ms: int) -> int:
        """Observations (all residents) in [since, until)."""
        q = (select(func.count()).select_from(observations)
             .where(observations.c.ts_ms >= since_ms, observations.c.ts_ms < until_ms))
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def count(self, table: Table, **where: Any) -> int:
        """Row count, optionally filtered by equality on columns."""
        q = select(func.count()).select_from(table)
        for col, value in where.items():
            q = q.where(table.c[col] == value)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)

    def device_status(self) -> list[dict[str, Any]]:
        """Last-seen time, battery and availability of every device heard from."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(device_status))]

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest dead letters first."""
        q = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # --- settings and audit ---------------------------------------------------------------

    def setting(self, name: str, default_factory: Any = None) -> str | None:
        """Read a setting; create it with `default_factory()` if missing."""
        with self.engine.begin() as conn:
            value = conn.execute(select(settings.c.value)
                                 .where(settings.c.name == name)).scalar()
            if value is None and default_factory is not None:
                value = str(default_factory())
                conn.execute(insert(settings), [{"name": name, "value": value}])
        return None if value is None else str(value)

    def token_secret(self) -> str:
        """The key that signs bearer tokens when none is configured (made once, kept)."""
        value = self.setting("token_secret", lambda: pysecrets.token_urlsafe(48))
        assert value is not None
        return value

    def record_consent(self, resident_id: str, kinds: list[str], by_staff: str) -> None:
        """A consent change; the latest per resident is in force."""
        with self.engine.begin() as conn:
            conn.execute(insert(consent_changes), [{"resident_id": resident_id,
                                                    "kinds": sorted(kinds), "at_ms": now_ms(),
                                                    "by_staff": by_staff}])

    def consent_in_force(self) -> dict[str, dict[str, Any]]:
        """The latest consent change per resident: {resident: {kinds, at_ms, by_staff}}."""
        latest = select(func.max(consent_changes.c.id)).group_by(consent_changes.c.resident_id)
        q = select(consent_changes).where(consent_changes.c.id.in_(latest))
        with self.engine.connect() as conn:
            return {r.resident_id: {"kinds": list(r.kinds), "at_ms": r.at_ms,
                                    "by_staff": r.by_staff} for r in conn.execute(q)}

    def set_password(self, staff_id: str, password_hash: str) -> None:
        """Store (or replace) a staff member's password hash."""
        with self.engine.begin() as conn:
            conn.execute(delete(staff_passwords).where(staff_passwords.c.staff_id == staff_id))
            conn.execute(insert(staff_passwords), [{"staff_id": staff_id, "hash": password_hash,
                                                    "updated_ms": now_ms()}])

    def password_hash(self, staff_id: str) -> str | None:
        """A staff member's stored password hash, if any."""
        with self.engine.connect() as conn:
            value = conn.execute(select(staff_passwords.c.hash).where(
                staff_passwords.c.staff_id == staff_id)).scalar()
        return None if value is None else str(value)

    def login_failures(self, keys: list[str], since_ms: int) -> dict[str, list[int]]:
        """Times (ms, oldest first) of the failed logins under each key after `since_ms`."""
        q = (select(login_failures.c.key, login_failures.c.at_ms)
             .where(login_failures.c.key.in_(keys), login_failures.c.at_ms > since_ms)
             .order_by(login_failures.c.at_ms, login_failures.c.id))
        out: dict[str, list[int]] = {k: [] for k in keys}
        with self.engine.connect() as conn:
            for key, at_ms in conn.execute(q):
                out[key].append(int(at_ms))
        return out

    def add_login_failure(self, keys: list[str], at_ms: int, forget_before_ms: int) -> None:
        """Record a failed login under each key, and forget failures older than the window
        (so the table holds one window's failures, however many made-up ids are tried)."""
        with self.engine.begin() as conn:
            conn.execute(insert(login_failures), [{"key": k, "at_ms": at_ms} for k in keys])
            conn.execute(delete(login_failures).where(login_failures.c.at_ms < forget_before_ms))

    def clear_login_failures(self, key: str) -> None:
        """Forget the failed logins under one key (a staff id that logged in)."""
        with self.engine.begin() as conn:
            conn.execute(delete(login_failures).where(login_failures.c.key == key))

    def audit_entries(self, *, staff_id: str | None = None, resident_id: str | None = None,
                      since_ms: int | None = None, until_ms: int | None = None,
                      limit: int = 500) -> list[dict[str, Any]]:
        """The audit log, newest first, filtered."""
        q = select(audit_log).order_by(audit_log.c.at_ms.desc(), audit_log.c.id.desc())
        if staff_id is not None:
            q = q.where(audit_log.c.staff_id == staff_id)
        if resident_id is not None:
            q = q.where(audit_log.c.resident_id == resident_id)
        if since_ms is not None:
            q = q.where(audit_log.c.at_ms >= since_ms)
        if until_ms is not None:
            q = q.where(audit_log.c.at_ms < until_ms)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q.limit(limit))]

    def audit(self, staff_id: str, action: str, resident_id: str | None,
              detail: str | None = None) -> None:
        """Record a read of personal data (or a change) about one resident, or none."""
        self.audit_shown(staff_id, action, [resident_id] if resident_id else [], detail)

    def audit_shown(self, staff_id: str, action: str, residents: Iterable[str],
                    detail: str | None = None) -> None:
        """Record a response that showed the data of these residents: one row each, so
        that `resident_id` answers who saw a person (one row with none if it showed
        nobody's)."""
        at = now_ms()
        ids: list[str | None] = [*sorted(set(residents))] or [None]
        with self.engine.begin() as conn:
            conn.execute(insert(audit_log), [{"at_ms": at, "staff_id": staff_id,
                                              "action": action, "resident_id": rid,
                                              "detail": detail} for rid in ids])
