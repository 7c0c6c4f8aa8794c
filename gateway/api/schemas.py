"""Response schemas (one per direction, FastAPI template style)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from gateway.storage.store import from_ms


class ObservationPublic(BaseModel):
    """An observation as the API returns it."""

    resident_id: str
    device_id: str
    kind: str
    value: Any
    ts: datetime
    received_at: datetime
    room: str | None
    clock_override: bool

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ObservationPublic:
        """Build from a database row."""
        return cls(resident_id=row["resident_id"], device_id=row["device_id"], kind=row["kind"],
                   value=row["value"], ts=from_ms(row["ts_ms"]),
                   received_at=from_ms(row["received_ms"]),
                   room=row["room"], clock_override=bool(row["clock_override"]))


class Health(BaseModel):
    """Liveness and readiness."""

    status: str
    mqtt_connected: bool
    database: bool
    ingest_lag_seconds: float
    queue_depth: int
    devices_registered: int
    mqtt_sessions_lost: int = Field(
        0, description="Reconnects since start that found no persistent session at the broker: "
                       "messages published meanwhile may be lost (see the log); does not make "
                       "the gateway degraded, it is a past event")
    mqtt_takeover_suspected: bool = Field(
        False, description="Another client seems to be using the gateway's client id: the "
                           "broker handed our session over (MQTT 5), or closed our connection "
                           "3 times within 10 minutes. Makes the gateway degraded")
    timeseries: bool | None = Field(
        None, description="Time-series export working (null: not configured or no write yet); "
                          "does not make the gateway degraded, the database is the record")
    mqtt_subscriptions_refused: int = Field(
        0, description="Device topic subscriptions the broker refused on the current "
                       "connection (its ACL): messages on them never arrive. Makes the "
                       "gateway degraded")
    detectors_rebuilding: bool = Field(
        False, description="The timed rules are still being rebuilt from the stored "
                           "observations after a start (sos and fall are judged meanwhile); "
                           "does not make the gateway degraded")
    scaip: dict[str, Any] | None = Field(
        None, description="Alarm receiving centres (scaip.enabled): per centre, requests "
                          "not yet accepted and the age of the oldest, seconds since the "
                          "last accepted heartbeat, whether heartbeats are withheld")
    scaip_problems: list[str] = Field(
        default_factory=list, description="Why the hand-off to a centre makes the gateway "
                                          "degraded: a request not accepted for a minute, "
                                          "a failed heartbeat")
    worker: str | None = Field(None, description="This worker's id (scale.enabled)")
    slots: list[int] | None = Field(None, description="MQTT session slots held here")
    partitions: list[int] | None = Field(None, description="Resident partitions held here")
