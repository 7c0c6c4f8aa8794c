"""Storage service: the one place that reads and writes the database."""

from __future__ import annotations

import secrets as pysecrets
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, Table, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import StorageError
from gateway.ingest.pipeline import BatchRows
from gateway.storage.engine import make_engine
from gateway.storage.schema import (
    audit_log,
    dead_letters,
    device_status,
    ingest_inflight,
    observations,
    settings,
)


def now_ms() -> int:
    """Current time in epoch milliseconds."""
    return int(time.time() * 1000)


def _upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: list[str],
            coalesce: Iterable[str] = ()) -> None:
    if not rows:
        return
    dialect = conn.dialect.name
    stmt: Any
    if dialect == "sqlite":
        stmt = sqlite.insert(table)
    elif dialect == "postgresql":
        stmt = postgresql.insert(table)
    else:  # pragma: no cover - only the two supported databases
        raise StorageError(f"unsupported database {dialect}")
    keep = set(coalesce)
    update = {}
    for col in rows[0]:
        if col in keys:
            continue
        if col in keep:
            update[col] = func.coalesce(stmt.excluded[col], table.c[col])
        else:
            update[col] = stmt.excluded[col]
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update), list(rows))


class Store:
    """Durable storage for ingest, the API and the CLI."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)

    def close(self) -> None:
        """Release connections."""
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
            value = conn.execute(select(func.max(ingest_inflight.c.seq))
                                 .where(ingest_inflight.c.client_id == client_id)).scalar()
        return int(value or 0)

    def redelivered(self, client_id: str, candidates: list[tuple[int, str]],
                    min_seq: int) -> set[int]:
        """Packet ids among `candidates` (mid, digest) that we committed already.

        Only rows committed late enough to have still been in flight when the connection
        broke count (seq > min_seq); an older row with the same packet id belongs to an
        earlier message that the broker had already seen acknowledged.
        """
        if not candidates:
            return set()
        mids = [m for m, _ in candidates]
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ingest_inflight.c.mid, ingest_inflight.c.digest)
                .where(ingest_inflight.c.client_id == client_id)
                .where(ingest_inflight.c.mid.in_(mids))
                .where(ingest_inflight.c.seq > min_seq)).all()
        known = {int(m): d for m, d in rows}
        return {m for m, d in candidates if known.get(m) == d}

    def commit_batch(self, client_id: str, rows: BatchRows,
                     inflight: list[tuple[int, str, int]]) -> None:
        """Write one batch in one transaction; raises StorageError if it did not commit."""
        ts = now_ms()
        try:
            with self.engine.begin() as conn:
                if rows.observations:
                    conn.execute(insert(observations), rows.observations)
                if rows.dead_letters:
                    conn.execute(insert(dead_letters), rows.dead_letters)
                if rows.status:
                    status_rows = [
                        {"device_id": s["device_id"], "resident_id": s["resident_id"],
                         "last_seen_ms": s["last_seen_ms"], "battery": s.get("battery"),
                         "linkquality": s.get("linkquality"),
                         "availability": s.get("availability")}
                        for s in rows.status.values()]
                    _upsert(conn, device_status, status_rows, ["device_id"],
                            coalesce=("battery", "linkquality", "availability"))
                _upsert(conn, ingest_inflight,
                        [{"client_id": client_id, "mid": mid, "digest": digest, "seq": seq,
                          "committed_ms": ts} for mid, digest, seq in inflight],
                        ["client_id", "mid"])
        except SQLAlchemyError as exc:
            raise StorageError(f"commit failed: {type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:200]}") from None

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

    def audit(self, staff_id: str, action: str, resident_id: str | None,
              detail: str | None = None) -> None:
        """Record a read of personal data."""
        with self.engine.begin() as conn:
            conn.execute(insert(audit_log), [{"at_ms": now_ms(), "staff_id": staff_id,
                                              "action": action, "resident_id": resident_id,
                                              "detail": detail}])
