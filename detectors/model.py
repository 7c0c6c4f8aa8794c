"""Types shared by the detectors: observations in, decisions out. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

ALERT_PRIORITY: dict[str, int] = {
    "sos": 1, "fall": 1, "bed_exit_no_return": 2, "door_open_night": 1, "left_geofence": 1,
    "inactivity": 2, "bathroom_long": 2, "check_failed": 2, "check_unknown": 2,
    "device_offline": 3, "battery_low": 3, "fall_risk_rise": 3, "not_home_at_night": 2,
}


NOON = time(12, 0)


def night_of(ts: datetime, tz: ZoneInfo) -> date:
    """The evening a moment's night started on (times before noon belong to the night
    before)."""
    local = ts.astimezone(tz)
    return local.date() if local.time() >= NOON else local.date() - timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Observation:
    """One stored observation, as the detectors see it (ts is UTC, timezone-aware)."""

    resident_id: str
    device_id: str
    kind: str
    value: Any
    ts: datetime
    room: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """A detector's verdict: a condition started (`raise`) or ended (`clear`).

    `key` names the condition: the alerting layer keeps one open alert per key (dedup) and
    opens a new one when a cleared condition recurs.
    """

    action: Literal["raise", "clear"]
    kind: str
    resident_id: str
    key: str
    ts: datetime
    detail: dict[str, Any] = field(default_factory=dict)
    device_id: str | None = None
    level: int | None = None  # this occurrence's priority, where the rule grades it

    @property
    def priority(self) -> int:
        """Priority of this alert (1 highest): the rule's grading, else the kind's default."""
        return self.level if self.level is not None else ALERT_PRIORITY[self.kind]


@dataclass(frozen=True, slots=True)
class NightWindow:
    """A local wall-clock window such as 22:00-07:00 (may cross midnight)."""

    start: time
    end: time

    @classmethod
    def parse(cls, start: str, end: str) -> NightWindow:
        """From "HH:MM" strings."""
        return cls(time.fromisoformat(start), time.fromisoformat(end))

    def contains(self, ts: datetime, tz: ZoneInfo) -> bool:
        """Whether the local time of ts falls in the window (DST-safe: local clock)."""
        t = ts.astimezone(tz).time()
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def start_of(self, evening: date, tz: ZoneInfo) -> datetime:
        """When the night that starts on the evening of `evening` begins (aware, UTC)."""
        return datetime.combine(evening, self.start, tz).astimezone(UTC)

    def end_of(self, evening: date, tz: ZoneInfo) -> datetime:
        """When the night that starts on the evening of `evening` ends (aware, UTC)."""
        day = evening + timedelta(days=1) if self.end <= self.start else evening
        return datetime.combine(day, self.end, tz).astimezone(UTC)

    def bounds(self, evening: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """Start and end (UTC) of the night that starts on the evening of `evening`."""
        return self.start_of(evening, tz), self.end_of(evening, tz)

    def last_end_before(self, ts: datetime, tz: ZoneInfo) -> datetime:
        """The most recent end of the window at or before ts (as an aware datetime)."""
        local = ts.astimezone(tz)
        candidate = datetime.combine(local.date(), self.end, tz)
        if candidate > local:
            candidate = datetime.combine(local.date() - timedelta(days=1), self.end, tz)
        return candidate


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the detectors need to know about a device."""

    device_id: str
    room: str | None
    exterior: bool
    report_interval_s: int
    kinds: frozenset[str] = frozenset()  # observation kinds the device's profile produces
    bed: bool = False  # a motion sensor mounted over the bed: the home's bed sensor

    @property
    def entry(self) -> bool:
        """A motion sensor at the exterior door: movement there is a passage."""
        return self.exterior and "motion" in self.kinds and "contact" not in self.kinds


@dataclass(frozen=True, slots=True)
class PlannedAbsence:
    """A planned time away from home (hospital stay, family visit, short-term care)."""

    start: datetime
    end: datetime
    reason: str = ""

    def covers(self, ts: datetime) -> bool:
        """Whether ts falls inside it."""
        return self.start <= ts < self.end


@dataclass(frozen=True)
class ResidentSettings:
    """Per-resident detector settings (site defaults already applied)."""

    resident_id: str
    tz: ZoneInfo
    night: NightWindow
    devices: dict[str, DeviceInfo]
    staff_credentials: dict[str, str] = field(default_factory=dict)  # credential -> staff id
    bed_exit_no_return_minutes: float = 20
    inactivity_hours: float = 4
    bathroom_long_minutes: float = 30
    battery_low_percent: float = 20
    battery_ok_percent: float = 30
    bathroom_rooms: frozenset[str] = frozenset({"bathroom", "toilet"})
    home_region: str = "home"
    geofence_alert: Literal["night", "always"] = "night"
    # Occupancy (detectors/occupancy.py) and the rules that read it.
    away_after_minutes: float = 10
    not_home_minutes_after_night_start: float = 60
    bed_exit_moving_minutes: float = 10
    bed_exit_still_minutes: float = 40
    bed_exit_when_moving: Literal["notify", "none"] = "notify"
    rise_time: time | None = None  # the usual rise time, when set by hand

    @property
    def bed_room(self) -> str | None:
        """The room of the bed sensor (a bed device, or a motion sensor over the bed)."""
        return next((d.room for d in self.devices.values() if d.bed or "bed" in d.kinds),
                    None)
