"""A cohort simulator for the fall-risk model: residents whose walking speed, night toilet
visits and activity change over months, with falls drawn from a documented risk model.

Every number here is either from the literature cited in docs/fall-risk.md or a stated
assumption of the simulator (marked ASSUMPTION). The cohort plays through the real pipeline
(`events()` -> firmware stubs -> broker -> gateway) or straight into the feature extractor
(`rows()`, the direct path used to generate training datasets).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from firmware_stubs.home import MOTION_CLEAR_S, SimEvent, poisson

ROOMS = ("bedroom", "hall", "bathroom", "kitchen", "living")
DAY_ROOMS = ("bedroom", "kitchen", "living", "bathroom", "hall")

# --- the fall-risk model of the simulator ---------------------------------------------------
# Phillips et al. 2017: a cumulative slowing of about 2.5 cm/s -> 4.2 times the odds of a
# fall within three weeks. Applied in full at 2.5 cm/s below the person's usual speed,
# proportionally (on the log scale) below that.
SPEED_OR = 4.2
SPEED_OR_AT_CM_S = 2.5
# Stewart et al. 1992: two or more night-time voids -> odds ratio about 1.8 (Vaughan et al.
# 2010 found a relative risk of 1.28 for three or more, a more conservative figure).
NOCTURIA_OR = 1.8
# ASSUMPTION: activity 30% or more below usual -> 1.5 times the hazard (van Schooten et al.
# 2015 show daily-life activity and gait add to prediction but give no single odds ratio).
ACTIVITY_OR = 1.5
# ASSUMPTION: falls per person-year before any change, lognormal around 1.0 (between
# community-dwelling home-care recipients and nursing-home residents, who fall about 1.5
# times a year), so people differ in ways the sensors cannot see.
FALL_RATE_MEDIAN = 1.0
FALL_RATE_SDLOG = 0.5

# --- variability from the literature (docs/fall-risk.md#simulator-variability) ------------


@dataclass(frozen=True)
class Variability:
    """How much a person's walking varies, as named settings with their sources.

    - `day_speed_cv`: day-to-day spread of the person's true daily mean walking speed, as a
      share of their usual speed. Calibrated so that the *measured* coefficient of
      variation of the daily speed (true spread plus this simulator's measurement error,
      bench/risk_eval.py prints it) matches Hayes et al. 2008 (Alzheimer's & Dementia
      4:395-405), who measured the CV of the daily median in-home walking speed with
      passive sensors: 7.9% +/- 2.7% in healthy elders (`default`), 14.7% +/- 7.4% with
      mild cognitive impairment (`high`), and one SD below the healthy mean, 5.2%
      (`low`).
    - `walk_speed_cv`: spread of single walks around the day's mean. With the sensors'
      detection delays it gives a per-walk error of about 9 cm/s at 100 cm/s, as Hagler et
      al. 2010 measured after calibration (SD 9.1 cm/s at 102 cm/s).
    - `walks_shape`: walks a day are Poisson around a daily rate that is itself gamma
      distributed with this shape (mean 1): heavy-tailed, some days have few walks or none
      (ASSUMPTION: no source gives the distribution; shape 2 gives a CV of the daily rate
      of 0.71 and about 3% of days with fewer than 5 walks).
    """

    name: str
    day_speed_cv: float
    walk_speed_cv: float = 0.08
    walks_shape: float = 2.0


VARIABILITY = {
    "low": Variability("low", day_speed_cv=0.046),
    "default": Variability("default", day_speed_cv=0.076),
    "high": Variability("high", day_speed_cv=0.147),
}
# Before 2026-12-04 the simulator used a fixed 1.0 cm/s (about 1.6% at the cohort's mean
# speed) and Poisson walks: several times less than Hayes 2008 measured.

# --- the measurement model (ASSUMPTIONS, see docs/fall-risk.md) ----------------------------
# Mean and sd of a PIR's detection delay (clipped 0.05-0.8 s). The sd is set so that the
# per-walk error relative to the walk's true speed is about 9%, as Hagler et al. 2010
# measured after calibration (SD 9.1 cm/s at 102 cm/s); bench/risk_eval.py prints it.
PIR_LATENCY_S = (0.30, 0.19)
PAUSE_PROBABILITY = 0.10  # a walk with a stop in the hall (5-40 s)
NIGHT_SPEED_FACTOR = 0.85
WALK_SPACING_MIN = 3.0


@dataclass
class Person:
    """One simulated resident and the course of the months simulated."""

    id: str
    index: int
    course: str  # stable | decline | episode
    base_speed: float  # cm/s
    base_nocturia: float  # mean bathroom visits a night
    base_walks: float  # walks between rooms a day
    fall_rate: float  # falls per year before any change
    distances_m: dict[str, float]
    onset_day: int | None = None  # decline or episode start
    decline_cm_s: float = 5.0
    decline_days: int = 28
    variability: Variability = VARIABILITY["default"]

    def speed_trend(self, day: int) -> float:
        """The person's true mean speed on `day`, before day-to-day spread."""
        v = self.base_speed
        if self.onset_day is None or day < self.onset_day:
            return v
        t = day - self.onset_day
        if self.course == "decline":
            return v - self.decline_cm_s * min(1.0, t / self.decline_days)
        if self.course == "episode":  # an illness: 3 cm/s slower in a week, back in two
            if t < 7:
                return v - 3.0 * t / 7
            if t < 21:
                return v - 3.0 * (21 - t) / 14
        return v

    def nocturia(self, day: int) -> float:
        """Mean bathroom visits that night."""
        if self.course == "episode" and self.onset_day is not None and \
                0 <= day - self.onset_day < 21:
            return self.base_nocturia + 1.5
        return self.base_nocturia

    def activity_factor(self, day: int) -> float:
        """Walks a day compared with usual."""
        if self.onset_day is None or day < self.onset_day:
            return 1.0
        t = day - self.onset_day
        if self.course == "episode" and t < 21:
            return 0.65
        if self.course == "decline":
            return 1.0 - 0.25 * min(1.0, t / self.decline_days)
        return 1.0

    def daily_hazard(self, day: int) -> float:
        """Probability of a fall on `day` under the simulator's risk model."""
        slowing = max(0.0, self.base_speed - self.speed_trend(day))
        m = math.exp(math.log(SPEED_OR) * min(1.0, slowing / SPEED_OR_AT_CM_S))
        lam = self.nocturia(day)
        m *= NOCTURIA_OR if lam >= 2 else 1 + (NOCTURIA_OR - 1) * max(0.0, lam - 1)
        if self.activity_factor(day) <= 0.7:
            m *= ACTIVITY_OR
        return min(0.5, self.fall_rate / 365 * m)


@dataclass
class DayTruth:
    """What really happened on one simulated day."""

    day: date
    speed: float  # the day's true mean walking speed, cm/s
    toilet_visits: int
    walks: int
    fell: bool
    transits: list[tuple[int, float]] = field(default_factory=list)  # (hall onset ms, speed)


def make_cohort(n: int, seed: int, days: int, *, decline_share: float = 0.25,
                episode_share: float = 0.15, courses: list[str] | None = None,
                variability: str = "default", decline_cm_s: float = 5.0,
                decline_days: int = 28, onset: int | None = None) -> list[Person]:
    """`n` residents; a share declines (`decline_cm_s` over `decline_days` from a random
    day, or from day `onset`), a share has an illness episode, the rest are stable. Their
    walking varies as the named `variability` setting says (VARIABILITY)."""
    var = VARIABILITY[variability]
    rng = random.Random(seed)
    people = []
    for i in range(n):
        if courses is not None:
            course = courses[i % len(courses)]
        else:
            u = rng.random()
            course = "decline" if u < decline_share else \
                "episode" if u < decline_share + episode_share else "stable"
        start = None
        if course != "stable":
            start = rng.randint(min(42, days - 1), max(42, days - 35))
            if onset is not None:
                start = onset
        dist = {f"{a}-hall": round(rng.uniform(2.0, 4.0), 2)
                for a in ("bedroom", "bathroom", "kitchen", "living")}
        people.append(Person(
            id=f"r-{5000 + i}", index=i, course=course,
            base_speed=min(100.0, max(35.0, rng.gauss(62, 12))),
            base_nocturia=rng.uniform(0.3, 1.6), base_walks=rng.uniform(25, 45),
            fall_rate=FALL_RATE_MEDIAN * math.exp(rng.gauss(0, FALL_RATE_SDLOG)),
            distances_m=dist, onset_day=start, decline_cm_s=decline_cm_s,
            decline_days=decline_days, variability=var))
    return people


def cohort_registry(people: list[Person], site: str) -> dict[str, Any]:
    """A registry for the cohort: PIRs in five rooms, a native bed sensor and a door."""
    residents = []
    for p in people:
        i = p.index
        dev: list[dict[str, Any]] = [
            {"id": f"{room}-pir-{i}", "profile": "zigbee2mqtt.occupancy",
             "source": f"zigbee2mqtt/{room}-pir-{i}", "room": room} for room in ROOMS]
        dev += [{"id": f"bed-{i}", "profile": "tillsyn.native",
                 "source": f"tillsyn/v1/{site}/bed-{i}", "room": "bedroom"},
                {"id": f"door-{i}", "profile": "zigbee2mqtt.contact",
                 "source": f"zigbee2mqtt/door-{i}", "room": "entrance", "exterior": True}]
        residents.append({"id": p.id, "name": f"Cohort {i}", "unit": "unit-a",
                          "consent": ["motion", "contact", "bed"],
                          "sensor_distances_m": p.distances_m, "devices": dev})
    return {"units": [{"id": "unit-a", "name": "Cohort unit"}],
            "staff": [{"id": "s-17", "name": "Night nurse", "unit": "unit-a",
                       "role": "night_staff", "lock_credentials": ["keypad:2"]}],
            "residents": residents}


class DayPlayer:
    """Generates one resident's device readings day by day (seeded)."""

    def __init__(self, person: Person, first: date, tz: ZoneInfo, seed: int) -> None:
        self.p = person
        self.first = first
        self.tz = tz
        self.rng = random.Random(seed * 1_000_003 + person.index)
        i = person.index
        self.pir = {room: f"{room}-pir-{i}" for room in ROOMS}
        self.bed = f"bed-{i}"
        self.door = f"door-{i}"
        self.dist = {}
        for pair, m in person.distances_m.items():
            a, _, b = pair.partition("-")
            self.dist[(a, b)] = self.dist[(b, a)] = m * 100
        self.onsets: list[tuple[int, str]] = []
        self.out: list[tuple[int, str, str, Any]] = []

    def _ms(self, t: datetime) -> int:
        return int(t.timestamp() * 1000)

    def _latency(self) -> float:
        mean, sd = PIR_LATENCY_S
        return min(0.8, max(0.05, self.rng.gauss(mean, sd)))

    def _onset(self, room: str, t_s: float) -> None:
        self.onsets.append((int(t_s * 1000), room))

    def _walk(self, t: float, frm: str, to: str, v: float, truth: DayTruth | None,
              stand_s: float = 0.0) -> float:
        """Walk frm -> hall -> to starting at t (epoch s); returns arrival time."""
        rng = self.rng
        t += stand_s
        if frm != "hall":
            t += self.dist[(frm, "hall")] / v
            self._onset("hall", t + self._latency())
            hall_at = t
        else:
            hall_at = t
            self._onset("hall", t + self._latency())
        if to == "hall":
            return t
        pause = rng.uniform(5, 40) if rng.random() < PAUSE_PROBABILITY else 0.0
        arrive = hall_at + pause + self.dist[("hall", to)] / v
        self._onset(to, arrive + self._latency())
        if truth is not None and frm != "hall" and pause == 0.0:
            truth.transits.append((self.onsets[-2][0], v))
        return arrive

    def day(self, k: int) -> DayTruth:
        """Readings for day k (00:00 to 24:00 local, then the night after it)."""
        rng, p = self.rng, self.p
        d = self.first + timedelta(days=k)
        base = datetime.combine(d, time(0), self.tz).timestamp()
        var = p.variability
        v_day = max(20.0, rng.gauss(p.speed_trend(k), var.day_speed_cv * p.base_speed))
        rate = p.base_walks * p.activity_factor(k)
        if var.walks_shape > 0:  # heavy-tailed: some days few walks or none
            rate *= rng.gammavariate(var.walks_shape, 1 / var.walks_shape)
        walks = poisson(rng, rate)
        nights = poisson(rng, p.nocturia(k))
        truth = DayTruth(d, round(v_day, 2), nights, walks,
                         fell=rng.random() < p.daily_hazard(k))
        # The day: out of bed between 06:30 and 07:30, walks spread over 07:45-21:30.
        wake = base + 6.5 * 3600 + rng.uniform(0, 3600)
        self.out.append((int(wake * 1000), "bed", self.bed, False))
        self._onset("bedroom", wake + 3)
        here = "kitchen"
        t = self._walk(wake + 3, "bedroom", here, v_day * NIGHT_SPEED_FACTOR, None, 15)
        starts = sorted(rng.uniform(base + 7.75 * 3600, base + 21.5 * 3600)
                        for _ in range(walks))
        last = t
        outing = rng.random() < 0.5 * p.activity_factor(k)
        out_at = base + rng.uniform(10, 16) * 3600
        for s in starts:
            if s - last < WALK_SPACING_MIN * 60:
                continue
            if outing and s > out_at:
                t = self._walk(s, here, "hall", v_day, None)
                back = t + rng.uniform(30, 90) * 60
                self.out.append((int((t + 10) * 1000), "contact", self.door, "open"))
                self.out.append((int((t + 20) * 1000), "contact", self.door, "closed"))
                self.out.append((int(back * 1000), "contact", self.door, "open"))
                self.out.append((int((back + 10) * 1000), "contact", self.door, "closed"))
                self._onset("hall", back + 15)
                here, last, outing = "hall", back + 15, False
                continue
            if s < last + WALK_SPACING_MIN * 60:
                continue
            to = rng.choice([r for r in DAY_ROOMS if r != here])
            last = self._walk(s, here, to, v_day * (1 + rng.gauss(0, var.walk_speed_cv)),
                              truth)
            here = to
        # Bedtime 22:00-23:30 by way of the bathroom; night visits; then the next morning
        # belongs to day k+1.
        bed_at = base + 22 * 3600 + rng.uniform(0, 5400)
        t = self._walk(max(bed_at - 600, last + 60), here, "bathroom", v_day, None)
        t = self._walk(t + 240, "bathroom", "bedroom", v_day, None)
        self.out.append((int((t + 30) * 1000), "bed", self.bed, True))
        sleep_end = base + 24 * 3600 + 6.25 * 3600
        v_night = v_day * NIGHT_SPEED_FACTOR
        slots = sorted(rng.uniform(t + 1800, sleep_end - 1800) for _ in range(nights))
        prev = t
        for s in slots:
            s = max(s, prev + 60)
            self.out.append((int(s * 1000), "bed", self.bed, False))
            self._onset("bedroom", s + 3)
            a = self._walk(s + 3, "bedroom", "bathroom", v_night, None, rng.uniform(10, 20))
            back = self._walk(a + rng.uniform(180, 480), "bathroom", "bedroom", v_night, None)
            self.out.append((int((back + 20) * 1000), "bed", self.bed, True))
            prev = back + 20
        return truth

    def rows(self) -> list[tuple[int, str, str, Any]]:
        """Everything generated so far as time-ordered (ts_ms, kind, device, value), with
        each PIR's occupancy clearing 90 s after its last movement."""
        out = list(self.out)
        by_room: dict[str, list[int]] = {}
        for ts, room in sorted(self.onsets):
            by_room.setdefault(room, []).append(ts)
        for room, times in by_room.items():
            dev = self.pir[room]
            for j, ts in enumerate(times):
                out.append((ts, "motion", dev, True))
                nxt = times[j + 1] if j + 1 < len(times) else None
                if nxt is None or nxt - ts > MOTION_CLEAR_S * 1000:
                    out.append((ts + MOTION_CLEAR_S * 1000, "motion", dev, False))
        out.sort(key=lambda r: r[0])
        self.onsets.clear()
        self.out.clear()
        return out


def simulate(person: Person, first: date, days: int, tz: ZoneInfo, seed: int
             ) -> tuple[list[tuple[int, str, str, Any]], list[DayTruth]]:
    """All readings and the truth of `days` days of one resident (the direct path)."""
    player = DayPlayer(person, first, tz, seed)
    truth = [player.day(k) for k in range(days)]
    return player.rows(), truth


def as_events(rows: list[tuple[int, str, str, Any]]) -> list[SimEvent]:
    """Readings as events for the firmware stubs (the real-pipeline path)."""
    return [SimEvent(ts, dev, kind, value, "cohort") for ts, kind, dev, value in rows]


def fall_labels(truth: list[DayTruth], horizon: int) -> list[bool]:
    """Per day: whether a fall happens in the `horizon` days after it."""
    fell = [t.fell for t in truth]
    return [any(fell[i + 1:i + 1 + horizon]) for i in range(len(fell))]
