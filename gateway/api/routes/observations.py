"""Resident observations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from gateway.api.deps import RuntimeDep
from gateway.api.policy import Authorized, resident_in_scope
from gateway.api.schemas import ObservationPublic
from gateway.config.registry import OBSERVATION_KINDS
from gateway.storage.store import to_ms

router = APIRouter(prefix="/api/residents", tags=["residents"])


def _ms(value: datetime | None) -> int | None:
    return None if value is None else to_ms(value)


@router.get("/{resident_id}/observations", response_model=list[ObservationPublic])
def list_observations(
    resident_id: str,
    staff: Authorized,
    rt: RuntimeDep,
    since: Annotated[datetime | None, Query(description="RFC 3339, inclusive")] = None,
    until: Annotated[datetime | None, Query(description="RFC 3339, exclusive")] = None,
    kind: Annotated[str | None, Query(pattern="^(" + "|".join(OBSERVATION_KINDS) + ")$")] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> list[dict[str, Any]]:
    """Observations of one resident in a time range (audited)."""
    resident = resident_in_scope(resident_id, staff, rt)
    rows = rt.store.observations(resident.id, _ms(since), _ms(until), kind, limit)
    rt.store.audit(staff.id, "read_observations", resident.id,
                   f"since={since} until={until} kind={kind} n={len(rows)}")
    return [ObservationPublic.from_row(r).model_dump() for r in rows]
