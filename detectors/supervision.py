"""Digital night supervision, pure part: when checks happen and what they conclude.

`check_instants` turns a plan's local check times into UTC instants for one night, right
across daylight-saving changes (docs/supervision.md): on the night the clocks go back a 02:30
check happens once (the first 02:30); on the night they go forward a 02:30 check, which
does not exist, happens at 03:00.

`evaluate` looks at the latest state of a home at a check time and concludes `ok`,
`attention` or `unknown`, with the evidence it used (or `away` during a planned absence).
A needed sensor that is offline or stale makes the check `unknown`, never `ok`: silence is
not "all well".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from detectors.model import NOON
from detectors.occupancy import Occupancy

Outcome = Literal["ok", "attention", "unknown", "away"]


def _exists(local: datetime, tz: ZoneInfo) -> bool:
    """Whether a naive local wall time exists in tz (not inside a spring-forward gap)."""
    aware = local.replace(tzinfo=tz)
    back = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return back == local


def check_instants(evening: date, times: list[str], tz: ZoneInfo) -> list[datetime]:
    """UTC instants of the night that starts on the evening of `evening`.

    Times from noon on belong to that evening, earlier times to the next morning.
    """
    out = []
    for text in times:
        t = time.fromisoformat(text)
        day = evening if t >= NOON else evening + timedelta(days=1)
        local = datetime.combine(day, t)
        # Inside a spring-forward gap: the first minute that exists (03:00 for 02:30).
        for _ in range(180):
            if _exists(local, tz):
                break
            local += timedelta(minutes=1)
        out.append(local.replace(tzinfo=tz, fold=0).astimezone(UTC))  # fold 0: first 02:30
    return sorted(out)


@dataclass(frozen=True)
class Reading:
    """The newest value of one kind from one device, and when the device was last heard."""

    device_id: str
    kind: str
    value: Any
    ts: datetime
    last_seen: datetime
    report_interval_s: int
    room: str | None = None
    offline: bool = False  # the device said so (availability), whatever its last message


@dataclass
class HomeState:
    """What the gateway knows about a home at a moment."""

    bed: list[Reading] = field(default_factory=list)
    exterior_doors: list[Reading] = field(default_factory=list)
    motion: list[Reading] = field(default_factory=list)  # newest `true` per PIR
    links: list[Reading] = field(default_factory=list)  # every device, any kind
    inside: Reading | None = None  # newest sign of presence inside, from any device
    occupancy: Occupancy | None = None  # at home, away, planned (None: not followed)
    passage: datetime | None = None  # newest passage through the exterior door


@dataclass(frozen=True)
class CheckResult:
    """The journal entry of one check."""

    outcome: Outcome
    reasons: list[str]
    evidence: list[dict[str, Any]]


def _age(r: Reading, at: datetime) -> float:
    return (at - r.ts).total_seconds()


def _stale(r: Reading, at: datetime) -> bool:
    return r.offline or (at - r.last_seen).total_seconds() > r.report_interval_s


def _evidence(criterion: str, r: Reading | None, at: datetime, outcome: Outcome
              ) -> dict[str, Any]:
    if r is None:
        return {"criterion": criterion, "outcome": outcome, "device_id": None}
    return {"criterion": criterion, "outcome": outcome, "device_id": r.device_id,
            "kind": r.kind, "value": r.value, "age_s": round(_age(r, at)),
            "last_seen_age_s": round((at - r.last_seen).total_seconds())}


def _away(home: HomeState, at: datetime) -> CheckResult | None:
    """A check during a planned absence is `away`: journalled, never an alert."""
    occ = home.occupancy
    if occ is None or not occ.away or occ.source != "planned" or occ.planned is None:
        return None
    p = occ.planned
    reason = f"away (planned){': ' + p.reason if p.reason else ''}"
    return CheckResult("away", [reason], [{
        "criterion": "occupancy", "outcome": "away", "source": "planned",
        "since": p.start.isoformat(), "until": p.end.isoformat(), "reason": p.reason}])


def evaluate(all_well: list[str], at: datetime, home: HomeState,
             bathroom_long_minutes: float = 30,
             bathroom_rooms: frozenset[str] = frozenset({"bathroom", "toilet"}),
             bed_grace_minutes: float = 20, away_after_minutes: float = 10) -> CheckResult:
    """Conclude a check from the home's latest state.

    During a planned absence the check is `away` and nothing else is judged. Away without
    a plan (the door and silence, or the position alarm) is attention, and only the
    criteria that still mean something (door, sensors) are judged besides.
    `in_bed` also holds for someone who got up less than `bed_grace_minutes` ago and has
    been seen moving in the home since (a toilet visit: a look-in would find them on the
    way); up longer, or no movement seen since getting up, is attention.
    attention wins over unknown (it is actionable); unknown wins over ok.
    """
    planned = _away(home, at)
    if planned is not None:
        return planned
    outcomes: list[Outcome] = []
    reasons: list[str] = []
    evidence: list[dict[str, Any]] = []

    def note(criterion: str, outcome: Outcome, reason: str | None, r: Reading | None,
             **extra: Any) -> None:
        outcomes.append(outcome)
        evidence.append({**_evidence(criterion, r, at, outcome), **extra})
        if reason:
            reasons.append(reason)

    occ = home.occupancy
    away = occ is not None and occ.away
    if away:
        assert occ is not None
        since = occ.since.isoformat() if occ.since else None
        source = {"door": "the exterior door and no movement inside since",
                  "geofence": "the position alarm is outside the home area"}.get(
                      occ.source or "", occ.source or "")
        note("occupancy", "attention", f"not at home since {since} ({source})", None,
             source=occ.source, since=since)

    if "in_bed" in all_well and not away:
        bed = max(home.bed, key=lambda r: r.ts, default=None)
        if bed is None:
            note("in_bed", "unknown", "no bed sensor reading", None)
        elif _stale(bed, at):
            note("in_bed", "unknown", f"bed sensor {bed.device_id} silent", bed)
        elif bed.value is True:
            note("in_bed", "ok", None, bed)
        elif _age(bed, at) < bed_grace_minutes * 60 and (
                not home.motion or any(m.ts >= bed.ts for m in home.motion)):
            note("in_bed", "ok", None, bed)  # up briefly and moving about
        elif _age(bed, at) < bed_grace_minutes * 60:
            note("in_bed", "attention", f"out of bed for {_age(bed, at) / 60:.0f} min, no "
                 "movement seen since", bed)
        else:
            note("in_bed", "attention", f"out of bed for {_age(bed, at) / 60:.0f} min", bed)

    if "door_closed" in all_well:
        if not home.exterior_doors:
            note("door_closed", "unknown", "no exterior door sensor", None)
        for door in home.exterior_doors:
            if _stale(door, at):
                note("door_closed", "unknown", f"door sensor {door.device_id} silent", door)
            elif door.value == "closed":
                note("door_closed", "ok", None, door)
            else:
                note("door_closed", "attention", f"door {door.device_id} open", door)

    if "in_apartment" in all_well and not away:
        bed_now = max(home.bed, key=lambda r: r.ts, default=None)
        in_bed = bed_now is not None and bed_now.value is True and not _stale(bed_now, at)
        inside = home.inside
        passage_min = None if home.passage is None or (
            inside is not None and home.passage <= inside.ts) \
            else (at - home.passage).total_seconds() / 60
        state = occ.state if occ is not None else "unknown"
        if in_bed:
            note("in_apartment", "ok", None, bed_now)  # in bed is at home
        elif passage_min is not None and passage_min < away_after_minutes:
            note("in_apartment", "unknown", f"the exterior door was used {passage_min:.0f} "
                 "min ago and nothing has moved inside since", None)
        elif state == "home":
            note("in_apartment", "ok", None, inside, occupancy_since=(
                occ.since.isoformat() if occ is not None and occ.since else None))
        else:
            reason = (occ.reason if occ is not None else None) or "no sign of presence"
            note("in_apartment", "unknown", reason, inside)

    if "not_in_bathroom_long" in all_well and not away:
        latest = max(home.motion, key=lambda r: r.ts, default=None)
        bed_back = max((b.ts for b in home.bed if b.value is True), default=None)
        if latest is not None and latest.room in bathroom_rooms and \
                (bed_back is None or bed_back < latest.ts) and \
                _age(latest, at) >= bathroom_long_minutes * 60:
            note("not_in_bathroom_long", "attention",
                 f"in the bathroom for {_age(latest, at) / 60:.0f} min", latest)
        else:
            note("not_in_bathroom_long", "ok", None, latest)

    if "sensors_online" in all_well:
        silent = [r for r in home.links if _stale(r, at)]
        for r in silent:
            note("sensors_online", "unknown", f"sensor {r.device_id} silent", r)
        if not silent:
            note("sensors_online", "ok", None, None)

    if "attention" in outcomes:
        result: Outcome = "attention"
    elif "unknown" in outcomes or not outcomes:
        result = "unknown"
        if not outcomes:
            reasons.append("the plan names nothing to check")
    else:
        result = "ok"
    return CheckResult(result, reasons, evidence)
