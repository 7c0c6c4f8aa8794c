"""A home simulator: scripted nights of one resident as timed device events (pure, seeded).

It knows the home from the registry (which device is the bed sensor, which PIR is in which
room, the front door, lock and position alarm) and writes down the truth of what it played
(toilet visits, staff visits, incidents) so tests can check what the gateway stored and,
later, what it raised.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.config.registry import Registry, Resident

MOTION_CLEAR_S = 90  # RTCGQ11LM reports occupancy false 90 s after the last motion
HOME_POSITION = (55.7047, 13.1910)  # Lund


@dataclass(frozen=True, order=True)
class SimEvent:
    """One thing a device will report."""

    ts_ms: int
    device_id: str = field(compare=False)
    kind: str = field(compare=False)
    value: Any = field(compare=False)
    note: str = field(default="", compare=False)


@dataclass
class HomeLayout:
    """Devices of one home by role."""

    resident_id: str
    profiles: dict[str, str]
    sources: dict[str, str]
    pir: dict[str, str] = field(default_factory=dict)
    bed: str | None = None
    door: str | None = None
    lock: str | None = None
    position: str | None = None
    heartbeat: list[str] = field(default_factory=list)

    @classmethod
    def from_resident(cls, res: Resident) -> HomeLayout:
        """Work out device roles from profiles and rooms."""
        home = cls(res.id, {d.id: d.profile for d in res.devices},
                   {d.id: d.source for d in res.devices})
        for d in res.devices:
            p = d.profile
            if p in ("zigbee2mqtt.occupancy", "chirpstack.milesight-ws202",
                     "chirpstack.milesight-vs330") or (p == "tillsyn.native" and
                                                       d.id.startswith("pir")):
                home.pir[d.room or "hall"] = d.id
            elif p in ("zigbee2mqtt.bed_mat", "zigbee2mqtt.vibration") or (
                    p == "tillsyn.native" and d.room == "bedroom" and "bed" in d.id):
                home.bed = d.id
            elif p in ("zigbee2mqtt.contact", "chirpstack.milesight-ws301") and d.exterior:
                home.door = d.id
            elif p == "zigbee2mqtt.lock":
                home.lock = d.id
            elif p == "owntracks.location":
                home.position = d.id
            if p == "tillsyn.native":
                home.heartbeat.append(d.id)
        return home


@dataclass
class NightTruth:
    """What really happened in a simulated night."""

    resident_id: str
    night_start: datetime
    toilet_visits: int = 0
    staff_visits: int = 0
    incidents: list[tuple[str, int]] = field(default_factory=list)
    walks: int = 0
    messages: int = 0


class NightPlanner:
    """Builds one night of events for one home."""

    def __init__(self, home: HomeLayout, rng: random.Random, tz: ZoneInfo) -> None:
        self.home = home
        self.rng = rng
        self.tz = tz
        self.events: list[SimEvent] = []

    def _at(self, ts: datetime) -> int:
        return int(ts.timestamp() * 1000)

    def motion(self, room: str, ts: datetime, note: str = "") -> None:
        dev = self.home.pir.get(room)
        if dev is None:
            return
        self.events.append(SimEvent(self._at(ts), dev, "motion", True, note))
        self.events.append(SimEvent(self._at(ts + timedelta(seconds=MOTION_CLEAR_S)), dev,
                                    "motion", False, note))

    def bed(self, occupied: bool, ts: datetime, note: str = "") -> None:
        if self.home.bed:
            self.events.append(SimEvent(self._at(ts), self.home.bed, "bed", occupied, note))

    def door(self, open_: bool, ts: datetime, note: str = "") -> None:
        if self.home.door:
            self.events.append(SimEvent(self._at(ts), self.home.door, "contact",
                                        "open" if open_ else "closed", note))

    def lock(self, state: str, ts: datetime, method: str, user: int | None,
             note: str = "", fmt: str = "source") -> None:
        if self.home.lock:
            self.events.append(SimEvent(self._at(ts), self.home.lock, "lock",
                                        {"state": state, "method": method, "user": user,
                                         "format": fmt}, note))

    def walk(self, start: datetime, minutes: float, home: tuple[float, float]) -> None:
        """An afternoon walk with the position alarm: leave home, out and back, enter home."""
        dev = self.home.position
        if dev is None:
            return
        lat0, lon0 = home
        self.events.append(SimEvent(self._at(start), dev, "geofence",
                                    {"event": "leave", "region": "home"}, "walk"))
        bearing_lat, bearing_lon = self.rng.uniform(-1, 1), self.rng.uniform(-1, 1)
        steps = max(2, int(minutes // 2))
        for k in range(1, steps):
            # Out for the first half, back for the second; about 60 m per 2 minutes.
            out = min(k, steps - k) * 0.0005
            self.events.append(SimEvent(
                self._at(start + timedelta(minutes=2 * k)), dev, "position",
                {"lat": round(lat0 + bearing_lat * out, 6),
                 "lon": round(lon0 + bearing_lon * out * 1.8, 6), "acc": 10}, "walk"))
        self.events.append(SimEvent(self._at(start + timedelta(minutes=2 * steps)), dev,
                                    "geofence", {"event": "enter", "region": "home"}, "walk"))

    def plan(self, night_start: datetime, *, staff_visit_at: datetime | None = None,
             staff_user: int = 2, incidents: tuple[str, ...] = (),
             incident_offset: timedelta | None = None) -> NightTruth:
        """The night from 21:00 (night_start), the morning, the day and an afternoon walk
        (if there is a position alarm), until 21:00 the next evening. Incidents happen at
        a random time after bedtime, or `incident_offset` after night_start."""
        rng = self.rng
        truth = NightTruth(self.home.resident_id, night_start)
        if self.home.position is not None:  # the next afternoon, 15:00-17:00
            self.walk(night_start + timedelta(hours=rng.uniform(18, 20)), rng.uniform(30, 60),
                      HOME_POSITION)
            truth.walks += 1
        bedtime = night_start + timedelta(minutes=60 + rng.uniform(0, 60))
        # Up for the day around the end of the night window (07:00).
        wake = night_start + timedelta(hours=9, minutes=45 + rng.uniform(0, 60))
        self.motion("hall", bedtime - timedelta(minutes=10))
        self.motion("bathroom", bedtime - timedelta(minutes=8))
        self.motion("bedroom", bedtime - timedelta(minutes=2))
        self.bed(True, bedtime, "bedtime")
        busy: list[tuple[datetime, datetime]] = []
        for inc in incidents:
            at = bedtime + timedelta(minutes=rng.uniform(90, 300))
            if incident_offset is not None:
                at = night_start + incident_offset
            truth.incidents.append((inc, self._at(at)))
            busy.append((at - timedelta(minutes=30), at + timedelta(minutes=90)))
            self.incident(inc, at)
        if staff_visit_at is not None:
            self.staff_visit(staff_visit_at, staff_user)
            truth.staff_visits += 1
            busy.append((staff_visit_at - timedelta(minutes=20),
                         staff_visit_at + timedelta(minutes=20)))
        visits = min(3, poisson(rng, 1.3))
        slots = sorted(rng.uniform(40, (wake - bedtime).total_seconds() / 60 - 40)
                       for _ in range(visits))
        last = -60.0
        for minute in slots:
            t = bedtime + timedelta(minutes=minute)
            if minute - last < 45 or any(a <= t <= b for a, b in busy):
                continue
            last = minute
            self.toilet_visit(t, rng.uniform(3, 10))
            truth.toilet_visits += 1
        self.bed(False, wake, "wake")
        self.motion("bedroom", wake + timedelta(seconds=20))
        self.motion("hall", wake + timedelta(minutes=1))
        self.motion("kitchen", wake + timedelta(minutes=2))
        # Daytime life until the next evening, so the day is not one long silence.
        t = wake + timedelta(minutes=rng.uniform(20, 50))
        day_end = night_start + timedelta(hours=23)
        day_rooms = [r for r in self.home.pir if r not in ("bathroom", "toilet")] or ["hall"]
        while t < day_end:
            self.motion(rng.choice(day_rooms), t, "day")
            t += timedelta(minutes=rng.uniform(20, 60))
        self.device_reports(night_start)
        if "sensor_dies" in incidents and self.home.bed is not None:
            died = next(ts for kind, ts in truth.incidents if kind == "sensor_dies")
            self.events = [e for e in self.events
                           if not (e.device_id == self.home.bed and e.ts_ms >= died)]
        self.events.sort()
        truth.messages = len(self.events)
        return truth

    def device_reports(self, night_start: datetime) -> None:
        """The 24 h from night_start of periodic reports: battery zigbee and LoRaWAN devices
        check in about hourly (with their cached state), the position alarm pings every 30
        minutes, mains/native devices send a heartbeat every 5 minutes."""
        for dev, profile in self.home.profiles.items():
            if profile == "tillsyn.native":
                continue
            every = 30 if profile.startswith("owntracks") else 55
            t = night_start + timedelta(minutes=self.rng.uniform(0, every))
            while t < night_start + timedelta(hours=24):
                self.events.append(SimEvent(self._at(t), dev, "checkin", None))
                t += timedelta(minutes=every)
        for dev in self.home.heartbeat:
            t = night_start
            while t < night_start + timedelta(hours=24):
                self.events.append(SimEvent(self._at(t), dev, "heartbeat", None))
                t += timedelta(minutes=5)

    def toilet_visit(self, t: datetime, stay_min: float, note: str = "toilet") -> None:
        self.bed(False, t, note)
        self.motion("bedroom", t + timedelta(seconds=10), note)
        self.motion("hall", t + timedelta(seconds=25), note)
        self.motion("bathroom", t + timedelta(seconds=40), note)
        back = t + timedelta(minutes=stay_min)
        self.motion("hall", back, note)
        self.motion("bedroom", back + timedelta(seconds=15), note)
        self.bed(True, back + timedelta(seconds=40), note)

    def staff_visit(self, t: datetime, user: int, fmt: str = "source") -> None:
        """A night nurse lets herself in with the keypad and locks behind her; `fmt` is how
        the lock reports it (firmware_stubs.devices.Z2MLock)."""
        self.lock("unlocked", t, "keypad", user, "staff visit", fmt)
        self.door(True, t + timedelta(seconds=5), "staff visit")
        self.door(False, t + timedelta(seconds=15), "staff visit")
        self.motion("hall", t + timedelta(seconds=20), "staff visit")
        out = t + timedelta(minutes=8)
        self.door(True, out, "staff visit")
        self.door(False, out + timedelta(seconds=10), "staff visit")
        self.lock("locked", out + timedelta(seconds=20), "keypad", user, "staff visit", fmt)

    def incident(self, kind: str, t: datetime) -> None:
        """Scripted incidents for the alerting scenarios (see INCIDENT_ALERTS)."""
        if kind == "bed_exit_no_return":
            # Up, into the hall and the kitchen, back in bed only after 45 minutes.
            self.bed(False, t, kind)
            self.motion("bedroom", t + timedelta(seconds=10), kind)
            self.motion("hall", t + timedelta(seconds=30), kind)
            self.motion("kitchen", t + timedelta(minutes=10), kind)
            self.motion("bedroom", t + timedelta(minutes=44), kind)
            self.bed(True, t + timedelta(minutes=45), kind)
        elif kind == "wandering":
            # Out of bed and out of the front door; brought back after 40 minutes.
            self.bed(False, t, kind)
            self.motion("hall", t + timedelta(seconds=40), kind)
            self.door(True, t + timedelta(seconds=60), kind)
            self.door(False, t + timedelta(seconds=75), kind)
            self.door(True, t + timedelta(minutes=40), kind)
            self.door(False, t + timedelta(minutes=40, seconds=15), kind)
            self.motion("hall", t + timedelta(minutes=40, seconds=20), kind)
            self.bed(True, t + timedelta(minutes=43), kind)
        elif kind == "bathroom_long":
            # Up to the bathroom and still there 55 minutes later (unwell, or fallen with
            # no alarm on): movement there twice, then nothing until help comes.
            self.toilet_visit(t, 55, kind)
            self.motion("bathroom", t + timedelta(minutes=5), kind)
        elif kind == "fall" and self.home.heartbeat:
            self.events.append(SimEvent(self._at(t), self.home.heartbeat[0], "fall", True, kind))
        elif kind == "sos" and self.home.heartbeat:
            self.events.append(SimEvent(self._at(t), self.home.heartbeat[0], "sos", True, kind))


# Which alert each scripted incident must raise (the first is the one recall is about).
INCIDENT_ALERTS: dict[str, tuple[str, ...]] = {
    "fall": ("fall",),
    "sos": ("sos",),
    "bed_exit_no_return": ("bed_exit_no_return",),
    "wandering": ("door_open_night", "bed_exit_no_return"),
    "sensor_dies": ("device_offline",),
    "bathroom_long": ("bathroom_long", "bed_exit_no_return"),
}


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method: O(lambda), exact while exp(-lambda) does not underflow (lambda up to
    about 700); the simulators use it up to about 50."""
    import math

    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def last_complete_night(now: datetime, tz: ZoneInfo, nights_back: int = 1) -> datetime:
    """21:00 local of the first of `nights_back` consecutive simulated days (each a night
    and the day after it, 24 h from 21:00) that are all complete before now."""
    latest = (now - timedelta(hours=24)).astimezone(tz)
    day = latest.date()
    if latest.time() < time(21, 0):
        day -= timedelta(days=1)
    return datetime.combine(day - timedelta(days=nights_back - 1), time(21, 0), tz)


def plan_nights(registry: Registry, first_night: datetime, nights: int, seed: int,
                tz: ZoneInfo, staff_visit_every: int = 0,
                incidents: tuple[str | None, ...] = (), night_offset: int = 0,
                incident_offset: timedelta | None = None
                ) -> tuple[list[SimEvent], list[NightTruth]]:
    """Plan `nights` consecutive nights for every resident in the registry.

    Incidents rotate through `incidents`, shifted each night so one resident does not get
    the same incident on consecutive nights; `night_offset` continues the rotation when
    nights are planned one at a time.
    """
    rng = random.Random(seed)
    events: list[SimEvent] = []
    truths: list[NightTruth] = []
    for n in range(nights):
        start = datetime.combine(first_night.date() + timedelta(days=n), time(21, 0), tz)
        for i, res in enumerate(registry.residents):
            home = HomeLayout.from_resident(res)
            planner = NightPlanner(home, rng, tz)
            visit = None
            g = n + night_offset
            if staff_visit_every and (g + i) % staff_visit_every == 0:
                visit = start + timedelta(hours=5, minutes=rng.uniform(0, 60))
            inc = incidents[(i + 3 * g) % len(incidents)] if incidents else None
            truths.append(planner.plan(start, staff_visit_at=visit,
                                       incidents=(inc,) if inc else (),
                                       incident_offset=incident_offset))
            events.extend(planner.events)
    events.sort()
    return events, truths
