"""One worker of several (scale.enabled, docs/scale.md): wires ingest slots, resident
partitions, the database feed and the lease coordinator around a runtime."""

from __future__ import annotations

import logging
import os
import socket
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.ingest.service import IngestService
from gateway.scale.coordinator import Coordinator, parse
from gateway.scale.feed import DatabaseFeed
from gateway.scale.leases import Leases

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)


def partition_of(resident_id: str, partitions: int) -> int:
    """The partition a resident's detectors belong to (stable across workers and restarts)."""
    return zlib.crc32(resident_id.encode("utf-8")) % partitions


def default_worker_id() -> str:
    """Host name and process id: unique per process (in Kubernetes, the pod name)."""
    return f"{socket.gethostname()}-{os.getpid()}"[:100]


@dataclass
class Worker:
    """What this worker holds and runs."""

    worker_id: str
    slots: dict[int, IngestService] = field(default_factory=dict)
    partitions: set[int] = field(default_factory=set)
    feed: DatabaseFeed | None = None
    coordinator: Coordinator | None = None

    def ingests(self) -> list[IngestService]:
        """The ingest services of the slots held now."""
        return list(self.slots.values())


def start_worker(rt: Runtime) -> Worker:
    """Start alerting and detectors owning nobody yet, the database feed and the lease
    coordinator, which then takes slots and partitions."""
    from gateway.runtime import (
        build_alerting,
        build_ingest,
        start_jobs,
        start_timeseries,
        stop_jobs,
    )

    cfg = rt.config.scale
    worker = Worker(cfg.worker_id or default_worker_id())
    rt.worker = worker
    build_alerting(rt)
    assert rt.detectors is not None and rt.publisher is not None and rt.alerts is not None
    assert rt.journal is not None
    rt.publisher.start()
    if rt.push is not None:
        rt.push.start()
    rt.detectors.start(rebuild=False)
    sink = start_timeseries(rt)
    journal = rt.journal
    feed = DatabaseFeed(rt.store, rt.detectors, reorder_ms=cfg.reorder_ms,
                        on_consent=rt.set_consent,
                        wakes=[(rt.alerts.last_event_id, rt.alerts.broadcast.notify),
                               (journal.last_id, journal.broadcast.notify)])
    feed.start()
    worker.feed = feed
    members = {n: {r.id for r in rt.registry.residents
                   if partition_of(r.id, cfg.partitions) == n} for n in range(cfg.partitions)}

    def take(name: str) -> None:
        kind, n = parse(name)
        if kind == "slot":
            ingest = build_ingest(rt, client_id=f"{rt.config.mqtt.client_id}-{n}")
            ingest.fence = (name, worker.worker_id)
            if sink is not None:
                ingest.on_committed = lambda obs, status: sink.offer(obs)
            ingest.start()
            worker.slots[n] = ingest
        else:
            feed.adopt(members[n])
            worker.partitions.add(n)
            if n == 0:  # the site-wide jobs run once, with partition 0
                start_jobs(rt)

    def give(name: str) -> None:
        kind, n = parse(name)
        if kind == "slot":
            ingest = worker.slots.pop(n, None)
            if ingest is not None:
                ingest.stop()
        else:
            worker.partitions.discard(n)
            feed.drop(members[n])
            if n == 0:
                stop_jobs(rt)

    api = f"{rt.config.api.host}:{rt.config.api.port}"
    worker.coordinator = Coordinator(
        Leases(rt.store, worker.worker_id, int(cfg.lease_seconds * 1000)),
        slots=cfg.slots, partitions=cfg.partitions, lease_s=cfg.lease_seconds,
        take=take, give=give, api=api)
    worker.coordinator.start()
    log.info("worker %s started: %d slots and %d partitions shared with the others",
             worker.worker_id, cfg.slots, cfg.partitions)
    return worker


def stop_worker(rt: Runtime, worker: Worker) -> None:
    """Give everything back (the others take over at once), then stop."""
    if worker.coordinator is not None:
        worker.coordinator.stop()
    if worker.feed is not None:
        worker.feed.stop()
