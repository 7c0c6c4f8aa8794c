"""Observation kinds (docs/detectors.md), in a module of their own: the ingest receiver
process decodes with them and starts without importing the configuration models."""

from __future__ import annotations

from typing import Literal

ObservationKind = Literal[
    "motion", "contact", "bed", "lock", "position", "geofence", "sos", "fall",
    "heartbeat", "battery", "availability",
]
OBSERVATION_KINDS: tuple[str, ...] = ObservationKind.__args__  # type: ignore[attr-defined]
# Technical kinds about the device itself, not the person: stored without consent.
TECHNICAL_KINDS = frozenset({"heartbeat", "battery", "availability"})
