"""Load what the indicators read about one resident from storage (the I/O side of
`gateway.ibic.indicators`)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from detectors.absence import out_of_home
from gateway.config.gateway import GatewayConfig
from gateway.config.registry import Resident
from gateway.config.resident import alert_settings, night_window
from gateway.ibic.indicators import (
    AlertFact,
    CheckFact,
    Facts,
    MovementFact,
    Span,
    VisitFact,
)
from gateway.profiles.loader import ProfileLibrary
from gateway.storage.schema import (
    alerts,
    observations,
    risk_days,
    supervision_checks,
    visits,
)
from gateway.storage.store import Store, to_ms


def dates_between(first: date, last: date) -> list[date]:
    """first..last inclusive."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


MOVEMENT_KINDS = ("bed", "contact", "motion", "geofence")


def movement_readings(conn: Connection, resident_id: str, lo_ms: int, hi_ms: int
                      ) -> list[tuple[int, str, str, Any]]:
    """(ts_ms, kind, device_id, value) of the bed, door, motion and geofence readings in
    [lo_ms, hi_ms), in time order: what the indicators and the movement features read."""
    return [(int(r.ts_ms), r.kind, r.device_id, r.value) for r in conn.execute(
        select(observations.c.ts_ms, observations.c.kind, observations.c.device_id,
               observations.c.value)
        .where(observations.c.resident_id == resident_id)
        .where(observations.c.kind.in_(MOVEMENT_KINDS))
        .where(observations.c.ts_ms >= lo_ms).where(observations.c.ts_ms < hi_ms)
        .order_by(observations.c.ts_ms, observations.c.id))]


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
    limit_min = alert_settings(res, config.site).bed_exit_no_return_minutes
    with store.engine.connect() as conn:
        seen = [int(t) for t in conn.execute(
            select(observations.c.ts_ms).where(observations.c.resident_id == res.id)
            .where(observations.c.ts_ms >= lo).where(observations.c.ts_ms < hi)
            .order_by(observations.c.ts_ms)).scalars()]
        rows = movement_readings(conn, res.id, read_lo, read_hi)
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
        movement_rows = conn.execute(
            select(risk_days.c.day, risk_days.c.features, risk_days.c.level,
                   risk_days.c.status)
            .where(risk_days.c.resident_id == res.id)
            .where(risk_days.c.day >= first.isoformat())
            .where(risk_days.c.day <= last.isoformat())).all()
    bed = [(ts, bool(value)) for ts, kind, _, value in rows if kind == "bed"]
    return Facts(
        resident_id=res.id, nights=nights, days=days, observed_ms=seen, bed=bed,
        has_bed_sensor=bool(bed) or ("bed" in res.consent and any(
            "bed" in profiles.profiles[d.profile].kinds for d in res.devices
            if d.profile in profiles.profiles and d.profile != "tillsyn.native")),
        out=out_of_home(rows, exterior, hi),
        visits=[VisitFact(int(v.start_ms), None if v.end_ms is None else int(v.end_ms))
                for v in visit_rows],
        alerts=[AlertFact(int(a.id), a.kind, int(a.event_ms), int(a.raised_ms),
                          None if a.acknowledged_ms is None else int(a.acknowledged_ms),
                          None if a.resolved_ms is None else int(a.resolved_ms), a.outcome)
                for a in alert_rows],
        checks=[CheckFact(date.fromisoformat(c.night), int(c.due_ms), c.outcome)
                for c in check_rows],
        bed_exit_limit_ms=limit_min * 60_000,
        movement={date.fromisoformat(m.day): MovementFact(
            (m.features or {}).get("walking_speed"),
            m.level if m.status == "scored" else None) for m in movement_rows})
