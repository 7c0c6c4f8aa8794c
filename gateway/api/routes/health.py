"""/healthz and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gateway.api.deps import RuntimeDep
from gateway.api.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz(rt: RuntimeDep, response: Response) -> Health:
    """Broker connected, database reachable, ingest lag; 503 when degraded."""
    ingest = rt.ingest
    connected = bool(ingest and ingest.connected)
    db = rt.store.ping() and (ingest is None or ingest.db_ok)
    lag = ingest.last_lag_s if ingest else 0.0
    depth = ingest.queue_depth() if ingest else 0
    ok = db and (ingest is None or connected)
    if not ok:
        response.status_code = 503
    return Health(status="ok" if ok else "degraded", mqtt_connected=connected, database=db,
                  ingest_lag_seconds=float(lag), queue_depth=depth,
                  devices_registered=sum(len(r.devices) for r in rt.registry.residents),
                  timeseries=None if rt.timeseries is None else rt.timeseries.up)


@router.get("/metrics", response_class=Response)
def metrics(rt: RuntimeDep) -> Response:
    """Prometheus text format."""
    return Response(rt.metrics.render(), media_type="text/plain; version=0.0.4")
