"""All detectors of one resident, fed in event-time order."""

from __future__ import annotations

from datetime import datetime

from detectors.home_state import HomeTracker
from detectors.model import Decision, Observation, ResidentSettings
from detectors.rules import RULES, Context, Detector, DeviceOffline
from detectors.supervisor import CheckEntry, Plan, Supervisor
from detectors.visits import Visit, VisitTracker


class ResidentEngine:
    """Runs the rule detectors and staff-visit tracking for one resident.

    `observe` takes observations in event-time order; `tick(now)` advances the clock
    (wall clock in service, event time in replays). Decisions raised while a staff visit is
    in progress carry `during_visit` with the staff id.

    With a supervision plan, the digital night checks run on the same clock; their journal
    entries collect in `checks` until the caller takes them (`take_checks`).
    """

    def __init__(self, settings: ResidentSettings, started: datetime,
                 plan: Plan | None = None) -> None:
        self.settings = settings
        self.ctx = Context(settings)
        self.detectors: list[Detector] = [cls(settings) for cls in RULES.values()]
        self.link = DeviceOffline(settings, started)
        self.detectors.append(self.link)
        # Detectors with time-based conditions (tick runs before every observation).
        self.timed = [d for d in self.detectors if type(d).tick is not Detector.tick]
        self.visits = VisitTracker(settings.staff_credentials)
        self.last_visit: Visit | None = None  # the most recent finished visit
        self.home = HomeTracker(settings)
        self.supervisor = Supervisor(settings.resident_id, plan, settings.tz) if plan else None
        self.checks: list[CheckEntry] = []

    def observe(self, obs: Observation) -> list[Decision]:
        """Feed one observation; time-based conditions are checked up to its time first."""
        out = self.tick(obs.ts)
        visit = self.visits.observe(obs)
        if visit is not None and visit.end is not None:
            self.last_visit = visit
        self.ctx.visit = self.visits.in_progress()
        self.home.observe(obs)
        for det in self.detectors:
            out.extend(det.observe(obs, self.ctx))
        return self._annotate(out)

    def seen(self, device_id: str, ts: datetime) -> list[Decision]:
        """A message arrived from a device that produced no observation (still alive)."""
        return self._annotate(self.link.seen(device_id, ts))

    def tick(self, now: datetime) -> list[Decision]:
        """Check the time-based conditions at `now`."""
        out: list[Decision] = []
        for det in self.timed:
            out.extend(det.tick(now, self.ctx))
        if self.supervisor is not None:
            self.checks.extend(self.supervisor.tick(
                now, lambda: self.home.state(self.link, self.ctx.away)))
        return self._annotate(out)

    def take_checks(self) -> list[CheckEntry]:
        """Journal entries produced since the last call."""
        out, self.checks = self.checks, []
        return out

    def _annotate(self, decisions: list[Decision]) -> list[Decision]:
        visit = self.ctx.visit
        if visit is None:
            return decisions
        for d in decisions:
            d.detail["during_visit"] = visit.staff_id
        return decisions
