"""The indicator library: definitions, and computation over one resident's facts (no I/O).

Every indicator is computed over a list of dates. A date names a night (the night window
starting that evening) for night indicators and a local calendar day for day indicators.
Only nights and days with data count: a night with no observation from any of the person's
devices is not "a night without intervention" but `nights_without_data`, reported beside
the value (unknown is never OK). Definitions in words: docs/indicators.md.
"""

from __future__ import annotations

import bisect
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from detectors.absence import OutFact

NIGHT_ALERT_KINDS = ("sos", "fall", "bed_exit_no_return", "door_open_night", "left_geofence",
                     "bathroom_long", "check_failed", "check_unknown")


@dataclass(frozen=True)
class Definition:
    """What an indicator measures, its unit and which alerts concern it."""

    id: str
    unit: str  # share | per_night | per_week | hours_per_day | seconds | cm_per_s | level
    better: str  # "higher" or "lower": the usual direction of improvement
    sv: str
    en: str
    alert_kinds: tuple[str, ...] = ()
    available: bool = True
    not_available_reason: str = ""

    def title(self, lang: str) -> str:
        """The indicator's name in `lang`."""
        return self.en if lang == "en" else self.sv


DEFINITIONS: dict[str, Definition] = {d.id: d for d in (
    Definition("nights_without_staff_intervention", "share", "higher",
               "Nätter utan personalinsats", "Nights without staff intervention",
               NIGHT_ALERT_KINDS),
    Definition("digital_checks_passed", "share", "higher",
               "Digitala tillsyner utan anmärkning", "Digital checks passed",
               ("check_failed", "check_unknown")),
    Definition("alerts_per_night", "per_night", "lower",
               "Larm per natt", "Alerts per night", NIGHT_ALERT_KINDS),
    Definition("night_alerts_per_week", "per_week", "lower",
               "Nattlarm per vecka", "Night alerts per week", NIGHT_ALERT_KINDS),
    Definition("independent_bed_exits_returned", "per_night", "higher",
               "Självständiga uppstigningar med återgång till sängen per natt",
               "Independent bed exits that returned, per night", ("bed_exit_no_return",)),
    Definition("walks_returned_home", "per_week", "higher",
               "Promenader ut som slutade hemma per vecka",
               "Walks outside that ended back home, per week",
               ("door_open_night", "left_geofence")),
    Definition("time_out_of_home", "hours_per_day", "higher",
               "Tid utanför hemmet (timmar per dag)", "Time out of home (hours per day)",
               ("door_open_night", "left_geofence")),
    Definition("physical_night_visits", "per_night", "lower",
               "Fysiska nattbesök per natt", "Physical night visits per night"),
    Definition("sleep_disturbed_nights", "share", "lower",
               "Nätter med sömn störd av personal", "Nights with sleep disturbed by staff"),
    Definition("response_time", "seconds", "lower",
               "Svarstid på larm (median, sekunder)", "Response time to alerts (median, s)",
               NIGHT_ALERT_KINDS + ("inactivity", "device_offline", "battery_low")),
    Definition("walking_speed", "cm_per_s", "higher", "Gånghastighet inomhus",
               "In-home walking speed", ("fall", "fall_risk_rise")),
    Definition("fall_risk_level", "level", "lower", "Fallrisknivå", "Fall-risk level",
               ("fall", "fall_risk_rise")),
)}

# Alerts also concern goals by the ICF code the goal is about.
ALERT_ICF: dict[str, tuple[str, ...]] = {
    "door_open_night": ("d450", "d460"), "left_geofence": ("d450", "d460", "d470"),
    "bed_exit_no_return": ("d410", "d420", "b134"), "bathroom_long": ("d530", "d510"),
    "fall": ("d410", "d415", "d420", "d450"), "inactivity": ("d230",),
}


@dataclass(frozen=True)
class Span:
    """A half-open time span in epoch milliseconds."""

    start_ms: int
    end_ms: int

    def contains(self, ms: int) -> bool:
        """Whether `ms` falls in the span."""
        return self.start_ms <= ms < self.end_ms

    def overlap_ms(self, start: int, end: int) -> int:
        """How long [start, end) overlaps the span."""
        return max(0, min(end, self.end_ms) - max(start, self.start_ms))


@dataclass(frozen=True)
class AlertFact:
    """One alert as the indicators see it."""

    id: int
    kind: str
    event_ms: int
    raised_ms: int
    acknowledged_ms: int | None
    resolved_ms: int | None
    outcome: str | None

    @property
    def responded_ms(self) -> int | None:
        """First staff action: acknowledged, or resolved without acknowledging first."""
        times = [t for t in (self.acknowledged_ms, self.resolved_ms) if t is not None]
        return min(times) if times else None


@dataclass(frozen=True)
class VisitFact:
    """A staff visit (lock opened by a staff credential until locked again)."""

    start_ms: int
    end_ms: int | None


@dataclass(frozen=True)
class CheckFact:
    """The final evaluation of one digital check."""

    night: date
    due_ms: int
    outcome: str


@dataclass(frozen=True)
class MovementFact:
    """A day's stored movement features as the indicators see them."""

    walking_speed: float | None  # cm/s
    level: str | None  # fall-risk level, if the day was scored


LEVEL_NUMBER = {"low": 0, "moderate": 1, "high": 2}


@dataclass
class Facts:
    """Everything the indicators read about one resident over a period."""

    resident_id: str
    nights: dict[date, Span]
    days: dict[date, Span]
    observed_ms: list[int]  # sorted times of every observation (coverage)
    bed: list[tuple[int, bool]]  # sorted bed readings (time, occupied)
    has_bed_sensor: bool
    out: list[OutFact]
    visits: list[VisitFact]
    alerts: list[AlertFact]
    checks: list[CheckFact]
    bed_exit_limit_ms: int
    movement: dict[date, MovementFact] = field(default_factory=dict)


@dataclass
class Value:
    """An indicator's value over some dates, with what it rests on."""

    id: str
    value: float | None
    status: str  # "ok", "no_data" or "not_available"
    unit: str
    n: int = 0  # what the value is taken over (nights, days, checks, alerts)
    details: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"id": self.id, "value": self.value, "status": self.status, "unit": self.unit,
                "n": self.n, "details": self.details, "reason": self.reason}


def _has_data(facts: Facts, span: Span) -> bool:
    i = bisect.bisect_left(facts.observed_ms, span.start_ms)
    return i < len(facts.observed_ms) and facts.observed_ms[i] < span.end_ms


def covered(facts: Facts, spans: dict[date, Span], dates: list[date]) -> list[date]:
    """The dates whose span has at least one observation."""
    return [d for d in dates if d in spans and _has_data(facts, spans[d])]


def bed_exits(facts: Facts, span: Span) -> list[tuple[int, int | None]]:
    """(left bed, back in bed or None) for every exit that starts inside the span."""
    out: list[tuple[int, int | None]] = []
    occupied: bool | None = None
    exit_ms: int | None = None
    first = max(0, bisect.bisect_left(facts.bed, (span.start_ms, False)) - 1)
    for ts, now_occupied in facts.bed[first:]:
        if ts >= span.end_ms and exit_ms is None:
            break
        if occupied is True and not now_occupied and span.contains(ts):
            exit_ms = ts
        elif now_occupied and exit_ms is not None:
            out.append((exit_ms, ts))
            exit_ms = None
            if ts >= span.end_ms:
                break
        occupied = now_occupied
    if exit_ms is not None:
        out.append((exit_ms, None))
    return out


def _bed_at(facts: Facts, ms: int) -> bool | None:
    i = bisect.bisect_right(facts.bed, (ms, True))
    return facts.bed[i - 1][1] if i else None


def _visit_overlaps(facts: Facts, start: int, end: int) -> bool:
    return any(v.start_ms <= end and (v.end_ms is None or v.end_ms >= start)
               for v in facts.visits)


def _share(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _result(ident: str, value: float | None, n: int, details: dict[str, Any],
            no_data_reason: str) -> Value:
    unit = DEFINITIONS[ident].unit
    if value is None:
        return Value(ident, None, "no_data", unit, n, details, no_data_reason)
    return Value(ident, round(value, 4), "ok", unit, n, details)


def compute(ident: str, facts: Facts, dates: list[date], kind: str | None = None) -> Value:
    """The indicator `ident` over `dates` (nights or days, per the indicator)."""
    d = DEFINITIONS[ident]
    if not d.available:
        return Value(ident, None, "not_available", d.unit, reason=d.not_available_reason)
    nights = covered(facts, facts.nights, dates)
    missing = {"nights_without_data": len([x for x in dates if x not in nights])}
    no_nights = "no night in the period has data from this person's devices"
    if ident == "nights_without_staff_intervention":
        intervened = [n for n in nights if _intervened(facts, facts.nights[n])]
        return _result(ident, _share(len(nights) - len(intervened), len(nights)), len(nights),
                       {**missing, "nights": len(nights), "with_intervention": len(intervened)},
                       no_nights)
    if ident == "digital_checks_passed":
        wanted = set(dates)
        finals = Counter(c.outcome for c in facts.checks if c.night in wanted)
        # A check during a planned absence judged nothing: it is neither passed nor failed.
        total = sum(n for outcome, n in finals.items() if outcome != "away")
        return _result(ident, _share(finals["ok"], total), total,
                       {"ok": finals["ok"], "attention": finals["attention"],
                        "unknown": finals["unknown"], "away": finals["away"]},
                       "no digital check in the period")
    if ident in ("alerts_per_night", "night_alerts_per_week"):
        kinds: Counter[str] = Counter(
            a.kind for a in facts.alerts if (kind is None or a.kind == kind)
            and any(facts.nights[n].contains(a.event_ms) for n in nights))
        total = sum(kinds.values())
        per_night = total / len(nights) if nights else None
        value = per_night if per_night is None or ident == "alerts_per_night" \
            else per_night * 7
        return _result(ident, value, len(nights), {**missing, "alerts": total,
                                                   "by_kind": dict(sorted(kinds.items()))},
                       no_nights)
    if ident == "independent_bed_exits_returned":
        return _bed_exit_value(facts, nights, missing, no_nights)
    if ident in ("physical_night_visits", "sleep_disturbed_nights"):
        made = {n: [v for v in facts.visits if facts.nights[n].contains(v.start_ms)]
                for n in nights}
        disturbed = [n for n in nights if any(
            (_bed_at(facts, v.start_ms) is not False) if facts.has_bed_sensor else True
            for v in made[n])]
        visits = sum(len(v) for v in made.values())
        value = (visits / len(nights) if nights else None) \
            if ident == "physical_night_visits" else _share(len(disturbed), len(nights))
        return _result(ident, value, len(nights), {**missing, "visits": visits,
                                                   "disturbed_nights": len(disturbed)},
                       no_nights)
    if ident in ("walks_returned_home", "time_out_of_home"):
        return _out_value(ident, facts, dates)
    if ident == "response_time":
        return _response_value(facts, dates, kind)
    if ident in ("walking_speed", "fall_risk_level"):
        return _movement_value(ident, facts, dates)
    raise KeyError(ident)


def _movement_value(ident: str, facts: Facts, dates: list[date]) -> Value:
    """Median of the daily walking speeds, or the mean fall-risk level (0 low, 1 moderate,
    2 high) over the scored days; days without a value are counted beside it."""
    if ident == "walking_speed":
        got = [m.walking_speed for d in dates if (m := facts.movement.get(d)) is not None
               and m.walking_speed is not None]
        return _result(ident, statistics.median(got) if got else None, len(got),
                       {"days_with_speed": len(got), "days_without_speed": len(dates) - len(got)},
                       "no day in the period has a walking speed (too few walks between "
                       "sensors a known distance apart, or no data)")
    levels = [m.level for d in dates if (m := facts.movement.get(d)) is not None
              and m.level is not None]
    counts = Counter(levels)
    return _result(ident, statistics.fmean(LEVEL_NUMBER[lv] for lv in levels) if levels
                   else None, len(levels),
                   {"days_scored": len(levels), "days_not_scored": len(dates) - len(levels),
                    **{lv: counts[lv] for lv in LEVEL_NUMBER}},
                   "no day in the period has a fall-risk score")


def _intervened(facts: Facts, span: Span) -> bool:
    return any(span.contains(v.start_ms) for v in facts.visits) or any(
        span.contains(a.event_ms) and a.outcome == "visited" for a in facts.alerts)


def _bed_exit_value(facts: Facts, nights: list[date], missing: dict[str, int],
                    no_nights: str) -> Value:
    ident = "independent_bed_exits_returned"
    if not facts.has_bed_sensor:
        return Value(ident, None, "not_available", "per_night",
                     reason="this person has no bed sensor")
    exits = returned = independent = 0
    for n in nights:
        for left, back in bed_exits(facts, facts.nights[n]):
            exits += 1
            if back is not None and back - left <= facts.bed_exit_limit_ms:
                returned += 1
                if not _visit_overlaps(facts, left, back):
                    independent += 1
    return _result(ident, independent / len(nights) if nights else None, len(nights),
                   {**missing, "exits": exits, "returned_within_limit": returned,
                    "independent_returned": independent,
                    "limit_minutes": facts.bed_exit_limit_ms // 60_000}, no_nights)


def _out_value(ident: str, facts: Facts, dates: list[date]) -> Value:
    days = covered(facts, facts.days, dates)
    spans = [facts.days[d] for d in days]
    missing = {"days_without_data": len([d for d in dates if d not in days])}
    no_days = "no day in the period has data from this person's devices"
    if ident == "walks_returned_home":
        walks = [o for o in facts.out if any(s.contains(o.start_ms) for s in spans)]
        back = [o for o in walks if o.end_ms is not None]
        return _result(ident, len(back) * 7 / len(days) if days else None, len(days),
                       {**missing, "days": len(days), "walks": len(walks),
                        "returned": len(back), "not_returned": len(walks) - len(back),
                        "by_source": dict(Counter(o.source for o in walks))}, no_days)
    total_ms = sum(s.overlap_ms(o.start_ms, o.end_ms if o.end_ms is not None else s.end_ms)
                   for o in facts.out for s in spans)
    return _result(ident, total_ms / 3_600_000 / len(days) if days else None, len(days),
                   {**missing, "days": len(days), "hours": round(total_ms / 3_600_000, 3)},
                   no_days)


def _response_value(facts: Facts, dates: list[date], kind: str | None) -> Value:
    spans = [facts.days[d] for d in dates if d in facts.days] + \
        [facts.nights[d] for d in dates if d in facts.nights]
    alerts = [a for a in facts.alerts if (kind is None or a.kind == kind)
              and any(s.contains(a.event_ms) for s in spans)]
    secs = sorted((r - a.raised_ms) / 1000 for a in alerts
                  if (r := a.responded_ms) is not None)
    p90 = secs[max(0, -(-len(secs) * 9 // 10) - 1)] if secs else None
    return _result("response_time", statistics.median(secs) if secs else None, len(secs),
                   {"alerts": len(alerts), "responded": len(secs),
                    "not_responded": len(alerts) - len(secs), "p90_seconds": p90},
                   "no alert in the period was acknowledged or resolved")


def compute_all(ids: list[tuple[str, str | None]], facts: Facts, dates: list[date]
                ) -> list[Value]:
    """Several indicators over the same dates."""
    return [compute(i, facts, dates, k) for i, k in ids]
