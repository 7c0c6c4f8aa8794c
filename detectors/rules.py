"""Rule detectors (docs/detectors.md). Each decides from event time only, so a replayed or
simulated night at 100x speed raises the same alerts as a real one.

Every detector has `observe(obs, ctx)` for observations and `tick(now, ctx)` for
conditions that become true by time passing; both return decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar, Literal

from detectors.model import Decision, Observation, ResidentSettings, night_of
from detectors.occupancy import Occupancy
from detectors.rise import RiseLearner
from detectors.signals import Signal
from detectors.visits import Visit


@dataclass
class Context:
    """Shared per-resident state the detectors read (kept up to date by the engine)."""

    settings: ResidentSettings
    rise: RiseLearner = field(init=False)
    visit: Visit | None = None
    occupancy: Occupancy = field(default_factory=lambda: Occupancy("unknown", None, None))
    in_bed: bool | None = None
    last_move: datetime | None = None  # newest movement inside (not the bed itself)
    signal: Signal = field(default_factory=lambda: Signal(True, False, False, None))

    def __post_init__(self) -> None:
        self.rise = RiseLearner(self.settings)


class Detector:
    """Base: a detector for one resident."""

    kind: ClassVar[str]
    # Decides from the observation alone (no state, no clock): judged the moment an
    # observation arrives, also while the other rules are still being rebuilt.
    instant: ClassVar[bool] = False

    def __init__(self, settings: ResidentSettings) -> None:
        self.s = settings

    def observe(self, obs: Observation, ctx: Context) -> list[Decision]:
        """React to an observation."""
        return []

    def tick(self, now: datetime, ctx: Context) -> list[Decision]:
        """React to time passing."""
        return []

    def _decision(self, action: Literal["raise", "clear"], key: str, ts: datetime,
                  device_id: str | None = None, level: int | None = None,
                  **detail: object) -> Decision:
        return Decision(action, self.kind, self.s.resident_id, key, ts, dict(detail), device_id,
                        level)


class PushButton(Detector):
    """sos and fall: a `true` from the device raises (the alert layer dedups repeats)."""

    instant = True

    def observe(self, obs: Observation, ctx: Context) -> list[Decision]:
        """Raise on a true reading of this kind."""
        if obs.kind == self.kind and obs.value is True:
            return [self._decision("raise", f"{self.kind}:{obs.device_id}", obs.ts,
                                   obs.device_id, room=obs.room)]
        return []


class Sos(PushButton):
    """Alarm button pressed."""

    kind = "sos"


class Fall(PushButton):
    """Fall reported by a fall sensor or wearable."""

    kind = "fall"


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


class BedExitNoReturn(Detector):
    """Out of bed in the night window and not back within N minutes, graded by what the
    home shows since (docs/detectors.md):

    - up and moving (movement inside within the last `bed_exit_moving_minutes`): priority
      3, or no alert with `bed_exit_when_moving: none`;
    - no movement for `bed_exit_moving_minutes`: priority 2;
    - no movement for `bed_exit_still_minutes`: priority 1.

    An alert already raised is raised again at a higher priority when the person stops
    moving, never lowered. Only exits whose N minutes end inside the window are watched, and
    none from 30 minutes before the resident's usual rise time on (`detectors/rise.py`): that
    is getting up for the day. A repeated "not in bed" report is not an exit, and leaving
    the home ends the watch (the door and occupancy rules take over).
    """

    kind = "bed_exit_no_return"

    def __init__(self, settings: ResidentSettings) -> None:
        super().__init__(settings)
        self.exit: datetime | None = None
        self.device: str | None = None
        self.level: int | None = None  # highest urgency raised for this exit (1 highest)

    def limit(self) -> timedelta:
        """N minutes (default 20)."""
        return timedelta(minutes=self.s.bed_exit_no_return_minutes)

    def observe(self, obs: Observation, ctx: Context) -> list[Decision]:
        """Track bed exits and returns."""
        if ctx.occupancy.away and self.exit is not None:
            return self._end(obs.ts, obs.device_id)
        if obs.kind != "bed" or not ctx.signal.changed:
            return []
        if obs.value is False and self.exit is None:
            night = self.s.night
            if night.contains(obs.ts, self.s.tz) and \
                    night.contains(obs.ts + self.limit(), self.s.tz) and \
                    not ctx.occupancy.away and not ctx.rise.getting_up(obs.ts):
                self.exit, self.device, self.level = obs.ts, obs.device_id, None
            return []
        if obs.value is True and self.exit is not None:
            return self._end(obs.ts, obs.device_id)
        return []

    def _end(self, ts: datetime, device_id: str) -> list[Decision]:
        raised = self.level is not None
        self.exit = self.device = self.level = None
        return [self._decision("clear", self.kind, ts, device_id)] if raised else []

    def tick(self, now: datetime, ctx: Context) -> list[Decision]:
        """Raise (or raise the priority) at the event time each grade was reached."""
        if self.exit is None:
            return []
        due = self.exit + self.limit()
        if now < due:
            return []
        moved = ctx.last_move if ctx.last_move is not None and ctx.last_move > self.exit \
            else None
        anchor = moved or self.exit
        moving = timedelta(minutes=self.s.bed_exit_moving_minutes)
        still = timedelta(minutes=self.s.bed_exit_still_minutes)
        grades = [(1, max(due, anchor + still)), (2, max(due, anchor + moving))]
        if self.s.bed_exit_when_moving == "notify":
            grades.append((3, due))
        out = []
        for level, at in sorted(grades, key=lambda g: g[1]):
            if at <= now and (self.level is None or level < self.level):
                self.level = level
                out.append(self._decision(
                    "raise", self.kind, at, self.device, level,
                    out_of_bed_since=self.exit.isoformat(), last_movement=_iso(moved),
                    moving=level == 3))
        return out


class DoorOpenNight(Detector):
    """Exterior door opened in the night window while no staff visit is in progress."""

    kind = "door_open_night"

    def observe(self, obs: Observation, ctx: Context) -> list[Decision]:
        """Raise on an unexplained night-time opening of an exterior door (an opening, not
        a periodic report that the door is still open)."""
        dev = self.s.devices.get(obs.device_id)
        if obs.kind != "contact" or dev is None or not dev.exterior or not ctx.signal.changed:
            return []
        if obs.value == "open" and self.s.night.contains(obs.ts, self.s.tz):
            if ctx.visit is None:
                return [self._decision("raise", f"{self.kind}:{obs.device_id}", obs.ts,
                                       obs.device_id, room=obs.room)]
        return []


class LeftGeofence(Detector):
    """Left the home area: in the night window, or always if the plan says so."""

    kind = "left_geofence"

    def __init__(self, settings: ResidentSettings) -> None:
        super().__init__(settings)
        self.active = False

    def observe(self, obs: Observation, ctx: Context) -> list[Decision]:
        """Follow geofence transitions of the home region."""
        if obs.kind != "geofence" or not isinstance(obs.value, dict):
            return []
        if obs.value.get("region") not in (self.s.home_region, None):
            return []
        if obs.value.get("event") == "leave":
            alert = self.s.geofence_alert == "always" or self.s.night.contains(obs.ts, self.s.tz)
            if alert and not self.active:
                self.active = True
                return [self._decision("raise", self.kind, obs.ts, obs.device_id)]
        elif obs.value.get("event") == "enter":
            if self.active:
                self.active = False
                return [self._decision("clear", self.kind, obs.ts, obs.device_id)]
        return []


def not_home_key(night: date) -> str:
    """The condition key of one night's `not_home_at_night` (a digital check that finds the
    resident away raises the same one: docs/supervision.md)."""
    return f"not_home_at_night:{night.isoformat()}"


class NotHomeAtNight(Detector):
    """Away from home at the start of the night window plus N minutes (default 60), and not
    in a planned absence. Judged once a night, one alert a night; coming home clears it."""

    kind = "not_home_at_night"

    def __init__(self, settings: ResidentSettings) -> None:
        super().__init__(settings)
        self.judged: date | None = None
        self.active: date | None = None  # the night alerted, until the resident is back

    def observe(self, obs: Observation, ctx: Context) -> list[Decision]:
        """Coming home clears the alert."""
        if self.active is not None and not ctx.occupancy.away:
            night, self.active = self.active, None
            return [self._decision("clear", not_home_key(night), obs.ts, obs.device_id)]
        return []

    def tick(self, now: datetime, ctx: Context) -> list[Decision]:
        """At the night's start plus N minutes, raise if the resident is away unplanned."""
        night = night_of(now, self.s.tz)
        if night == self.judged:
            return []
        start, end = self.s.night.bounds(night, self.s.tz)
        at = start + timedelta(minutes=self.s.not_home_minutes_after_night_start)
        if not at <= now < end:
            return []
        self.judged = night
        occ = ctx.occupancy
        if occ.away and occ.source != "planned":
            self.active = night
            return [self._decision("raise", not_home_key(night), at, None,
                                   away_since=_iso(occ.since), source=occ.source)]
        return []


class Inactivity(Detector):
    """No sign of activity for N hours while at home by day.

    The clock starts at the later of the last activity, the end of the last night window
    and the moment the resident came home, so a long sleep is not an alert at 07:00 and an
    absence never is one.
    """

    kind = "inactivity"

    def __init__(self, settings: ResidentSettings) -> None:
        super().__init__(settings)
        self.last_activity: datetime | None = None
        self.active = False

    def observe(self, obs: Observation, ctx: Context) -> list[Decision]:
        """Movement, or a door, bed or lock *changing* state, is activity (a repeated state
        is a periodic report, not activity)."""
        sig = ctx.signal
        if not (sig.inside or sig.passage):
            return []
        self.last_activity = obs.ts if self.last_activity is None else max(self.last_activity,
                                                                           obs.ts)
        if self.active:
            self.active = False
            return [self._decision("clear", self.kind, obs.ts, obs.device_id)]
        return []

    def tick(self, now: datetime, ctx: Context) -> list[Decision]:
        """Raise after N quiet daytime hours at home."""
        if self.last_activity is None or self.active or ctx.occupancy.away:
            return []
        limit = timedelta(hours=self.s.inactivity_hours)
        if now - self.last_activity < limit:
            return []  # the clock starts at the last activity at the earliest
        if self.s.night.contains(now, self.s.tz):
            return []
        start = max(self.last_activity, self.s.night.last_end_before(now, self.s.tz))
        occ = ctx.occupancy
        if occ.state == "home" and occ.since is not None:
            start = max(start, occ.since)
        if now - start >= limit:
            self.active = True
            return [self._decision("raise", self.kind, start + limit,
                                   last_activity=self.last_activity.isoformat())]
        return []


class BathroomLong(Detector):
    """In the bathroom N minutes (default 30), by the evidence (docs/detectors.md):

    - a stay starts with movement in the bathroom that follows movement elsewhere in the
      home within 5 minutes (the person walked there), or with a second bathroom reading
      within 10 minutes; a single stray pulse, one while the bed sensor says the person is
      in bed, and anything while the resident is away start nothing;
    - it ends with movement anywhere else, getting into bed, or a passage through the door;
    - it raises when the stay has lasted N minutes and nothing has moved in the bathroom for
      10 minutes, or, with movement going on (a long shower), when it has lasted 2N.

    The evidence says what started the stay and when the bathroom last saw movement.
    """

    kind = "bathroom_long"
    ENTRY = timedelta(minutes=5)
    SECOND = timedelta(minutes=10)
    STILL = timedelta(minutes=10)

    def __init__(self, settings: ResidentSettings) -> None:
        super().__init__(settings)
        self.entered: datetime | None = None
        self.first: tuple[datetime, str] | None = None  # first bathroom reading since elsewhere
        self.started_by = ""
        self.last_bath: datetime | None = None
        self.last_elsewhere: datetime | None = None
        self.device: str | None = None
        self.active = False

    def limit(self) -> timedelta:
        """N minutes (default 30)."""
        return timedelta(minutes=self.s.bathroom_long_minutes)

    def observe(self, obs: Observation, ctx: Context) -> list[Decision]:
        """Follow where the movement is."""
        sig = ctx.signal
        if ctx.occupancy.away:
            return self._end(obs)
        if not (sig.inside or sig.passage):
            return []
        in_bathroom = sig.room in self.s.bathroom_rooms and sig.inside
        if not in_bathroom:
            self.last_elsewhere = obs.ts
            self.first = None
            return self._end(obs)
        self.last_bath = obs.ts
        if self.entered is not None or obs.kind != "motion" or ctx.in_bed:
            return []
        if self.first is None:
            self.first = (obs.ts, obs.device_id)
            if self.last_elsewhere is not None and obs.ts - self.last_elsewhere <= self.ENTRY:
                self._start(obs.ts, obs.device_id, "movement elsewhere, then here")
        elif obs.ts - self.first[0] <= self.SECOND:
            self._start(self.first[0], self.first[1], "two bathroom readings")
        else:
            self.first = (obs.ts, obs.device_id)
        return []

    def _start(self, ts: datetime, device_id: str, why: str) -> None:
        self.entered, self.device, self.started_by = ts, device_id, why

    def _end(self, obs: Observation) -> list[Decision]:
        self.entered = None
        if self.active:
            self.active = False
            return [self._decision("clear", self.kind, obs.ts, obs.device_id)]
        return []

    def tick(self, now: datetime, ctx: Context) -> list[Decision]:
        """Raise once, at the event time the condition was reached."""
        if self.entered is None or self.active or self.last_bath is None \
                or ctx.occupancy.away:
            return []
        still_at = max(self.entered + self.limit(), self.last_bath + self.STILL)
        long_at = self.entered + 2 * self.limit()
        at = min(still_at, long_at)
        if now < at:
            return []
        self.active = True
        return [self._decision("raise", self.kind, at, self.device,
                               in_bathroom_since=self.entered.isoformat(),
                               started_by=self.started_by,
                               last_movement_there=self.last_bath.isoformat(),
                               moving=at == long_at and at < still_at)]


@dataclass
class _Link:
    last_seen: datetime
    heard: bool = False
    offline: bool = False
    reason: str = ""


_NEVER = datetime.max.replace(tzinfo=UTC)


class DeviceOffline(Detector):
    """No message within the device's report interval, or an `offline` availability."""

    kind = "device_offline"

    def __init__(self, settings: ResidentSettings, started: datetime) -> None:
        super().__init__(settings)
        # A device never heard from counts from the moment supervision started.
        self.links = {d: _Link(started) for d in settings.devices}
        self._interval = {d: timedelta(seconds=info.report_interval_s)
                          for d, info in settings.devices.items()}
        # No link still online can go silent before this (a lower bound, None: to be worked
        # out). tick() runs before every observation; this makes it one comparison.
        self._due: datetime | None = None

    def seen(self, device_id: str, ts: datetime, available: bool = True) -> list[Decision]:
        """Any message from the device (decodable or not) proves the link."""
        link = self.links.get(device_id)
        if link is None:
            return []
        # The start time only stands in for devices never heard from: the first message
        # sets the real time (it may be earlier, e.g. when events are replayed).
        link.last_seen = max(link.last_seen, ts) if link.heard else ts
        link.heard = True
        if self._due is not None:  # a later last-seen leaves the bound valid
            self._due = min(self._due, link.last_seen + self._interval[device_id])
        if not available:
            if not link.offline:
                link.offline, link.reason = True, "availability offline"
                return [self._decision("raise", f"{self.kind}:{device_id}", ts, device_id,
                                       reason=link.reason)]
            return []
        if link.offline:
            link.offline = False
            return [self._decision("clear", f"{self.kind}:{device_id}", ts, device_id)]
        return []

    def observe(self, obs: Observation, ctx: Context) -> list[Decision]:
        """Observations are messages too."""
        return self.seen(obs.device_id, obs.ts, not (obs.kind == "availability"
                                                     and obs.value == "offline"))

    def tick(self, now: datetime, ctx: Context) -> list[Decision]:
        """Raise for every device silent longer than its profile allows."""
        if self._due is None:
            self._due = self._earliest()
        if now <= self._due:
            return []
        out = []
        for device_id, link in self.links.items():
            interval = self._interval[device_id]
            if not link.offline and now - link.last_seen > interval:
                link.offline, link.reason = True, "silent"
                out.append(self._decision("raise", f"{self.kind}:{device_id}",
                                          link.last_seen + interval, device_id,
                                          reason="silent", last_seen=link.last_seen.isoformat()))
        self._due = self._earliest()
        return out

    def _earliest(self) -> datetime:
        return min((link.last_seen + self._interval[d] for d, link in self.links.items()
                    if not link.offline), default=_NEVER)


class BatteryLow(Detector):
    """Battery under the low mark; cleared above the ok mark (hysteresis)."""

    kind = "battery_low"

    def __init__(self, settings: ResidentSettings) -> None:
        super().__init__(settings)
        self.low: set[str] = set()

    def observe(self, obs: Observation, ctx: Context) -> list[Decision]:
        """Compare battery readings with the marks."""
        if obs.kind != "battery" or not isinstance(obs.value, int | float):
            return []
        if obs.value < self.s.battery_low_percent and obs.device_id not in self.low:
            self.low.add(obs.device_id)
            return [self._decision("raise", f"{self.kind}:{obs.device_id}", obs.ts,
                                   obs.device_id, percent=obs.value)]
        if obs.value >= self.s.battery_ok_percent and obs.device_id in self.low:
            self.low.discard(obs.device_id)
            return [self._decision("clear", f"{self.kind}:{obs.device_id}", obs.ts,
                                   obs.device_id, percent=obs.value)]
        return []


RULES: dict[str, type[Detector]] = {
    cls.kind: cls for cls in (Sos, Fall, BedExitNoReturn, DoorOpenNight, LeftGeofence,
                              NotHomeAtNight, Inactivity, BathroomLong, BatteryLow)
}
