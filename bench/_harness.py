"""A private Mosquitto and an in-process gateway (ingest, detectors, alerting) for benches."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.broker import PrivateMosquitto  # noqa: E402
from gateway.runtime import Runtime, load_runtime, start_service, stop_service  # noqa: E402
from tests.homes import write_config  # noqa: E402


@contextmanager
def running_gateway(registry: dict[str, Any], client_id: str,
                    **config: Any) -> Iterator[tuple[Runtime, PrivateMosquitto]]:
    """Start broker and gateway in a temp folder; stop and remove everything after."""
    work = Path(tempfile.mkdtemp(prefix="tillsyn-bench-"))
    broker = PrivateMosquitto(work / "mosquitto")
    broker.start()
    rt = load_runtime(write_config(work, broker.url, f"sqlite:///{work}/t.db", reg=registry,
                                   client_id=client_id, **config))
    start_service(rt)
    try:
        deadline = time.monotonic() + 60
        while not (rt.ingest and rt.ingest.connected):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not connect to {broker.url} in 60 s")
            time.sleep(0.05)
        yield rt, broker
    finally:
        stop_service(rt)
        rt.store.close()
        broker.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def bench_database(kind: str, work: Path) -> tuple[str, Any]:
    """A database for a bench: a SQLite file in `work`, or a private PostgreSQL server
    (returned too, so the caller can clean it up; None for SQLite)."""
    if kind == "postgresql":
        from tests.support import Postgres

        pg = Postgres()
        pg.start()
        return pg.url, pg
    return f"sqlite:///{work}/bench.db", None
