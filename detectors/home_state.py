"""The latest known state of one home, kept up to date from observations (no I/O).

A digital night check looks at this state: the newest bed reading per bed sensor, the
newest state of every exterior door, the newest movement per motion sensor, the newest
sign of presence from any device inside (movement, an indoor door or cupboard, the bed),
the home's occupancy (at home, away, a planned absence) and when each device was last heard
from.
"""

from __future__ import annotations

from datetime import datetime

from detectors.model import Observation, ResidentSettings
from detectors.occupancy import Occupancy
from detectors.rules import DeviceOffline
from detectors.signals import Signal
from detectors.supervision import HomeState, Reading


class HomeTracker:
    """Follows the observations of one resident and answers `state()` at any moment.

    A bed or door reading's time is when its current state began; liveness comes from the
    device's last-seen time, not from the reading.
    """

    def __init__(self, settings: ResidentSettings) -> None:
        self.s = settings
        self.bed: dict[str, Observation] = {}
        self.doors: dict[str, Observation] = {}
        self.motion: dict[str, Observation] = {}  # newest `true` per motion sensor
        self.inside: Observation | None = None  # newest sign of presence inside, any device
        self.passage: datetime | None = None  # newest passage through the exterior door

    def observe(self, obs: Observation, sig: Signal) -> None:
        """Keep the newest reading of each kind the checks use."""
        dev = self.s.devices.get(obs.device_id)
        if dev is None:
            return
        if obs.kind == "bed":
            self._changed(self.bed, obs)
        elif obs.kind == "contact" and dev.exterior:
            self._changed(self.doors, obs)
        elif obs.kind == "motion" and obs.value is True:
            self._newest(self.motion, obs)
        if sig.inside and (self.inside is None or obs.ts >= self.inside.ts):
            self.inside = obs
        if sig.passage and (self.passage is None or obs.ts > self.passage):
            self.passage = obs.ts

    @classmethod
    def _changed(cls, table: dict[str, Observation], obs: Observation) -> None:
        """Keep when the current state began: a repeated value (a periodic report) does
        not restart "out of bed for 39 min"."""
        old = table.get(obs.device_id)
        if old is None or old.value != obs.value:
            cls._newest(table, obs)

    @staticmethod
    def _newest(table: dict[str, Observation], obs: Observation) -> None:
        old = table.get(obs.device_id)
        if old is None or obs.ts >= old.ts:
            table[obs.device_id] = obs

    def state(self, links: DeviceOffline, occupancy: Occupancy) -> HomeState:
        """The home as known now; `links` gives last-seen times."""

        def reading(obs: Observation) -> Reading:
            return self._reading(obs.device_id, obs.kind, obs.value, obs.ts, links, obs.room)

        return HomeState(
            bed=[reading(o) for o in self.bed.values()],
            exterior_doors=[reading(o) for o in self.doors.values()],
            motion=[reading(o) for o in self.motion.values()],
            links=[self._reading(d, "link", None, link.last_seen, links,
                                 self.s.devices[d].room)
                   for d, link in links.links.items()],
            inside=reading(self.inside) if self.inside is not None else None,
            occupancy=occupancy,
            passage=self.passage,
        )

    def _reading(self, device_id: str, kind: str, value: object, ts: datetime,
                 links: DeviceOffline, room: str | None) -> Reading:
        link = links.links.get(device_id)
        info = self.s.devices[device_id]
        last_seen = link.last_seen if link is not None else ts
        offline = bool(link is not None and link.offline and link.reason != "silent")
        return Reading(device_id, kind, value, ts, max(last_seen, ts), info.report_interval_s,
                       room, offline)
