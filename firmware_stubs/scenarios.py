"""Scripted-incident scenarios: play resident-nights through the real pipeline and score
the alerts against the truth (recall, time to alert, false alerts).

Used by tests/test_scenarios.py (a small run that asserts recall) and bench/scenarios.py
(the 200 resident-night report in docs/detectors.md).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from firmware_stubs.home import (
    INCIDENT_ALERTS,
    NightTruth,
    SimEvent,
    last_complete_night,
    plan_nights,
)
from firmware_stubs.player import Player

# One incident every other resident-night; staff visits every fourth night.
INCIDENT_CYCLE: tuple[str | None, ...] = (
    None, "fall", None, "bed_exit_no_return", None, "wandering", None, "sensor_dies",
    None, "sos")
PRIORITY = {"fall": 1, "sos": 1, "wandering": 1, "bed_exit_no_return": 2, "sensor_dies": 3}
MATCH_WINDOW_MS = 60 * 60 * 1000


def scenario_registry(residents: int, site: str) -> dict[str, Any]:
    """Homes with PIRs in four rooms, a native bed sensor, door, lock and position alarm."""
    out = []
    for i in range(residents):
        rid = f"r-{2000 + i}"
        dev = [{"id": f"{room}-pir-{i}", "profile": "zigbee2mqtt.occupancy",
                "source": f"zigbee2mqtt/{room}-pir-{i}", "room": room}
               for room in ("hall", "bedroom", "bathroom", "kitchen")]
        dev += [{"id": f"bed-{i}", "profile": "tillsyn.native",
                 "source": f"tillsyn/v1/{site}/bed-{i}", "room": "bedroom"},
                {"id": f"door-{i}", "profile": "zigbee2mqtt.contact",
                 "source": f"zigbee2mqtt/door-{i}", "room": "entrance", "exterior": True},
                {"id": f"lock-{i}", "profile": "zigbee2mqtt.lock",
                 "source": f"zigbee2mqtt/lock-{i}", "room": "entrance"},
                {"id": f"alarm-{i}", "profile": "owntracks.location",
                 "source": f"owntracks/{rid}/alarm"}]
        out.append({"id": rid, "name": f"Scenario {i}", "unit": "unit-a",
                    "consent": ["motion", "contact", "bed", "lock", "position", "sos", "fall"],
                    "devices": dev})
    return {"units": [{"id": "unit-a", "name": "Scenario unit"}],
            "staff": [{"id": "s-17", "name": "Night nurse", "unit": "unit-a",
                       "role": "night_staff", "lock_credentials": ["keypad:2"]}],
            "residents": out}


@dataclass
class ScenarioReport:
    """Scores of one scenario run."""

    resident_nights: int
    messages: int
    incidents: Counter[str] = field(default_factory=Counter)
    detected: Counter[str] = field(default_factory=Counter)
    delays_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    false_alerts: list[dict[str, Any]] = field(default_factory=list)
    staff_visits_planned: int = 0
    alerts_by_kind: Counter[str] = field(default_factory=Counter)

    def recall(self, kind: str) -> float:
        """Share of incidents of a kind whose primary alert was raised."""
        return self.detected[kind] / self.incidents[kind] if self.incidents[kind] else 1.0

    @property
    def false_per_resident_night(self) -> float:
        """False alerts per resident-night."""
        return len(self.false_alerts) / self.resident_nights

    def lines(self) -> list[str]:
        """The report as text."""
        out = [f"resident-nights: {self.resident_nights}, device messages: {self.messages}, "
               f"staff visits played: {self.staff_visits_planned}"]
        for kind in sorted(self.incidents):
            d = sorted(self.delays_s[kind])
            span = f"{d[0]:.0f}-{d[-1]:.0f} s" if d else "-"
            out.append(f"  {kind:20} P{PRIORITY[kind]}: {self.detected[kind]}/"
                       f"{self.incidents[kind]} raised (recall {self.recall(kind):.0%}), "
                       f"incident to alert (event time) {span}")
        out.append(f"alerts by kind: {dict(sorted(self.alerts_by_kind.items()))}")
        out.append(f"false alerts: {len(self.false_alerts)} = "
                   f"{self.false_per_resident_night:.3f} per resident-night")
        for fa in self.false_alerts[:10]:
            out.append(f"  false: {fa['kind']} {fa['resident_id']} {fa.get('device_id')} at "
                       f"{datetime.fromtimestamp(fa['event_ms'] / 1000, UTC).isoformat()}")
        return out


def run(broker_url: str, rt: Any, nights: int, seed: int,
        now: datetime | None = None, *, incidents: tuple[str | None, ...] = INCIDENT_CYCLE,
        incident_offset: timedelta | None = None, staff_visit_every: int = 4,
        events_out: list[SimEvent] | None = None) -> tuple[list[NightTruth], int]:
    """Play `nights` nights of every home through the running gateway `rt`, one night at a
    time; after each night the night staff resolve whatever is still open (as they would),
    so a condition that recurs the next night is a new alert. Returns truth and messages
    (and, into `events_out`, every event played)."""
    tz = ZoneInfo(rt.config.site.timezone)
    first = last_complete_night(now or datetime.now(UTC), tz, nights_back=nights)
    truths: list[NightTruth] = []
    sent = 0
    # The gateway's count is cumulative (an earlier run() on the same gateway counts too).
    committed_before = rt.ingest.delivered_messages
    player = Player(broker_url, rt.registry, client_id="tillsyn-scenario")
    try:
        for n in range(nights):
            start = first + timedelta(days=n)
            events, night = plan_nights(rt.registry, start, 1, seed + n, tz,
                                        staff_visit_every=staff_visit_every,
                                        incidents=incidents, night_offset=n,
                                        incident_offset=incident_offset)
            if events_out is not None:
                events_out.extend(events)
            before = player.published
            player.play(events, speed=0)
            sent += player.published - before
            deadline = time.monotonic() + 300
            while rt.ingest.delivered_messages - committed_before < sent and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            rt.detectors.tick()
            for a in rt.alerts.list_alerts(status="unresolved", limit=100_000):
                rt.alerts.resolve(a["id"], "s-17", "visited")
            truths.extend(night)
    finally:
        player.close()
    return truths, sent


def score(truths: list[NightTruth], alerts: list[dict[str, Any]], messages: int
          ) -> ScenarioReport:
    """Match alerts to scripted incidents; everything unmatched is a false alert."""
    rep = ScenarioReport(resident_nights=len(truths), messages=messages)
    rep.staff_visits_planned = sum(t.staff_visits for t in truths)
    by_resident: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in alerts:
        by_resident[a["resident_id"]].append(a)
        rep.alerts_by_kind[a["kind"]] += 1
    explained: set[int] = set()
    for t in truths:
        for kind, ts in t.incidents:
            rep.incidents[kind] += 1
            expected = INCIDENT_ALERTS[kind]
            matches = [a for a in by_resident[t.resident_id]
                       if a["kind"] in expected and ts <= a["event_ms"] <= ts + MATCH_WINDOW_MS]
            explained.update(a["id"] for a in matches)
            primary = [a for a in matches if a["kind"] == expected[0]]
            if primary:
                rep.detected[kind] += 1
                rep.delays_s[kind].append((min(a["event_ms"] for a in primary) - ts) / 1000)
    rep.false_alerts = [a for a in alerts if a["id"] not in explained]
    return rep
