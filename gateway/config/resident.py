"""A resident's settings in force: their own where the registry sets one, else the site's.

The one place where resident-else-site lookups and night windows are worked out; the
detector runner, the supervision plans and summary, the IBIC facts, the risk service and
alerting all read them from here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from detectors.model import DeviceInfo, PlannedAbsence, ResidentSettings
from detectors.model import NightWindow as Window
from gateway.config.gateway import AlertDefaults, GatewayConfig, NightWindow, SiteConfig
from gateway.config.registry import Absence, Registry, Resident
from gateway.profiles.loader import ProfileLibrary


def alert_settings(res: Resident, site: SiteConfig) -> AlertDefaults:
    """The alert settings in force for a resident (ValueError if the mix is inconsistent,
    e.g. a resident's bed_exit_moving_minutes above the site's bed_exit_still_minutes)."""
    own = res.alerts.model_dump(exclude_none=True)
    if not own:
        return site.alerts
    return AlertDefaults.model_validate({**site.alerts.model_dump(), **own})


def alert_problems(registry: Registry, site: SiteConfig) -> list[str]:
    """Residents whose own alert settings do not fit with the site's."""
    problems = []
    for i, res in enumerate(registry.residents):
        try:
            alert_settings(res, site)
        except ValueError as exc:
            errors = getattr(exc, "errors", None)
            detail = "; ".join(e["msg"] for e in errors()) if callable(errors) else str(exc)
            problems.append(f"residents.{i}.alerts: {detail}")
    return problems


def night(res: Resident, site: SiteConfig) -> NightWindow:
    """The resident's night window (the site default unless their own)."""
    return res.night or site.night


def window(res: Resident, site: SiteConfig) -> Window:
    """The night window as the detectors use it."""
    w = night(res, site)
    return Window.parse(w.start, w.end)


def night_window(res: Resident, evening: date, config: GatewayConfig
                 ) -> tuple[datetime, datetime]:
    """The resident's night window of the night starting on the evening of `evening`, in
    UTC."""
    return window(res, config.site).bounds(evening, ZoneInfo(config.site.timezone))


def absence_bounds(a: Absence, tz: ZoneInfo) -> PlannedAbsence:
    """A planned absence in UTC (a time without offset is the site's local time)."""
    def utc(ts: datetime) -> datetime:
        return (ts if ts.tzinfo is not None else ts.replace(tzinfo=tz)).astimezone(UTC)

    return PlannedAbsence(utc(a.start), utc(a.end), a.reason)


def resident_settings(res: Resident, config: GatewayConfig, registry: Registry,
                      profiles: ProfileLibrary) -> ResidentSettings:
    """Everything the detectors need to know about one resident."""
    site = config.site
    a = alert_settings(res, site)
    creds = {c: s.id for s in registry.staff for c in s.lock_credentials}
    return ResidentSettings(
        resident_id=res.id, tz=ZoneInfo(site.timezone), night=window(res, site),
        devices={d.id: DeviceInfo(d.id, d.room, d.exterior,
                                  profiles.get(d.profile).report_interval_seconds,
                                  frozenset(profiles.get(d.profile).kinds), d.bed)
                 for d in res.devices},
        staff_credentials=creds,
        bed_exit_no_return_minutes=a.bed_exit_no_return_minutes,
        inactivity_hours=a.inactivity_hours,
        bathroom_long_minutes=a.bathroom_long_minutes,
        away_after_minutes=a.away_after_minutes,
        not_home_minutes_after_night_start=a.not_home_minutes_after_night_start,
        bed_exit_moving_minutes=a.bed_exit_moving_minutes,
        bed_exit_still_minutes=a.bed_exit_still_minutes,
        bed_exit_when_moving=a.bed_exit_when_moving,
        rise_time=time.fromisoformat(a.rise_time) if a.rise_time else None,
    )
