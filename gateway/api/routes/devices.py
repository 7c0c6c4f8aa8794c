"""Device link status and dead letters (administrators)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.api.deps import CurrentStaff, RuntimeDep, require_admin

router = APIRouter(prefix="/api", tags=["devices"])


@router.get("/devices/status")
def device_status(staff: CurrentStaff, rt: RuntimeDep) -> list[dict[str, Any]]:
    """Last seen, battery, link quality and availability per device."""
    require_admin(staff, "see device status")
    return rt.store.device_status()


@router.get("/dead-letters")
def dead_letters(staff: CurrentStaff, rt: RuntimeDep, limit: int = 100) -> list[dict[str, Any]]:
    """Newest undecodable messages with their reasons (payload as text, capped)."""
    require_admin(staff, "see dead letters")
    rows = rt.store.dead_letters(max(1, min(limit, 1000)))
    for row in rows:
        row["payload"] = bytes(row["payload"]).decode("utf-8", errors="replace")
    return rows
