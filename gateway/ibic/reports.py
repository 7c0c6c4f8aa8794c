"""The three reports as data (rendered to HTML and CSV by `gateway.ibic.render`):

- individual follow-up: needs, goals, indicators with weekly series, status, linked alerts;
- digital-trial evaluation: a baseline period against a trial period for one person;
- unit level: goal fulfilment per life area and per provider/unit, share of residents with
  measurable goals, follow-ups done on time.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from gateway.config.registry import Registry, Resident
from gateway.ibic.facts import dates_between
from gateway.ibic.goals import ASSESSMENTS, current_status
from gateway.ibic.indicators import DEFINITIONS, Facts, compute
from gateway.ibic.service import IbicError, IbicService
from gateway.storage.store import to_ms
from gateway.supervision.summary import SupervisionViews

FOLLOW_UP_GRACE = timedelta(days=14)  # a follow-up counts as on time until 14 days after
CURRENT = timedelta(days=28)  # "current value": the last 28 days of the period


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _unit_name(ibic: IbicService, unit: str) -> str:
    return next((u.name for u in ibic.registry.units if u.id == unit), unit)


def followup_report(ibic: IbicService, res: Resident, until: date | None = None
                    ) -> dict[str, Any]:
    """Individual follow-up of one resident's goals."""
    needs, needs_source = ibic.goals.needs(res)
    goals = []
    for goal, summary, history in ibic.entries(res):
        first, last = ibic.period_of(goal, until)
        facts = ibic.facts(res, first, last)
        progress = ibic.progress(res, goal, until, facts)
        recent = dates_between(max(first, last - CURRENT + timedelta(days=1)), last)
        current = [compute(i.id, facts, recent, i.kind).as_dict() for i in goal.indicators]
        for series, value in zip(progress["indicators"], current, strict=True):
            series["current"] = value
        goals.append({**summary, "progress": progress, "history": history,
                      "linked_alerts": ibic.linked_alerts(res, goal)})
    return {"report": "followup", "generated": _stamp(), "timezone": ibic.config.site.timezone,
            "resident": {"id": res.id, "name": res.name, "unit": res.unit,
                         "unit_name": _unit_name(ibic, res.unit)},
            "action_plan": res.action_plan,
            "needs": [n.model_dump(mode="json") for n in needs], "needs_source": needs_source,
            "goals": goals}


TRIAL_INDICATORS = ("physical_night_visits", "sleep_disturbed_nights",
                    "nights_without_staff_intervention", "digital_checks_passed",
                    "alerts_per_night", "response_time", "independent_bed_exits_returned")


def _period(views: SupervisionViews, res: Resident, facts: Facts, first: date,
            last: date) -> dict[str, Any]:
    nights = views.counts(units=None, first=first, last=last, resident_id=res.id)
    dates = dates_between(first, last)
    in_period = [a for a in facts.alerts
                 if any(facts.nights[d].contains(a.event_ms) or facts.days[d].contains(a.event_ms)
                        for d in dates)]
    values = {i: compute(i, facts, dates).as_dict() for i in TRIAL_INDICATORS}
    total = {k: sum(n[k] for n in nights) for k in (
        "checks_planned", "digital_checks", "ok", "attention", "unknown", "late",
        "physical_visits_made", "physical_visits_avoided")}
    return {
        "first": first.isoformat(), "last": last.isoformat(), "nights": len(dates),
        "nights_with_data": values["physical_night_visits"]["n"],
        "physical_night_visits": total["physical_visits_made"],
        "physical_visits_avoided": total["physical_visits_avoided"],
        "digital_checks": total["digital_checks"], "checks_planned": total["checks_planned"],
        "checks_ok": total["ok"], "checks_attention": total["attention"],
        "checks_unknown": total["unknown"], "checks_late": total["late"],
        "sleep_disturbed_nights": values["sleep_disturbed_nights"]["details"].get(
            "disturbed_nights", 0),
        "alerts": len(in_period),
        "alerts_by_kind": dict(sorted(Counter(a.kind for a in in_period).items())),
        "alerts_by_outcome": dict(sorted(Counter(a.outcome or "unresolved"
                                                 for a in in_period).items())),
        "response_median_s": values["response_time"]["value"],
        "response_p90_s": values["response_time"]["details"].get("p90_seconds"),
        "indicators": values,
    }


def digital_trial_report(ibic: IbicService, views: SupervisionViews, res: Resident,
                         baseline: tuple[date, date], trial: tuple[date, date]
                         ) -> dict[str, Any]:
    """Before (physical supervision) against during (digital) for one person."""
    if baseline[1] >= trial[0]:
        raise IbicError(422, "the baseline period must end before the trial period starts")
    ibic.check_period(*baseline)
    ibic.check_period(*trial)
    goals = []
    facts = ibic.facts(res, baseline[0], trial[1])  # both periods, read once
    for goal, _ in ibic.goals.goals(res):
        rows = []
        for ind in goal.indicators:
            b = compute(ind.id, facts, dates_between(*baseline), ind.kind)
            t = compute(ind.id, facts, dates_between(*trial), ind.kind)
            rows.append({"id": ind.id, "kind": ind.kind, "target": ind.target,
                         "direction": ind.direction, "baseline": b.as_dict(),
                         "trial": t.as_dict()})
        goals.append({"id": goal.id, "text": goal.text, "life_area": goal.life_area,
                      "indicators": rows})
    return {"report": "digital_trial", "generated": _stamp(),
            "timezone": ibic.config.site.timezone,
            "resident": {"id": res.id, "name": res.name, "unit": res.unit,
                         "unit_name": _unit_name(ibic, res.unit)},
            "baseline": _period(views, res, facts, *baseline),
            "trial": _period(views, res, facts, *trial), "goals": goals}


def unit_report(ibic: IbicService, registry: Registry, units: set[str] | None,
                unit: str | None, first: date, last: date) -> dict[str, Any]:
    """Goal fulfilment per life area and per provider/unit; follow-ups on time."""
    ibic.check_period(first, last)
    chosen = [u for u in registry.units
              if (units is None or u.id in units) and (unit is None or u.id == unit)]
    if unit is not None and not chosen:
        raise IbicError(404, "no such unit in your scope")
    rows = []
    for u in chosen:
        residents = [r for r in registry.residents if r.unit == u.id]
        areas: dict[str, Counter[str]] = {}
        measurable = 0
        due = on_time = late = missing = 0
        for res in residents:
            history = ibic.goals.events(res.id)
            goals = ibic.goals.goals(res)
            if any(DEFINITIONS[i.id].available for g, _ in goals for i in g.indicators):
                measurable += 1
            for goal, _ in goals:
                mine = [e for e in history if e["goal_id"] == goal.id]
                state = current_status(mine)
                c = areas.setdefault(goal.life_area, Counter())
                c["goals"] += 1
                c[state["status"]] += 1
                if state["proposal"] is not None:
                    c["awaiting_confirmation"] += 1
                if first <= goal.follow_up <= last:
                    due += 1
                    done = [e for e in mine if e["event"] in ASSESSMENTS
                            and e["at_ms"] >= _ms(goal.follow_up - CURRENT, ibic.tz)]
                    deadline = _ms(goal.follow_up + FOLLOW_UP_GRACE + timedelta(days=1),
                                   ibic.tz)
                    if any(e["at_ms"] < deadline for e in done):
                        on_time += 1
                    elif done:
                        late += 1
                    else:
                        missing += 1
        rows.append({
            "unit": u.id, "unit_name": u.name, "provider": u.provider,
            "residents": len(residents), "residents_with_measurable_goals": measurable,
            "measurable_share": round(measurable / len(residents), 4) if residents else None,
            "follow_ups_due": due, "follow_ups_on_time": on_time, "follow_ups_late": late,
            "follow_ups_missing": missing,
            "on_time_share": round(on_time / due, 4) if due else None,
            "life_areas": {a: {k: c[k] for k in ("goals", "achieved", "partly_achieved",
                                                 "not_achieved", "active",
                                                 "awaiting_confirmation")}
                           for a, c in sorted(areas.items())}})
    return {"report": "unit", "generated": _stamp(), "timezone": ibic.config.site.timezone,
            "first": first.isoformat(),
            "last": last.isoformat(), "grace_days": FOLLOW_UP_GRACE.days, "units": rows}


def _ms(d: date, tz: tzinfo) -> int:
    """Local midnight starting `d`, in epoch milliseconds."""
    return to_ms(datetime.combine(d, datetime.min.time(), tz))
