"""Create engines: SQLite in WAL mode by default, PostgreSQL through psycopg 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event


def sqlalchemy_url(url: str) -> str:
    """Map the configured URL to the SQLAlchemy driver we ship."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def make_engine(url: str, *, synchronous: str = "FULL") -> Engine:
    """Create an engine; for SQLite, make the folder and turn on WAL and a busy timeout.

    SQLite runs with `synchronous=FULL` so a committed batch survives power loss, which
    is what lets us acknowledge the messages in it to the broker.
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
            cur.close()

        return engine
    return create_engine(sqlalchemy_url(url), pool_pre_ping=True, pool_size=5,
                         max_overflow=5)
