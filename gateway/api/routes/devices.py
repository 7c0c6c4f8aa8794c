"""Device link status and dead letters (administrators)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.api.deps import RuntimeDep
from gateway.api.policy import Authorized, unit_scope

router = APIRouter(prefix="/api", tags=["devices"])


@router.get("/devices/status")
def device_status(staff: Authorized, rt: RuntimeDep) -> list[dict[str, Any]]:
    """Last seen, battery, link quality and availability per device (of the caller's
    unit's residents, for an administrator bound to a unit)."""
    units = unit_scope(staff)
    rows = rt.store.device_status()
    if units is not None:
        mine = {r.id for r in rt.registry.residents if r.unit in units}
        rows = [r for r in rows if r.get("resident_id") in mine]
    rt.store.audit_shown(staff.id, "read_device_status",
                         (r["resident_id"] for r in rows if r.get("resident_id")),
                         f"n={len(rows)}")
    return rows


@router.get("/dead-letters")
def dead_letters(staff: Authorized, rt: RuntimeDep, limit: int = 100) -> list[dict[str, Any]]:
    """Newest undecodable messages with their reasons (payload as text, capped)."""
    rows = rt.store.dead_letters(max(1, min(limit, 1000)))
    for row in rows:
        row["payload"] = bytes(row["payload"]).decode("utf-8", errors="replace")
    return rows
