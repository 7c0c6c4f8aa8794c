"""With several workers, what one worker commits must reach the others: the detectors of a
resident run in the worker holding the resident's partition, whichever worker stored the
message. This feed reads the database instead of taking batches from local ingest:

- new observations by id (the ingest commit lock makes ids visible in order, see
  Store.commit_batch), held `reorder_ms` and then fed in event-time order, because the
  broker spreads one device's messages over the sessions and they may commit out of order;
- device last-seen times for link supervision;
- consent changes made through another worker's API, applied to this worker's ingest;
- new alert events and journal entries, to wake this worker's live streams (SSE).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from gateway.alerting.runner import DetectorRunner
from gateway.storage.schema import consent_changes, device_status, observations
from gateway.storage.store import Store

log = logging.getLogger(__name__)

Wake = tuple[Callable[[], int], Callable[[], None]]  # (newest id now, notify)


class DatabaseFeed:
    """Polls the shared database for one worker."""

    def __init__(self, store: Store, runner: DetectorRunner, *, reorder_ms: int,
                 poll_s: float = 0.1, batch: int = 5000,
                 on_consent: Callable[[str, list[str]], None] | None = None,
                 wakes: list[Wake] | None = None) -> None:
        self.store = store
        self.runner = runner
        self.reorder_s = reorder_ms / 1000
        self.poll_s = poll_s
        self.batch = batch
        self.on_consent = on_consent
        self.wakes = list(wakes or [])
        self._newest = [0] * len(self.wakes)  # per wake: the newest id seen
        self.cursor = 0  # highest observation id read
        self._pending: list[tuple[float, dict[str, Any]]] = []  # (read at, row)
        self._seen_ms = 0
        self._consent_id = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_slow = 0.0
        self.fed = 0

    def start(self) -> None:
        """Begin after what is stored now (adopting a partition rebuilds from the database)."""
        with self.store.engine.connect() as conn:
            self.cursor = int(conn.execute(select(func.max(observations.c.id))).scalar() or 0)
            self._seen_ms = int(conn.execute(
                select(func.max(device_status.c.last_seen_ms))).scalar() or 0)
            self._consent_id = int(conn.execute(
                select(func.max(consent_changes.c.id))).scalar() or 0)
        self._newest = [probe() for probe, _ in self.wakes]
        self._thread = threading.Thread(target=self._run, name="tillsyn-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # --- ownership ------------------------------------------------------------------------

    def adopt(self, residents: set[str]) -> None:
        """Run these residents' detectors here from now: rebuilt from what is stored up to
        the feed's cursor, then fed from the cursor on (nothing twice, nothing missed)."""
        with self._lock:
            self._pending = [(t, r) for t, r in self._pending if r["resident_id"] not in residents]
            self.runner.adopt(residents, upto_id=self.cursor)

    def drop(self, residents: set[str]) -> None:
        """Stop running these residents' detectors here."""
        with self._lock:
            self.runner.drop(residents)

    # --- polling --------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                with self._lock:
                    self.poll()
            except Exception as exc:  # the database may be away: go on when it is back
                log.error("database feed failed, retrying: %s: %s", type(exc).__name__,
                          str(exc).splitlines()[0][:200] if str(exc) else "")
                self._stop.wait(1.0)

    def poll(self) -> None:
        """One round: read new rows, feed those past the reorder window, and every second
        the slower probes."""
        now = time.monotonic()
        with self.store.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                select(observations).where(observations.c.id > self.cursor)
                .order_by(observations.c.id).limit(self.batch))]
        if rows:
            self.cursor = int(rows[-1]["id"])
            self._pending.extend((now, r) for r in rows)
        due = [r for t, r in self._pending if now - t >= self.reorder_s]
        if due:
            self._pending = [(t, r) for t, r in self._pending if now - t < self.reorder_s]
            due.sort(key=lambda r: (r["ts_ms"], r["id"]))
            self.runner.feed(due, {})
            self.fed += len(due)
        if now - self._last_slow >= 1.0:
            self._last_slow = now
            self._links()
            self._consent()
            for i, (probe, notify) in enumerate(self.wakes):
                newest = probe()
                if newest != self._newest[i]:
                    self._newest[i] = newest
                    notify()

    def _links(self) -> None:
        with self.store.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                select(device_status).where(device_status.c.last_seen_ms > self._seen_ms))]
        if rows:
            self._seen_ms = max(int(r["last_seen_ms"]) for r in rows)
            self.runner.feed([], {r["device_id"]: r for r in rows})

    def _consent(self) -> None:
        if self.on_consent is None:
            return
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(consent_changes).where(
                consent_changes.c.id > self._consent_id).order_by(consent_changes.c.id)).all()
        for r in rows:
            self._consent_id = int(r.id)
            self.on_consent(r.resident_id, list(r.kinds))
