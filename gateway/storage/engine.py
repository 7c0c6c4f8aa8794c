"""Create engines: SQLite in WAL mode by default, PostgreSQL through psycopg 3."""

from __future__ import annotations

import logging
import threading
import weakref
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

log = logging.getLogger(__name__)


def sqlalchemy_url(url: str) -> str:
    """Map the configured URL to the SQLAlchemy driver we ship."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def make_engine(url: str, *, synchronous: str = "FULL", autocheckpoint: bool = True
                ) -> Engine:
    """Create an engine; for SQLite, make the folder and turn on WAL and a busy timeout.

    SQLite runs with `synchronous=FULL` so a committed batch survives power loss, which
    is what lets us acknowledge the messages in it to the broker. With `autocheckpoint`
    False no commit copies the WAL back into the database file; a `WalCheckpointer` must
    do it instead (the Store runs one).
    """
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            if not autocheckpoint:
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        install_write_gate(engine)
        return engine
    return create_engine(sqlalchemy_url(url), pool_pre_ping=True, pool_size=5,
                         max_overflow=5)


class WalCheckpointer:
    """Copies SQLite's write-ahead log back into the database file on its own thread.

    SQLite's default checkpoints run inside whichever commit fills the log past 1,000
    pages: at 2,000 messages/s that was every 5 s, and that commit (and every other write
    waiting behind it: the alert an SOS raises, the stream's audit row) waited 130-160 ms
    (bench/alert_latency.py, docs/performance.md). Here a checkpoint runs every
    `every_s` on its own thread, holding the write gate (so no writer meets it half way
    and falls into SQLite's coarse busy sleeps): small and often instead of large and
    rare. A log that still grows past `restart_pages` (a reader held it) is restarted.
    """

    def __init__(self, engine: Engine, every_s: float = 0.25,
                 restart_pages: int = 50_000) -> None:
        self.engine = engine
        self.gate = write_gate(engine)
        self.every_s = every_s
        self.restart_pages = restart_pages
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tillsyn-wal-checkpoint",
                                        daemon=True)
        self.rounds = 0

    def start(self) -> None:
        """Run in the background."""
        self._thread.start()

    def checkpoint(self, mode: str = "PASSIVE") -> tuple[int, int, int]:
        """One checkpoint: (busy, log pages, pages copied), as SQLite reports it."""
        with self.engine.connect() as conn, self.gate or nullcontext():
            row = conn.exec_driver_sql(f"PRAGMA wal_checkpoint({mode})").one()
        self.rounds += 1
        return int(row[0]), int(row[1]), int(row[2])

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                _busy, pages, _done = self.checkpoint()
                if pages > self.restart_pages:
                    self.checkpoint("RESTART")
            except Exception:  # noqa: BLE001 - a failed round is retried in a second
                log.warning("WAL checkpoint failed; retrying", exc_info=True)

    def stop(self) -> None:
        """Stop, with a last checkpoint."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            self.checkpoint()
        except Exception:  # noqa: BLE001 - the next start copies the rest
            log.info("last WAL checkpoint not done; the next start does it", exc_info=True)


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")
_GATES: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()


def write_gate(engine: Engine) -> threading.RLock | None:
    """The write gate of a SQLite engine (None for other databases)."""
    return _GATES.get(engine)


GATE_WAIT_S = 30


def install_write_gate(engine: Engine) -> None:
    """Let one connection of this process write to SQLite at a time, waiting on a lock.

    SQLite lets one writer in; another gets SQLITE_BUSY and its busy handler sleeps 1, 2,
    5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms between tries, however soon the lock is free.
    With ingest, alerting, the audit log and the fall-risk scoring writing from their own
    threads, writes waited 35, 80, 130 or 180 ms (the sums of those sleeps) where the
    writer ahead took a few: the SOS tail of bench/alert_latency.py. Here the first
    writing statement of a transaction (where SQLite takes its write lock) first takes a
    process-wide lock, released when that transaction commits or rolls back, so a waiting
    writer starts the moment the one ahead is done. Other processes (the CLI) still meet
    SQLite's own busy timeout.
    """
    gate = threading.RLock()
    _GATES[engine] = gate
    holding: set[int] = set()
    guard = threading.Lock()
    dialect = engine.dialect
    do_execute, do_executemany = dialect.do_execute, dialect.do_executemany
    do_commit, do_rollback = dialect.do_commit, dialect.do_rollback

    def raw(conn: Any) -> int:  # the sqlite3 connection under the pool's proxy
        return id(getattr(conn, "dbapi_connection", None) or conn)

    def enter(dbapi_conn: Any, statement: str) -> None:
        if statement.lstrip()[:6].upper() not in _WRITES:
            return
        key = raw(dbapi_conn)
        with guard:
            if key in holding:
                return
        if not gate.acquire(timeout=GATE_WAIT_S):
            # Never wait for ever: go on and let SQLite's own busy timeout decide.
            log.warning("waited %d s for the write gate; writing without it", GATE_WAIT_S)
            return
        with guard:
            holding.add(key)

    def leave(dbapi_conn: Any) -> None:
        key = raw(dbapi_conn)
        with guard:
            if key not in holding:
                return
            holding.discard(key)
        try:
            gate.release()
        except RuntimeError:  # ended on another thread than it began: cannot happen with
            log.error("write gate released by a thread that did not take it")  # begin()

    # A connection the pool closes or invalidates mid-transaction ends its hold too.
    event.listen(engine, "close", lambda dbapi_conn, _rec: leave(dbapi_conn))
    event.listen(engine, "invalidate", lambda dbapi_conn, _rec, _exc: leave(dbapi_conn))

    def execute(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        enter(cursor.connection, statement)
        do_execute(cursor, statement, parameters, context)

    def executemany(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        enter(cursor.connection, statement)
        do_executemany(cursor, statement, parameters, context)

    def commit(dbapi_conn: Any) -> None:
        try:
            do_commit(dbapi_conn)
        finally:
            leave(dbapi_conn)

    def rollback(dbapi_conn: Any) -> None:
        try:
            do_rollback(dbapi_conn)
        finally:
            leave(dbapi_conn)

    dialect.do_execute = execute  # type: ignore[method-assign]
    dialect.do_executemany = executemany  # type: ignore[method-assign]
    dialect.do_commit = commit  # type: ignore[method-assign,assignment]
    dialect.do_rollback = rollback  # type: ignore[method-assign,assignment]
