"""/healthz and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gateway.api.deps import RuntimeDep
from gateway.api.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz(rt: RuntimeDep, response: Response) -> Health:
    """Broker connected, database reachable, ingest lag; 503 when degraded (also while
    another client seems to be using the gateway's client id, and while an alarm centre
    has not accepted an alert for a minute or its heartbeat fails). With several
    workers: this worker's slots and partitions; a worker holding no slot is healthy (it
    serves the API and waits for a share)."""
    ingests = rt.ingests()
    running = rt.worker is not None or rt.ingest is not None
    connected = all(i.connected for i in ingests) and (bool(ingests) or rt.worker is not None)
    db = rt.store.ping() and all(i.db_ok for i in ingests)
    lag = max((i.last_lag_s for i in ingests), default=0.0)
    depth = sum(i.queue_depth() for i in ingests)
    takeover = any(i.takeover_suspected() for i in ingests)
    refused = sum(i.subscriptions_refused for i in ingests)
    scaip, scaip_problems = (None, []) if rt.scaip is None else rt.scaip.health()
    ok = db and (not running or connected) and not takeover and not refused \
        and not scaip_problems
    if not ok:
        response.status_code = 503
    worker = rt.worker
    return Health(status="ok" if ok else "degraded", mqtt_connected=connected, database=db,
                  ingest_lag_seconds=float(lag), queue_depth=depth,
                  devices_registered=sum(len(r.devices) for r in rt.registry.residents),
                  mqtt_sessions_lost=sum(i.sessions_lost for i in ingests),
                  mqtt_takeover_suspected=takeover, mqtt_subscriptions_refused=refused,
                  timeseries=None if rt.timeseries is None else rt.timeseries.up,
                  detectors_rebuilding=rt.detectors is not None and rt.detectors.rebuilding,
                  scaip=scaip, scaip_problems=scaip_problems,
                  worker=None if worker is None else worker.worker_id,
                  slots=None if worker is None else sorted(worker.slots),
                  partitions=None if worker is None else sorted(worker.partitions))


@router.get("/metrics", response_class=Response)
def metrics(rt: RuntimeDep) -> Response:
    """Prometheus text format."""
    return Response(rt.metrics.render(), media_type="text/plain; version=0.0.4")
