"""Home occupancy of one resident: `home | away | unknown` (pure, event time).

Evidence, strongest first:
- a planned absence (hospital stay, family visit, short-term care) covering the moment:
  away, source `planned`;
- the position alarm's home geofence: `leave` is away, `enter` is home, until the other;
- the exterior door (its contact, a motion sensor at the door, the door lock) and movement
  inside:
  - **leaving**: a passage through the door, then no movement inside for
    `away_after_minutes` (default 10; movement in the first 30 s after the passage is the
    person walking out), while nobody is in bed and no staff visit is going on: away from
    the passage on. The door closing behind a visiting nurse is not the resident leaving;
  - **coming back**: a passage, then movement inside within 5 minutes; or, with no
    passage seen, a burst of movement (3 readings from at least 2 different sensors within
    10 minutes). A single stray pulse, or one sensor pulsing on its own, does not bring
    anyone home: a real CASAS home's passive infrared sensors fired 15 times on their own
    during its resident's 3.5-day absence, never two sensors within 10 minutes;
  - at start, the first movement inside is home.

Without an exterior door sensor and without a position alarm the devices cannot tell
away from asleep: the state stays `unknown` (apart from planned absences), and every rule
treats unknown as possibly at home. Changes are returned as `OccupancyChange` so the gateway
can store them (the morning summary reads the state at the start of each night, and a
restart continues from the stored state).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from detectors.model import Observation, PlannedAbsence, ResidentSettings
from detectors.signals import Signal

State = Literal["home", "away", "unknown"]
SETTLE = timedelta(seconds=30)  # movement inside right after a passage: walking out
RETURN_WINDOW = timedelta(minutes=5)  # a passage, then movement inside: back home
BURST_WINDOW = timedelta(minutes=10)
BURST_READINGS = 3
BURST_SENSORS = 2
AFTER_VISIT = timedelta(minutes=2)  # passages this soon after a staff visit are the staff's


@dataclass(frozen=True, slots=True)
class OccupancyChange:
    """The occupancy state changed (or was restored) at `since`."""

    resident_id: str
    state: State
    since: datetime
    source: str  # movement, door, geofence, planned, start


@dataclass(frozen=True, slots=True)
class Occupancy:
    """The state at one moment, as the rules and checks read it."""

    state: State
    since: datetime | None
    source: str | None  # movement, door, geofence, planned; None when unknown
    planned: PlannedAbsence | None = None
    can_tell: bool = True  # the devices can tell away (an exterior door or a geofence)

    @property
    def away(self) -> bool:
        """Away by any evidence."""
        return self.state == "away"

    @property
    def reason(self) -> str | None:
        """Why the state is unknown, when the devices are the reason."""
        if self.state == "unknown" and not self.can_tell:
            return "no exterior door sensor or position alarm: away cannot be told from asleep"
        if self.state == "unknown":
            return "nothing seen yet that tells (no movement inside or door since the start)"
        return None


class OccupancyTracker:
    """Follows one resident's occupancy (see the module docstring)."""

    def __init__(self, settings: ResidentSettings) -> None:
        self.s = settings
        devices = settings.devices.values()
        self.has_geofence = any("geofence" in d.kinds for d in devices)
        self.has_door = any(d.exterior and d.kinds & {"contact", "motion", "lock"}
                            for d in devices)
        self.can_tell = self.has_geofence or self.has_door
        self.state: State = "unknown"
        self.since: datetime | None = None
        self.source: str | None = None
        self.geo_away: bool | None = None
        self.last_passage: datetime | None = None
        self.last_inside: datetime | None = None
        self.recent: deque[tuple[datetime, str]] = deque()
        self.planned: list[PlannedAbsence] = []
        self.changes: list[OccupancyChange] = []

    # --- evidence -------------------------------------------------------------------------

    def restore(self, state: State, since: datetime, source: str) -> None:
        """Continue from a stored state (at a restart, before the stored observations since
        then are replayed)."""
        if state != "unknown" and self.can_tell:
            self.state, self.since, self.source = state, since, source
            if source == "geofence":
                self.geo_away = state == "away"

    def set_planned(self, absences: list[PlannedAbsence]) -> None:
        """The resident's planned absences (replaces the earlier list)."""
        self.planned = sorted(absences, key=lambda a: a.start)

    def observe(self, obs: Observation, sig: Signal, *, staff_visit: bool,
                last_visit_end: datetime | None) -> None:
        """Take one observation's evidence."""
        ts = obs.ts
        if obs.kind == "geofence" and not self.has_geofence:
            self.has_geofence = self.can_tell = True  # a position alarm reports: it can tell
        if obs.kind == "geofence" and isinstance(obs.value, dict) and \
                obs.value.get("region") in (self.s.home_region, None):
            if obs.value.get("event") == "leave":
                self.geo_away = True
                self._set("away", ts, "geofence")
            elif obs.value.get("event") == "enter":
                self.geo_away = False
                self._set("home", ts, "geofence")
            return
        if sig.passage:
            if staff_visit or (last_visit_end is not None and ts - last_visit_end
                               <= AFTER_VISIT):
                return  # the staff coming and going
            self.last_passage = ts
            return
        if not sig.inside:
            return
        self.last_inside = ts if self.last_inside is None else max(self.last_inside, ts)
        self.recent.append((ts, obs.device_id))
        while self.recent and ts - self.recent[0][0] > BURST_WINDOW:
            self.recent.popleft()
        if self.geo_away:
            return  # the position alarm is out: movement at home is someone else
        if self.state == "unknown" and self.can_tell:
            self._set("home", ts, "movement")
        elif self.state == "away":
            returned = self.last_passage is not None and self.since is not None and \
                self.last_passage >= self.since and \
                timedelta(0) <= ts - self.last_passage <= RETURN_WINDOW
            burst = len(self.recent) >= BURST_READINGS and \
                len({d for _, d in self.recent}) >= BURST_SENSORS
            if returned or burst:
                self._set("home", ts, "door" if returned else "movement")

    def tick(self, now: datetime, *, in_bed: bool | None, staff_visit: bool) -> None:
        """Leaving is known only once the silence after the passage has lasted."""
        if self.state == "away" or self.last_passage is None or self.geo_away \
                or in_bed or staff_visit or not self.has_door:
            return
        passage = self.last_passage
        if self.last_inside is not None and self.last_inside > passage + SETTLE:
            return
        if self.since is not None and passage < self.since:
            return  # a passage from before the current state began
        if now - passage >= timedelta(minutes=self.s.away_after_minutes):
            self._set("away", passage, "door")

    def _set(self, state: State, ts: datetime, source: str) -> None:
        if state == self.state and (source == self.source or state == "home"):
            return
        self.state, self.since, self.source = state, ts, source
        self.changes.append(OccupancyChange(self.s.resident_id, state, ts, source))

    # --- reading --------------------------------------------------------------------------

    def at(self, ts: datetime) -> Occupancy:
        """The state at ts: a planned absence first, then the evidence."""
        planned = next((a for a in self.planned if a.covers(ts)), None)
        if planned is not None:
            return Occupancy("away", planned.start, "planned", planned, self.can_tell)
        if not self.can_tell:
            return Occupancy("unknown", None, None, None, False)
        return Occupancy(self.state, self.since, self.source, None, True)

    def take_changes(self) -> list[OccupancyChange]:
        """State changes since the last call."""
        out, self.changes = self.changes, []
        return out
