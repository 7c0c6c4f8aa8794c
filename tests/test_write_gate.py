"""SQLite's write gate and WAL checkpointer (gateway/storage/engine.py) on real files."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from gateway.storage.engine import WalCheckpointer, make_engine, write_gate


def _table(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT, pad BLOB)"))
    engine.dispose()


def test_concurrent_writers_all_commit_and_the_gate_is_free_after(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    _table(url)
    engine = make_engine(url)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for i in range(150):
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO t (who, pad) VALUES (:w, :p)"),
                                 {"w": name, "p": b"x" * 200})
                    if i % 10 == 0:  # a read inside the transaction, then more writing
                        conn.execute(text("SELECT count(*) FROM t")).one()
                        conn.execute(text("UPDATE t SET pad = :p WHERE who = :w"),
                                     {"w": name, "p": b"y"})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 6 * 150
    gate = write_gate(engine)
    assert gate is not None
    assert gate.acquire(blocking=False), "a finished transaction still holds the gate"
    gate.release()
    engine.dispose()


def test_a_rolled_back_transaction_frees_the_gate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    _table(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (id, who) VALUES (1, 'a')"))

    def failing() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (id, who) VALUES (2, 'b')"))
            conn.execute(text("INSERT INTO t (id, who) VALUES (1, 'again')"))

    with pytest.raises(IntegrityError):
        failing()
    done = threading.Event()

    def other() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (id, who) VALUES (3, 'c')"))
        done.set()

    threading.Thread(target=other).start()
    assert done.wait(10), "another thread could not write after a rollback"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM t ORDER BY id")).scalars().all() == [1, 3]
    engine.dispose()


def _write_megabytes(path: Path, mb: int, *, checkpointing: bool) -> int:
    """Write `mb` megabytes; the log's size at the end (before closing deletes it)."""
    url = f"sqlite:///{path}"
    engine = make_engine(url, autocheckpoint=False)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, pad BLOB)"))
    checkpointer = WalCheckpointer(engine, every_s=0.02) if checkpointing else None
    if checkpointer is not None:
        checkpointer.start()
    chunk = b"z" * 4000
    for _ in range(mb * 5):  # 5 transactions of 50 rows (200 kB) per megabyte
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (pad) VALUES (:p)"), [{"p": chunk}] * 50)
    wal = Path(f"{path}-wal").stat().st_size
    if checkpointer is not None:
        assert checkpointer.rounds > 0
        checkpointer.stop()
    engine.dispose()
    return wal


def test_checkpointer_keeps_the_log_small_and_copies_everything(tmp_path: Path) -> None:
    without = tmp_path / "without.db"
    with_ = tmp_path / "with.db"
    wal_without = _write_megabytes(without, 30, checkpointing=False)
    wal_with = _write_megabytes(with_, 30, checkpointing=True)
    # No automatic checkpoints: the log holds all 30 MB. With the checkpointer it is
    # reused from the start again and again.
    assert wal_without > 30_000_000
    assert wal_with < wal_without / 4, (wal_with, wal_without)
    # Nothing was lost on the way.
    conn = sqlite3.connect(with_)
    try:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 30 * 5 * 50
    finally:
        conn.close()
