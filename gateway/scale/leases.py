"""Leases in PostgreSQL: which worker holds which MQTT session slot and resident partition.

A lease is a row (name, holder, expires_ms). A worker takes a free or expired lease with one
conditional upsert, renews the leases it holds, and a lease it stops renewing expires and
can be taken by another worker. Time is the database's clock, so workers' clocks may differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from gateway.errors import StorageError
from gateway.storage.store import Store


@dataclass(frozen=True)
class Lease:
    """One row of the leases table."""

    name: str
    holder: str
    expires_in_ms: int


# The database's clock decides expiry (tillsyn_now_ms(), made by migration 0009), so the
# workers' clocks never matter.
_HEARTBEAT = ("INSERT INTO workers (id, heartbeat_ms, started_ms, api) "
              "VALUES (:me, tillsyn_now_ms(), tillsyn_now_ms(), :api) "
              "ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms, "
              "api = excluded.api RETURNING heartbeat_ms")
_LIVE = "SELECT id FROM workers WHERE heartbeat_ms > tillsyn_now_ms() - :ms ORDER BY id"
_ALL = "SELECT name, holder, expires_ms - tillsyn_now_ms() FROM leases"
_ACQUIRE = ("INSERT INTO leases (name, holder, expires_ms, acquired_ms) "
            "VALUES (:name, :me, tillsyn_now_ms() + :ms, tillsyn_now_ms()) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "expires_ms = excluded.expires_ms, acquired_ms = excluded.acquired_ms "
            "WHERE leases.holder = excluded.holder OR leases.expires_ms < tillsyn_now_ms() "
            "RETURNING name")
_RENEW = ("UPDATE leases SET expires_ms = tillsyn_now_ms() + :ms WHERE holder = :me "
          "AND name = ANY(:names) AND expires_ms >= tillsyn_now_ms() RETURNING name")
_RELEASE = "DELETE FROM leases WHERE name = :name AND holder = :me"
_LEAVE = ("DELETE FROM leases WHERE holder = :me", "DELETE FROM workers WHERE id = :me")


class Leases:
    """Lease operations for one worker."""

    def __init__(self, store: Store, worker_id: str, lease_ms: int) -> None:
        self.store = store
        self.worker_id = worker_id
        self.lease_ms = lease_ms

    def _run(self, sql: str, **params: object) -> list[tuple[object, ...]]:
        try:
            with self.store.engine.begin() as conn:
                result = conn.execute(text(sql), params)
                return [tuple(r) for r in result] if result.returns_rows else []
        except Exception as exc:  # SQLAlchemyError and driver errors alike
            raise StorageError(f"lease operation failed: {type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:200]}") from None

    def heartbeat(self, api: str | None = None) -> int:
        """Say this worker is alive; returns the database time (ms)."""
        return int(str(self._run(_HEARTBEAT, me=self.worker_id, api=api)[0][0]))

    def live_workers(self) -> list[str]:
        """Workers whose heartbeat is younger than one lease period."""
        return [str(r[0]) for r in self._run(_LIVE, ms=self.lease_ms)]

    def all(self) -> list[Lease]:
        """Every lease row, with the ms until it expires (negative: expired)."""
        return [Lease(str(n), str(h), int(str(e))) for n, h, e in self._run(_ALL)]

    def acquire(self, name: str) -> bool:
        """Take `name` if it is free, expired or already ours."""
        return bool(self._run(_ACQUIRE, name=name, me=self.worker_id, ms=self.lease_ms))

    def renew(self, names: list[str]) -> set[str]:
        """Extend the leases still ours; returns the names renewed."""
        if not names:
            return set()
        rows = self._run(_RENEW, ms=self.lease_ms, me=self.worker_id, names=names)
        return {str(r[0]) for r in rows}

    def release(self, name: str) -> None:
        """Give a lease up at once (a clean stop or a rebalance)."""
        self._run(_RELEASE, name=name, me=self.worker_id)

    def leave(self) -> None:
        """Release everything and remove this worker (a clean stop)."""
        for sql in _LEAVE:
            self._run(sql, me=self.worker_id)
