"""The latest known state of one home, kept up to date from observations (no I/O).

A digital night check looks at this state: the newest bed reading per bed sensor, the
newest state of every exterior door, the newest movement per motion sensor, whether the
position alarm is outside the home area, and when each device was last heard from.
"""

from __future__ import annotations

from datetime import datetime

from detectors.model import Observation, ResidentSettings
from detectors.rules import DeviceOffline
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
        self.has_position = any("geofence" in d.kinds for d in settings.devices.values())

    def observe(self, obs: Observation) -> None:
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

    def state(self, links: DeviceOffline, away: bool) -> HomeState:
        """The home as known now; `links` gives last-seen times, `away` the geofence."""

        def reading(obs: Observation) -> Reading:
            return self._reading(obs.device_id, obs.kind, obs.value, obs.ts, links, obs.room)

        return HomeState(
            bed=[reading(o) for o in self.bed.values()],
            exterior_doors=[reading(o) for o in self.doors.values()],
            motion=[reading(o) for o in self.motion.values()],
            links=[self._reading(d, "link", None, link.last_seen, links,
                                 self.s.devices[d].room)
                   for d, link in links.links.items()],
            away=away if self.has_position else None,
        )

    def _reading(self, device_id: str, kind: str, value: object, ts: datetime,
                 links: DeviceOffline, room: str | None) -> Reading:
        link = links.links.get(device_id)
        info = self.s.devices[device_id]
        last_seen = link.last_seen if link is not None else ts
        offline = bool(link is not None and link.offline and link.reason != "silent")
        return Reading(device_id, kind, value, ts, max(last_seen, ts), info.report_interval_s,
                       room, offline)
