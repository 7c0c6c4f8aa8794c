"""Pydantic model of a device profile (shape of a Z2M definition: match, decoders, exposes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from gateway.config.base import StrictModel
from gateway.config.registry import OBSERVATION_KINDS


class Channel(StrictModel):
    """One topic of a device, relative to its source, and the decoder for it."""

    suffix: str = Field("", description='Appended to the device source, e.g. "/availability"')
    decoder: str = Field(..., description="Name of a decoder in gateway.profiles.decoders")
    options: dict[str, Any] = Field(default_factory=dict, description="Decoder parameters")

    @field_validator("suffix")
    @classmethod
    def _suffix(cls, value: str) -> str:
        if value and not value.startswith("/"):
            raise ValueError("must be empty or start with /")
        if "+" in value or "#" in value:
            raise ValueError("must not contain MQTT wildcards")
        return value


class DeviceProfile(StrictModel):
    """A device family: its topics, decoders, report interval and battery handling."""

    id: str = Field(..., pattern=r"^[a-z0-9]+\.[a-z0-9._-]+$")
    description: str = Field(..., min_length=1)
    power: Literal["battery", "mains"] = "battery"
    report_interval_seconds: int = Field(
        ..., ge=10, description="Longest normal silence; after it the device counts as offline")
    kinds: list[str] = Field(..., min_length=1, description="Observation kinds it can produce")
    channels: list[Channel] = Field(..., min_length=1)
    source_pattern: str | None = Field(
        None, description="Regular expression a registry source must match")

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        for kind in value:
            if kind not in OBSERVATION_KINDS:
                raise ValueError(f"unknown observation kind {kind!r}")
        return value


class ProfileFile(StrictModel):
    """One YAML file in device_profiles/: a vendor or family."""

    family: str = Field(..., min_length=1)
    reference: str = Field("", description="Where the format is documented")
    profiles: list[DeviceProfile] = Field(..., min_length=1)
