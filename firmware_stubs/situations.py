"""Everyday situations the real homes showed, scripted on one home each, played through the
real pipeline over three nights and scored: which alerts each night must raise (with the
priority), and that nothing else is raised.

Each situation is what a real recording did to an earlier version of the rules
(docs/detectors.md, "Real homes"): a daytime absence, a multi-day absence with stray
pulses, a planned absence, an evening out past the night's start, a shower with ongoing
movement, a stray bathroom pulse while asleep, getting up for the day, a bed mat repeating
"not in bed" in its hourly report, and night staff letting themselves in with the keypad
on locks that report it in two other formats. Two bed exits check the graded priority.

Used by tests/test_scenarios.py and bench/scenarios.py.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from detectors.model import night_of
from firmware_stubs.home import HomeLayout, NightPlanner, last_complete_night
from firmware_stubs.player import Player

Plan = Callable[[NightPlanner, datetime, int], None]
NIGHTS = 3


@dataclass(frozen=True)
class Situation:
    """One scripted home over NIGHTS nights (n = 0, 1, 2; each from 21:00 for 24 h)."""

    name: str
    plan: Plan
    expect: dict[int, dict[str, int]] = field(default_factory=dict)  # night -> kind: priority
    bed: str = "tillsyn.native"
    alerts: dict[str, Any] = field(default_factory=dict)  # the resident's alert settings
    planned: tuple[float, float] | None = None  # hours after night 0's 21:00


def h(t: datetime, hours: float) -> datetime:
    """t plus hours."""
    return t + timedelta(hours=hours)


def evening(p: NightPlanner, t: datetime, bedtime: float = 1.5) -> None:
    """Toilet, bedroom, into bed `bedtime` hours after 21:00."""
    p.motion("hall", h(t, bedtime - 0.2))
    p.motion("bathroom", h(t, bedtime - 0.15))
    p.motion("hall", h(t, bedtime - 0.06))
    p.motion("bedroom", h(t, bedtime - 0.03))
    p.bed(True, h(t, bedtime))


def morning(p: NightPlanner, t: datetime, wake: float = 10.25) -> None:
    """Out of bed at 07:15 (10.25 h after 21:00) and about."""
    p.bed(False, h(t, wake))
    p.motion("bedroom", h(t, wake + 0.01))
    p.motion("hall", h(t, wake + 0.03))
    p.motion("kitchen", h(t, wake + 0.06))


def day(p: NightPlanner, t: datetime, start: float = 10.6, end: float = 23.9,
        skip: tuple[float, float] | None = None) -> None:
    """Movement in the day rooms every 40 minutes (not inside `skip`)."""
    x = start
    rooms = ("kitchen", "hall", "bedroom")
    k = 0
    while x < end:
        if skip is None or not skip[0] <= x < skip[1]:
            p.motion(rooms[k % 3], h(t, x))
        x += 0.67
        k += 1


def normal(p: NightPlanner, t: datetime, n: int) -> None:
    """An ordinary night and day."""
    evening(p, t)
    morning(p, t)
    day(p, t)


def go_out(p: NightPlanner, at: datetime) -> None:
    """Through the hall and out of the front door, locking it with the key."""
    p.motion("hall", at - timedelta(seconds=40))
    p.door(True, at)
    p.door(False, at + timedelta(seconds=12))
    p.lock("locked", at + timedelta(seconds=20), "key", None)


def come_in(p: NightPlanner, at: datetime) -> None:
    """Unlock with the key, in through the door, movement in the hall."""
    p.lock("unlocked", at - timedelta(seconds=15), "key", None)
    p.door(True, at)
    p.door(False, at + timedelta(seconds=10))
    p.motion("hall", at + timedelta(seconds=30))
    p.motion("kitchen", at + timedelta(minutes=3))


def daytime_absence(p: NightPlanner, t: datetime, n: int) -> None:
    """Out from 10:00 to 16:00 every day."""
    evening(p, t)
    morning(p, t)
    go_out(p, h(t, 13))
    come_in(p, h(t, 19))
    day(p, t, skip=(12.9, 19.2))


def multi_day_absence(p: NightPlanner, t: datetime, n: int) -> None:
    """Leaves at 11:00 after night 0 and is not back; the empty home's PIRs fire alone."""
    if n == 0:
        evening(p, t)
        morning(p, t)
        go_out(p, h(t, 14))
        day(p, t, end=13.8)
    else:
        p.motion("kitchen", h(t, 6))        # 03:00: a stray pulse
        p.motion("bathroom", h(t, 17))      # 14:00: another, elsewhere, hours apart


def planned_absence(p: NightPlanner, t: datetime, n: int) -> None:
    """Away from before night 0 (planned: from 18:00) until 15:00 after night 1; the plan
    ends at 21:00 that evening."""
    if n == 1:
        come_in(p, h(t, 18))
        day(p, t, start=18.1)
    elif n == 2:
        normal(p, t, n)


def evening_out(p: NightPlanner, t: datetime, n: int) -> None:
    """Night 1: out from 21:30 until 01:00."""
    if n != 1:
        normal(p, t, n)
        return
    go_out(p, h(t, 0.5))
    come_in(p, h(t, 4))
    p.motion("bedroom", h(t, 4.1))
    p.bed(True, h(t, 4.2))
    morning(p, t)
    day(p, t)


def shower(p: NightPlanner, t: datetime, n: int) -> None:
    """A 40-minute shower at 09:00, moving all the time."""
    evening(p, t)
    morning(p, t)
    p.motion("hall", h(t, 11.95))
    x = 12.0
    while x < 12.67:
        p.motion("bathroom", h(t, x))
        x += 2 / 60
    p.motion("hall", h(t, 12.7))
    day(p, t, skip=(11.9, 12.8))


def stray_bathroom_pulse(p: NightPlanner, t: datetime, n: int) -> None:
    """Asleep; the bathroom PIR fires once at 02:30."""
    normal(p, t, n)
    p.motion("bathroom", h(t, 5.5))


def getting_up_for_the_day(p: NightPlanner, t: datetime, n: int) -> None:
    """Up for the day at 05:05 (her rise time is 05:00)."""
    evening(p, t)
    morning(p, t, wake=8.08)
    day(p, t, start=8.3)


def late_evening_bed_mat(p: NightPlanner, t: datetime, n: int) -> None:
    """Up until 23:40 with a zigbee bed mat, whose hourly report repeats "not in bed"."""
    p.bed(False, h(t, 0.05))
    for x in (0.5, 1.2, 1.9, 2.5):
        p.motion("kitchen" if x < 2 else "hall", h(t, x))
    evening(p, t, bedtime=2.66)
    morning(p, t)
    day(p, t)


def keypad_visit(fmt: str) -> Plan:
    """A night nurse lets herself in at 02:00 with keypad user 2; the lock reports it in
    `fmt` (the `action` prefix, or `action_source_name`)."""
    def plan(p: NightPlanner, t: datetime, n: int) -> None:
        normal(p, t, n)
        p.staff_visit(h(t, 5), 2, fmt)
    return plan


def up_and_still(p: NightPlanner, t: datetime, n: int) -> None:
    """Night 1: up at 02:00, into the kitchen, then nothing moves for an hour."""
    normal(p, t, n)
    if n == 1:
        p.bed(False, h(t, 5))
        p.motion("hall", h(t, 5.01))
        p.motion("kitchen", h(t, 5.03))
        p.motion("bedroom", h(t, 6.05))
        p.bed(True, h(t, 6.06))


def up_and_moving(p: NightPlanner, t: datetime, n: int) -> None:
    """Night 1: up at 02:00 and moving about for 40 minutes, then back to bed."""
    normal(p, t, n)
    if n == 1:
        p.bed(False, h(t, 5))
        for k in range(14):
            p.motion(("hall", "kitchen")[k % 2], h(t, 5.02 + k * 0.05))
        p.motion("bedroom", h(t, 5.7))
        p.bed(True, h(t, 5.72))


SITUATIONS: tuple[Situation, ...] = (
    Situation("daytime_absence", daytime_absence),
    Situation("multi_day_absence", multi_day_absence,
              expect={1: {"not_home_at_night": 2}, 2: {"not_home_at_night": 2}}),
    Situation("planned_absence", planned_absence, planned=(-3, 48)),
    Situation("evening_out", evening_out,
              expect={1: {"not_home_at_night": 2, "door_open_night": 1}}),
    Situation("shower", shower),
    Situation("stray_bathroom_pulse", stray_bathroom_pulse),
    Situation("getting_up_for_the_day", getting_up_for_the_day,
              alerts={"rise_time": "05:00"}),
    Situation("late_evening_bed_mat", late_evening_bed_mat, bed="zigbee2mqtt.bed_mat"),
    Situation("keypad_visit_action_prefix", keypad_visit("action")),
    Situation("keypad_visit_source_name", keypad_visit("source_name")),
    Situation("up_and_still", up_and_still, expect={1: {"bed_exit_no_return": 1}}),
    Situation("up_and_moving", up_and_moving, expect={1: {"bed_exit_no_return": 3}}),
)


def first_night(now: datetime | None = None, tz: ZoneInfo = ZoneInfo("Europe/Stockholm")
                ) -> datetime:
    """21:00 of the first of the NIGHTS complete nights before now."""
    return last_complete_night(now or datetime.now(UTC), tz, nights_back=NIGHTS)


def situation_registry(site: str, first: datetime) -> dict[str, Any]:
    """One home per situation: PIRs in four rooms, a bed sensor, front door, lock; a plan
    of digital checks at 00:30 and 03:30 that the devices can decide; planned absences in
    the registry (they lie in the past, which the API would refuse)."""
    residents = []
    for i, sit in enumerate(SITUATIONS):
        rid = f"r-{3000 + i}"
        dev: list[dict[str, Any]] = [
            {"id": f"{room}-pir-s{i}", "profile": "zigbee2mqtt.occupancy",
             "source": f"zigbee2mqtt/{room}-pir-s{i}", "room": room}
            for room in ("hall", "bedroom", "bathroom", "kitchen")]
        bed_source = f"tillsyn/v1/{site}/bed-s{i}" if sit.bed == "tillsyn.native" \
            else f"zigbee2mqtt/bed-s{i}"
        dev += [{"id": f"bed-s{i}", "profile": sit.bed, "source": bed_source,
                 "room": "bedroom"},
                {"id": f"door-s{i}", "profile": "zigbee2mqtt.contact",
                 "source": f"zigbee2mqtt/door-s{i}", "room": "entrance", "exterior": True},
                {"id": f"lock-s{i}", "profile": "zigbee2mqtt.lock",
                 "source": f"zigbee2mqtt/lock-s{i}", "room": "entrance"}]
        residents.append({
            "id": rid, "name": f"Situation {sit.name}", "unit": "unit-a",
            "consent": ["motion", "contact", "bed", "lock", "sos", "fall"],
            "alerts": sit.alerts, "devices": dev,
            "absences": [] if sit.planned is None else [{
                "start": h(first, sit.planned[0]).isoformat(),
                "end": h(first, sit.planned[1]).isoformat(), "reason": "korttidsboende"}],
            "supervision": {"checks": ["00:30", "03:30"],
                            "all_well": ["in_bed", "in_apartment", "door_closed",
                                         "sensors_online"]}})
    return {"units": [{"id": "unit-a", "name": "Situation unit"}],
            "staff": [{"id": "s-17", "name": "Night nurse", "unit": "unit-a",
                       "role": "night_staff", "lock_credentials": ["keypad:2"]}],
            "residents": residents}


@dataclass
class SituationResult:
    """What one situation raised, against what it must raise."""

    situation: str
    resident_id: str
    missing: list[str] = field(default_factory=list)  # "night n: kind P"
    unexpected: list[str] = field(default_factory=list)
    visits: int = 0
    checks: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Everything expected, nothing else."""
        return not self.missing and not self.unexpected


def run_situations(broker_url: str, rt: Any, first: datetime, seed: int = 1
                   ) -> list[SituationResult]:
    """Play every situation's NIGHTS nights from `first` through the running gateway `rt`
    (its registry from situation_registry); after each night staff resolve what is open."""
    tz = ZoneInfo(rt.config.site.timezone)
    ids = {r.id: i for i, r in enumerate(rt.registry.residents)}
    rng = random.Random(seed)
    player = Player(broker_url, rt.registry, client_id="tillsyn-situations")
    sent = 0
    base = rt.ingest.delivered_messages
    try:
        for n in range(NIGHTS):
            start = first + timedelta(days=n)
            events = []
            for res in rt.registry.residents:
                p = NightPlanner(HomeLayout.from_resident(res), rng, tz)
                SITUATIONS[ids[res.id]].plan(p, start, n)
                p.device_reports(start)
                events += p.events
            events.sort()
            before = player.published
            player.play(events, speed=0)
            sent += player.published - before
            deadline = time.monotonic() + 300
            while rt.ingest.delivered_messages - base < sent and time.monotonic() < deadline:
                time.sleep(0.05)
            rt.detectors.tick()
            for a in rt.alerts.list_alerts(status="unresolved", limit=100_000):
                rt.alerts.resolve(a["id"], "s-17", "visited")
    finally:
        player.close()
    return _score(rt, first, ids, tz)


def _score(rt: Any, first: datetime, ids: dict[str, int], tz: ZoneInfo
           ) -> list[SituationResult]:
    by_resident: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in rt.alerts.list_alerts(limit=100_000):
        by_resident[a["resident_id"]].append(a)
    out = []
    for rid, i in sorted(ids.items(), key=lambda x: x[1]):
        sit = SITUATIONS[i]
        res = SituationResult(sit.name, rid)
        got: dict[int, dict[str, int]] = defaultdict(dict)
        for a in by_resident[rid]:
            n = (night_of(datetime.fromtimestamp(a["event_ms"] / 1000, tz), tz)
                 - first.date()).days
            got[n][a["kind"]] = min(a["priority"], got[n].get(a["kind"], 9))
        for n in range(NIGHTS):
            want = sit.expect.get(n, {})
            for kind, prio in want.items():
                if got[n].get(kind) != prio:
                    res.missing.append(f"night {n}: {kind} P{prio} (got "
                                       f"{got[n].get(kind)})")
            res.unexpected += [f"night {n}: {k} P{p}" for k, p in got[n].items()
                               if k not in want]
        res.visits = len(rt.alerts.visits(rid))
        res.checks = dict(sorted(_outcomes(rt, rid).items()))
        out.append(res)
    return out


def _outcomes(rt: Any, resident_id: str) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for row in rt.journal.entries(resident_id=resident_id, limit=10_000):
        if row["final"]:
            counts[row["outcome"]] += 1
    return counts
