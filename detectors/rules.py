"""Rule detectors (SPEC section 7). Each decides from event time only, so a replayed or
simulated night at 100x speed raises the same alerts as a real one.

Every detector has `observe(obs, ctx)` for observations and `tick(now, ctx)` for
conditions that become true by time passing; both return decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal

from detectors.model import Decision, Observation, ResidentSettings
from detectors.visits import Visit

ACTIVITY_KINDS = frozenset({"motion", "contact", "bed", "lock"})
_UNSET = object()


@dataclass
class Context:
    """Shared per-resident state the detectors read."""

    settings: ResidentSettings
    visit: Visit | None = None
    away: bool = False  # left the home geofence and not yet back


class Detector:
    """Base: a detector for one resident."""

    kind: ClassVar[str]

    def __init__(self, settings: ResidentSettings) -> None:
        self.s = settings

    def observe(self, obs: Observation, ctx: Context) -> list[Decision]:
        """React to an observation."""
        return []

    def tick(self, now: datetime, ctx: Context) -> list[Decision]:
        """React to time passing."""
        return []

    def _decision(self, action: Literal["raise", "clear"], key: str, ts: datetime,
                  device_id: str | None = None, **detail: object) -> Decision:
        return Decision(action, self.kind, self.s.resident_id, key, ts, dict(detail), device_id)


class PushButton(Detector):
    """sos and fall: a `true` from the device raises (the alert layer dedups repeats)."""

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


class TimedCondition(Detector):
    """A condition that starts at an event and alerts when it lasts `limit()` long."""

    detail_key: ClassVar[str]

    def __init__(self, settings: ResidentSettings) -> None:
        super().__init__(settings)
        self.since: datetime | None = None
        self.active = False
        self.device: str | None = None

    def limit(self) -> timedelta:
        """How long the condition may last before it is an alert."""
        raise NotImplementedError

    def start(self, ts: datetime, device_id: str) -> None:
        """The condition began (kept if it is already running)."""
        if self.since is None:
            self.since, self.device = ts, device_id

    def end(self, obs: Observation) -> list[Decision]:
        """The condition ended; clear the alert if one was raised."""
        self.since = None
        if self.active:
            self.active = False
            return [self._decision("clear", self.kind, obs.ts, obs.device_id)]
        return []

    def tick(self, now: datetime, ctx: Context) -> list[Decision]:
        """Raise once, at the event time the limit was reached."""
        if self.since is not None and not self.active and now - self.since >= self.limit():
            self.active = True
            return [self._decision("raise", self.kind, self.since + self.limit(), self.device,
                                   **{self.detail_key: self.since.isoformat()})]
        return []


class BedExitNoReturn(TimedCondition):
    """Out of bed in the night window and not back within N minutes (the N minutes must
    end inside the window)."""

    kind = "bed_exit_no_return"
    detail_key = "out_of_bed_since"

    def limit(self) -> timedelta:
        """N minutes (default 20)."""
        return timedelta(minutes=self.s.bed_exit_no_return_minutes)

    def observe(self, obs: Observation, ctx: Context) -> list[Decision]:
        """Track bed exits and returns."""
        if obs.kind != "bed":
            return []
        if obs.value is False and self.since is None:
            # Getting up shortly before the night window ends is getting up for the day:
            # only exits whose deadline still falls in the night are watched.
            if self.s.night.contains(obs.ts, self.s.tz) and \
                    self.s.night.contains(obs.ts + self.limit(), self.s.tz):
                self.start(obs.ts, obs.device_id)
            return []
        if obs.value is True and self.since is not None:
            return self.end(obs)
        return []


class DoorOpenNight(Detector):
    """Exterior door opened in the night window while no staff visit is in progress."""

    kind = "door_open_night"

    def observe(self, obs: Observation, ctx: Context) -> list[Decision]:
        """Raise on an unexplained night-time opening of an exterior door."""
        dev = self.s.devices.get(obs.device_id)
        if obs.kind != "contact" or dev is None or not dev.exterior:
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
            ctx.away = True
            alert = self.s.geofence_alert == "always" or self.s.night.contains(obs.ts, self.s.tz)
            if alert and not self.active:
                self.active = True
                return [self._decision("raise", self.kind, obs.ts, obs.device_id)]
        elif obs.value.get("event") == "enter":
            ctx.away = False
            if self.active:
                self.active = False
                return [self._decision("clear", self.kind, obs.ts, obs.device_id)]
        return []


class Inactivity(Detector):
    """No sign of activity for N hours while at home by day.

    The clock starts at the later of the last activity and the end of the last night
    window, so a long sleep is not an alert at 07:00.
    """

    kind = "inactivity"

    def __init__(self, settings: ResidentSettings) -> None:
        super().__init__(settings)
        self.last_activity: datetime | None = None
        self.active = False
        self.states: dict[str, object] = {}  # last door/bed/lock value per device

    def observe(self, obs: Observation, ctx: Context) -> list[Decision]:
        """Movement, or a door, bed or lock *changing* state, is activity (zigbee2mqtt
        repeats a contact's cached state in every periodic report: that is not activity)."""
        if obs.kind not in ACTIVITY_KINDS or obs.value is False and obs.kind == "motion":
            return []
        if obs.kind != "motion":
            before = self.states.get(obs.device_id, _UNSET)
            self.states[obs.device_id] = obs.value
            if before == obs.value:
                return []
        self.last_activity = obs.ts if self.last_activity is None else max(self.last_activity,
                                                                           obs.ts)
        if self.active:
            self.active = False
            return [self._decision("clear", self.kind, obs.ts, obs.device_id)]
        return []

    def tick(self, now: datetime, ctx: Context) -> list[Decision]:
        """Raise after N quiet daytime hours at home."""
        if self.last_activity is None or self.active or ctx.away:
            return []
        limit = timedelta(hours=self.s.inactivity_hours)
        if now - self.last_activity < limit:
            return []  # the clock starts at the last activity at the earliest
        if self.s.night.contains(now, self.s.tz):
            return []
        start = max(self.last_activity, self.s.night.last_end_before(now, self.s.tz))
        if now - start >= limit:
            self.active = True
            return [self._decision("raise", self.kind, start + limit,
                                   last_activity=self.last_activity.isoformat())]
        return []


class BathroomLong(TimedCondition):
    """In the bathroom longer than N minutes (motion there, none elsewhere since)."""

    kind = "bathroom_long"
    detail_key = "in_bathroom_since"

    def limit(self) -> timedelta:
        """N minutes (default 30)."""
        return timedelta(minutes=self.s.bathroom_long_minutes)

    def observe(self, obs: Observation, ctx: Context) -> list[Decision]:
        """Enter on bathroom motion; leave on motion elsewhere or getting into bed."""
        if obs.kind == "motion" and obs.value is True:
            if obs.room in self.s.bathroom_rooms:
                self.start(obs.ts, obs.device_id)
                return []
            return self.end(obs)
        if obs.kind == "bed" and obs.value is True:
            return self.end(obs)
        return []


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
                              Inactivity, BathroomLong, BatteryLow)
}
