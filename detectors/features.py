"""Daily movement features of one resident from stored observations (pure, no I/O).

A *day* D is the local calendar day D for daytime features and the night window that starts
on the evening of D for night features (the same convention as the IBIC indicators), so a
day is complete when the night after it has ended. Definitions in docs/fall-risk.md.

In-home walking speed follows Hagler et al. (2010): a *transit* is a motion onset in one
room followed by an onset in another room whose sensor is a known walking distance away
(the registry's `sensor_distances_m`); speed = distance / time between the two onsets.
Transits that cannot be walks are dropped (slower than 20 cm/s, i.e. a pause on the way;
faster than 180 cm/s; starting within a minute of getting out of bed, which is standing
up, not walking; or in the night window), and the day's speed is the interquartile mean
(the mean of the middle half, as robust as the median to a stray pause or a missed onset but
less noisy) of at least `MIN_TRANSITS` transits.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from detectors.absence import out_of_home

MIN_SPEED_CM_S = 20.0
MAX_SPEED_CM_S = 180.0
MIN_TRANSITS = 5
AFTER_BED_EXIT_MS = 60_000
BATHROOM_VISIT_GAP_MS = 10 * 60_000
BATHROOM_ROOMS = frozenset({"bathroom", "toilet", "wc", "badrum"})
DAY_FEATURES = ("walking_speed", "transits", "activity", "room_transitions",
                "night_bed_exits", "night_bathroom_visits", "time_in_bed", "time_out")
# Every stored field of a day (the training CSV columns after resident_id and date).
DAY_FIELDS = ("observations",) + DAY_FEATURES


@dataclass(frozen=True)
class HomeSpec:
    """What the features need to know about one home."""

    device_room: dict[str, str]
    bed_devices: frozenset[str]
    exterior_devices: frozenset[str]
    distances_cm: dict[tuple[str, str], float]
    tz: ZoneInfo
    night_start: time
    night_end: time

    @staticmethod
    def parse_distances(metres: dict[str, float]) -> dict[tuple[str, str], float]:
        """`{"hall-bedroom": 3.2}` -> both directions in centimetres."""
        out: dict[tuple[str, str], float] = {}
        for pair, m in metres.items():
            a, sep, b = pair.partition("-")
            if not sep or not a or not b or m <= 0:
                raise ValueError(f"sensor distance {pair!r}: {m}: want 'room-room': metres > 0")
            out[(a, b)] = out[(b, a)] = m * 100.0
        return out


@dataclass
class Transit:
    """One walk between two sensors."""

    ts_ms: int
    start_room: str
    end_room: str
    distance_cm: float
    seconds: float

    @property
    def speed_cm_s(self) -> float:
        """Distance over time."""
        return self.distance_cm / self.seconds


@dataclass
class DayFeatures:
    """One resident-day. None: could not be measured that day (no data, or no sensor)."""

    day: date
    observations: int = 0
    walking_speed: float | None = None  # cm/s, median of the day's transits
    transits: int = 0
    activity: int | None = None  # motion onsets and room-sensor events
    room_transitions: int | None = None
    night_bed_exits: int | None = None
    night_bathroom_visits: int | None = None
    time_in_bed: float | None = None  # hours, 12:00 to 12:00
    time_out: float | None = None  # hours out of home that day
    speeds: list[float] = field(default_factory=list, repr=False)

    @classmethod
    def from_dict(cls, day: date, data: dict[str, Any]) -> DayFeatures:
        """From the JSON form (the fields in DAY_FIELDS that are present)."""
        f = cls(day)
        for k in DAY_FIELDS:
            if k in data:
                setattr(f, k, data[k])
        return f

    def as_dict(self) -> dict[str, Any]:
        """JSON form (without the per-transit speeds)."""
        out = asdict(self)
        out.pop("speeds")
        out["day"] = self.day.isoformat()
        return out


def _local_ms(d: date, t: time, tz: ZoneInfo) -> int:
    return int(datetime.combine(d, t, tz).timestamp() * 1000)


def onsets(rows: Iterable[tuple[int, str, str, Any]], spec: HomeSpec
           ) -> tuple[list[tuple[int, str]], list[tuple[int, bool]], list[tuple[int, str]]]:
    """(motion onsets by room, bed changes, room-sensor events) from time-ordered rows of
    (ts_ms, kind, device_id, value)."""
    motion_state: dict[str, bool] = {}
    bed_state: dict[str, bool] = {}
    contact_state: dict[str, Any] = {}
    on: list[tuple[int, str]] = []
    bed: list[tuple[int, bool]] = []
    events: list[tuple[int, str]] = []
    for ts, kind, device, value in rows:
        room = spec.device_room.get(device)
        if kind == "motion":
            active = value is True
            if active and not motion_state.get(device, False) and room is not None:
                on.append((ts, room))
                events.append((ts, room))
            motion_state[device] = active
        elif kind == "bed" and device in spec.bed_devices:
            occupied = bool(value)
            if bed_state.get(device) != occupied:
                bed.append((ts, occupied))
            bed_state[device] = occupied
        elif kind == "contact" and room is not None and device not in spec.exterior_devices:
            # Cupboards, fridge and inner doors (the van Kasteren and Tapia homes).
            if value == "open" and contact_state.get(device) != "open":
                events.append((ts, room))
            contact_state[device] = value
    return on, bed, events


def interquartile_mean(xs: Sequence[float]) -> float:
    """The mean of the values left after dropping the lowest and highest quarter (n // 4
    from each end)."""
    v = sorted(xs)
    k = len(v) // 4
    return statistics.fmean(v[k:len(v) - k])


def transits(on: Sequence[tuple[int, str]], bed: Sequence[tuple[int, bool]],
             spec: HomeSpec) -> list[Transit]:
    """Walks between consecutive onsets in rooms a known distance apart."""
    exits = [ts for ts, occupied in bed if not occupied]
    out: list[Transit] = []
    for (t1, a), (t2, b) in zip(on, on[1:], strict=False):
        if a == b or t2 <= t1:
            continue
        d = spec.distances_cm.get((a, b))
        if d is None:
            continue
        seconds = (t2 - t1) / 1000
        speed = d / seconds
        if not MIN_SPEED_CM_S <= speed <= MAX_SPEED_CM_S:
            continue
        i = bisect.bisect_right(exits, t1)
        if i and t1 - exits[i - 1] <= AFTER_BED_EXIT_MS:
            continue
        out.append(Transit(t1, a, b, d, seconds))
    return out


def daily(rows: Sequence[tuple[int, str, str, Any]], spec: HomeSpec, first: date,
          last: date) -> list[DayFeatures]:
    """Features for each day first..last from the resident's observations, time-ordered,
    covering at least first 00:00 to last+1 12:00 local (earlier rows give the state)."""
    tz = spec.tz
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    on, bed, events = onsets(rows, spec)
    walks = transits(on, bed, spec)
    has_bed = bool(spec.bed_devices)
    bath_on = [ts for ts, room in on if room in BATHROOM_ROOMS]
    has_bath = any(r in BATHROOM_ROOMS for r in spec.device_room.values())
    has_room_sensors = any(r for r in spec.device_room.values())
    seen = [r[0] for r in rows]
    absences = out_of_home(list(rows), set(spec.exterior_devices),
                           seen[-1] if seen else 0) if rows else []
    # Time out needs the position alarm's geofence, or motion sensors to tell an exit from
    # someone opening the door (detectors/absence.py); a door alone cannot say.
    can_tell_out = bool(on) or any(r[1] == "geofence" for r in rows)
    ev_ts = [ts for ts, _ in events]
    walk_ts = [w.ts_ms for w in walks]
    out: list[DayFeatures] = []
    for d in days:
        day0, day1 = _local_ms(d, time(0), tz), _local_ms(d + timedelta(days=1), time(0), tz)
        n0 = _local_ms(d, spec.night_start, tz)
        end_day = d + timedelta(days=1) if spec.night_end <= spec.night_start else d
        n1 = _local_ms(end_day, spec.night_end, tz)
        noon0 = _local_ms(d, time(12), tz)
        noon1 = _local_ms(d + timedelta(days=1), time(12), tz)
        f = DayFeatures(d)
        f.observations = bisect.bisect_left(seen, n1) - bisect.bisect_left(seen, day0)
        if f.observations == 0:
            out.append(f)
            continue
        # Daytime walks: outside the night window (the part of day d before n0, after the
        # previous night's end).
        prev_end = _local_ms(d, spec.night_end, tz) if end_day != d else day0
        lo, hi = bisect.bisect_left(walk_ts, prev_end), bisect.bisect_left(walk_ts, n0)
        f.speeds = [round(w.speed_cm_s, 2) for w in walks[lo:hi]]
        f.transits = len(f.speeds)
        if f.transits >= MIN_TRANSITS:
            f.walking_speed = round(interquartile_mean(f.speeds), 2)
        if has_room_sensors:
            lo, hi = bisect.bisect_left(ev_ts, day0), bisect.bisect_left(ev_ts, day1)
            f.activity = hi - lo
            rooms = [room for _, room in events[lo:hi]]
            f.room_transitions = sum(1 for a, b in zip(rooms, rooms[1:], strict=False)
                                     if a != b)
        if has_bed:
            f.night_bed_exits = sum(1 for ts, occ in bed if not occ and n0 <= ts < n1)
            f.time_in_bed = round(_occupied_ms(bed, noon0, noon1) / 3_600_000, 3)
        if has_bath:
            # Nocturia: visits after going to bed (the first time in bed in the night
            # window, if there is a bed sensor), not the evening routine before it.
            asleep: int | None = n0
            if has_bed and not _state_at(bed, n0):
                asleep = next((ts for ts, occ in bed if occ and n0 <= ts < n1), None)
            f.night_bathroom_visits = 0 if asleep is None else \
                _visits([t for t in bath_on if asleep <= t < n1])
        f.time_out = None if not can_tell_out else round(sum(
            max(0, min(o.end_ms if o.end_ms is not None else day1, day1) - max(o.start_ms, day0))
            for o in absences) / 3_600_000, 3)
        out.append(f)
    return out


def _occupied_ms(bed: Sequence[tuple[int, bool]], lo: int, hi: int) -> int:
    total = 0
    i = bisect.bisect_right(bed, (lo, True))
    state = bed[i - 1][1] if i else False
    since = lo
    for ts, occupied in bed[i:]:
        if ts >= hi:
            break
        if state:
            total += ts - since
        state, since = occupied, ts
    if state:
        total += hi - since
    return total


def _state_at(bed: Sequence[tuple[int, bool]], ms: int) -> bool:
    i = bisect.bisect_right(bed, (ms, True))
    return bed[i - 1][1] if i else False


def _visits(bath: list[int]) -> int:
    """Bathroom onsets more than BATHROOM_VISIT_GAP_MS apart count as separate visits."""
    n, last = 0, None
    for ts in bath:
        if last is None or ts - last > BATHROOM_VISIT_GAP_MS:
            n += 1
        last = ts
    return n
