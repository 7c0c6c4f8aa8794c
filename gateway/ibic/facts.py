"""Load what the indicators read about one resident from storage (the I/O side of
`gateway.ibic.indicators`)."""

from __future__ import annotations

import bisect
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from gateway.config.gateway import GatewayConfig
from gateway.config.registry import Resident
from gateway.ibic.indicators import AlertFact, CheckFact, Facts, OutFact, Span, VisitFact
from gateway.profiles.loader import ProfileLibrary
from gateway.storage.schema import alerts, observations, supervision_checks, visits
from gateway.storage.store import Store, to_ms
from gateway.supervision.summary import night_window

HOME_REGION = "home"
# Door-based absence: after an exterior door opened, no movement inside (ignoring the first
# minute, the person walking out) until the door's next opening, with movement inside right
# after it. Anything else (a staff visit, someone asleep after the door closed) is no
# absence: the door alone cannot tell.
DOOR_SETTLE_MS = 60_000
MIN_OUT_MS = 5 * 60_000
RETURN_MOTION_MS = 5 * 60_000


def dates_between(first: date, last: date) -> list[date]:
    """first..last inclusive."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def load_facts(store: Store, res: Resident, config: GatewayConfig, profiles: ProfileLibrary,
               first: date, last: date) -> Facts:
    """Everything the indicators need for nights and days first..last."""
    tz = ZoneInfo(config.site.timezone)
    dates = dates_between(first, last)
    nights = {d: Span(*(to_ms(t) for t in night_window(res, d, config))) for d in dates}
    days = {d: Span(to_ms(datetime.combine(d, time(0), tz)),
                    to_ms(datetime.combine(d + timedelta(days=1), time(0), tz)))
            for d in dates}
    lo = min(min(s.start_ms for s in nights.values()), days[first].start_ms)
    hi = max(max(s.end_ms for s in nights.values()), days[last].end_ms)
    # Readings before the period tell the state it starts in; an exit late in the last
    # night may return after it.
    read_lo, read_hi = lo - 12 * 3_600_000, hi + 6 * 3_600_000
    exterior = {d.id for d in res.devices if d.exterior}
    limit_min = res.alerts.bed_exit_no_return_minutes or \
        config.site.alerts.bed_exit_no_return_minutes
    with store.engine.connect() as conn:
        seen = [int(t) for t in conn.execute(
            select(observations.c.ts_ms).where(observations.c.resident_id == res.id)
            .where(observations.c.ts_ms >= lo).where(observations.c.ts_ms < hi)
            .order_by(observations.c.ts_ms)).scalars()]
        rows = conn.execute(
            select(observations.c.ts_ms, observations.c.kind, observations.c.device_id,
                   observations.c.value)
            .where(observations.c.resident_id == res.id)
            .where(observations.c.kind.in_(("bed", "contact", "motion", "geofence")))
            .where(observations.c.ts_ms >= read_lo).where(observations.c.ts_ms < read_hi)
            .order_by(observations.c.ts_ms, observations.c.id)).all()
        visit_rows = conn.execute(
            select(visits.c.start_ms, visits.c.end_ms).where(visits.c.resident_id == res.id)
            .where(visits.c.start_ms >= read_lo).where(visits.c.start_ms < hi)).all()
        alert_rows = conn.execute(
            select(alerts.c.id, alerts.c.kind, alerts.c.event_ms, alerts.c.raised_ms,
                   alerts.c.acknowledged_ms, alerts.c.resolved_ms, alerts.c.outcome)
            .where(alerts.c.resident_id == res.id)
            .where(alerts.c.event_ms >= lo).where(alerts.c.event_ms < hi)).all()
        check_rows = conn.execute(
            select(supervision_checks.c.night, supervision_checks.c.due_ms,
                   supervision_checks.c.outcome)
            .where(supervision_checks.c.resident_id == res.id)
            .where(supervision_checks.c.final.is_(True))
            .where(supervision_checks.c.night >= first.isoformat())
            .where(supervision_checks.c.night <= last.isoformat())).all()
    bed = [(int(r.ts_ms), bool(r.value)) for r in rows if r.kind == "bed"]
    return Facts(
        resident_id=res.id, nights=nights, days=days, observed_ms=seen, bed=bed,
        has_bed_sensor=bool(bed) or ("bed" in res.consent and any(
            "bed" in profiles.profiles[d.profile].kinds for d in res.devices
            if d.profile in profiles.profiles and d.profile != "tillsyn.native")),
        out=out_of_home([tuple(r) for r in rows], exterior, hi),
        visits=[VisitFact(int(v.start_ms), None if v.end_ms is None else int(v.end_ms))
                for v in visit_rows],
        alerts=[AlertFact(int(a.id), a.kind, int(a.event_ms), int(a.raised_ms),
                          None if a.acknowledged_ms is None else int(a.acknowledged_ms),
                          None if a.resolved_ms is None else int(a.resolved_ms), a.outcome)
                for a in alert_rows],
        checks=[CheckFact(date.fromisoformat(c.night), int(c.due_ms), c.outcome)
                for c in check_rows],
        bed_exit_limit_ms=limit_min * 60_000)


def out_of_home(rows: list[tuple[Any, ...]], exterior: set[str], end_ms: int
                ) -> list[OutFact]:
    """Absences from the position alarm's home geofence (leave -> enter) and from the
    exterior door (see DOOR_SETTLE_MS); overlapping ones are one absence."""
    geo: list[OutFact] = []
    left: int | None = None
    openings: list[int] = []
    motion: list[int] = []
    last_door: dict[str, Any] = {}
    for ts, kind, device, value in rows:
        if kind == "geofence" and isinstance(value, dict) \
                and value.get("region") in (HOME_REGION, None):
            if value.get("event") == "leave" and left is None:
                left = ts
            elif value.get("event") == "enter" and left is not None:
                geo.append(OutFact(left, ts, "geofence"))
                left = None
        elif kind == "contact" and device in exterior:
            if value == "open" and last_door.get(device) != "open":
                openings.append(ts)
            last_door[device] = value
        elif kind == "motion" and value is True:
            motion.append(ts)
    if left is not None:
        geo.append(OutFact(left, None, "geofence"))
    # Without movement data the door alone says nothing about who is home.
    door = _door_absences(openings, motion, end_ms) if motion else []
    return _merge(sorted(geo + door, key=lambda o: o.start_ms))


def _door_absences(openings: list[int], motion: list[int], end_ms: int) -> list[OutFact]:
    out: list[OutFact] = []
    busy_until = -1
    for d1 in openings:
        if d1 <= busy_until:
            continue
        i = bisect.bisect_right(motion, d1 + DOOR_SETTLE_MS)
        nxt = motion[i] if i < len(motion) else None
        if nxt is None:
            if end_ms - d1 >= MIN_OUT_MS:
                out.append(OutFact(d1, None, "door"))
                busy_until = end_ms
            continue
        if nxt - d1 < MIN_OUT_MS:
            continue
        # Back: the next opening of the door, with movement inside right after it.
        j = bisect.bisect_right(openings, d1)
        back = openings[j] if j < len(openings) else None
        if back is not None and back <= nxt and nxt - back <= RETURN_MOTION_MS:
            out.append(OutFact(d1, back, "door"))
            busy_until = back
    return out


def _merge(items: list[OutFact]) -> list[OutFact]:
    merged: list[OutFact] = []
    for o in items:
        prev = merged[-1] if merged else None
        if prev is not None and (prev.end_ms is None or o.start_ms <= prev.end_ms):
            end = None if prev.end_ms is None or o.end_ms is None \
                else max(prev.end_ms, o.end_ms)
            source = "geofence" if "geofence" in (prev.source, o.source) else "door"
            merged[-1] = OutFact(prev.start_ms, end, source)
        else:
            merged.append(o)
    return merged
