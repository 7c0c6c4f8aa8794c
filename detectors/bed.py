"""In bed or not (pure): from a bed sensor, or from a motion sensor mounted over the bed.

Homes sensed the CASAS way have no pressure mat: a passive infrared sensor over the bed
sees the sleeper turn. There, movement over the bed means in bed, and movement (or an
indoor door or cupboard) outside the bed's room means out of bed; movement elsewhere in
the bedroom changes nothing (it is seen both from bed and beside it). The derived state is
fed to the rules as `bed` observations of the bed sensor, so every rule and check reads
one kind of bed evidence. A real bed sensor, where there is one, is the only source.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from detectors.model import Observation, ResidentSettings
from detectors.signals import Signal


class BedState:
    """The bed of one resident."""

    def __init__(self, settings: ResidentSettings) -> None:
        devices = settings.devices
        self.mats = {d for d, info in devices.items() if "bed" in info.kinds}
        self.over_bed = sorted(d for d, info in devices.items()
                               if info.bed and "motion" in info.kinds)
        self.room = settings.bed_room
        self.in_bed: bool | None = None
        self.since: datetime | None = None

    @property
    def derived(self) -> bool:
        """Whether the state is worked out from motion (no bed sensor)."""
        return bool(self.over_bed) and not self.mats

    def derive(self, obs: Observation, sig: Signal) -> Observation | None:
        """A `bed` observation when motion changes the derived state (else None)."""
        if not self.derived:
            return None
        if obs.kind == "motion" and obs.value is True and obs.device_id in self.over_bed:
            value = True
        elif (sig.inside and sig.room != self.room) or sig.passage:
            value = False
        else:
            return None
        if self.in_bed is value or (value is False and self.in_bed is None):
            return None
        return replace(obs, device_id=self.over_bed[0], kind="bed", value=value,
                       room=self.room)

    def update(self, obs: Observation) -> None:
        """Follow bed observations (a repeated value changes nothing)."""
        if obs.kind == "bed" and isinstance(obs.value, bool) and self.in_bed is not obs.value:
            self.in_bed, self.since = obs.value, obs.ts
