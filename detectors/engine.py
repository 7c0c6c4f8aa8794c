"""All detectors of one resident, fed in event-time order."""

from __future__ import annotations

from datetime import date, datetime

from detectors.bed import BedState
from detectors.home_state import HomeTracker
from detectors.model import Decision, Observation, PlannedAbsence, ResidentSettings
from detectors.occupancy import OccupancyChange, OccupancyTracker, State
from detectors.rise import RiseFact
from detectors.rules import RULES, Context, Detector, DeviceOffline
from detectors.signals import Signal, Transitions, classify
from detectors.supervisor import CheckEntry, Plan, Supervisor
from detectors.visits import Visit, VisitTracker


class ResidentEngine:
    """Runs the rule detectors and staff-visit tracking for one resident.

    `observe` takes observations in event-time order; `tick(now)` advances the clock
    (wall clock in service, event time in replays). Decisions raised while a staff visit is
    in progress carry `during_visit` with the staff id.

    Before the rules see an observation, the engine works out what it says (a change or a
    repeated state, movement inside or a passage through the door: `detectors/signals.py`),
    the bed state (from a bed sensor, or a motion sensor over the bed: `detectors/bed.py`)
    and the home's occupancy (`detectors/occupancy.py`); the rules read these from the
    shared `Context`.

    With a supervision plan, the digital night checks run on the same clock; their journal
    entries collect in `checks` until the caller takes them (`take_checks`), as do occupancy
    changes and learnt rise times (`take_facts`).
    """

    def __init__(self, settings: ResidentSettings, started: datetime,
                 plan: Plan | None = None) -> None:
        self.settings = settings
        self.ctx = Context(settings)
        self.rise = self.ctx.rise
        self.detectors: list[Detector] = [cls(settings) for cls in RULES.values()]
        self.link = DeviceOffline(settings, started)
        self.detectors.append(self.link)
        # Detectors with time-based conditions (tick runs before every observation).
        self.timed = [d for d in self.detectors if type(d).tick is not Detector.tick]
        self.instant_rules = [d for d in self.detectors if d.instant]
        self.visits = VisitTracker(settings.staff_credentials)
        self.last_visit: Visit | None = None  # the most recent finished visit
        self.transitions = Transitions()
        self.bed = BedState(settings)
        self.occupancy = OccupancyTracker(settings)
        self.home = HomeTracker(settings)
        self.supervisor = Supervisor(settings.resident_id, plan, settings.tz) if plan else None
        self.checks: list[CheckEntry] = []
        self.rises: list[RiseFact] = []
        self._skip_instant = False

    # --- state from outside -----------------------------------------------------------------

    def restore(self, occupancy: tuple[State, datetime, str] | None,
                rises: list[tuple[date, datetime]]) -> None:
        """Continue from the stored occupancy and the rises of the last nights."""
        if occupancy is not None:
            self.occupancy.restore(*occupancy)
        self.rise.restore(rises)

    def set_planned(self, absences: list[PlannedAbsence]) -> None:
        """The resident's planned absences."""
        self.occupancy.set_planned(absences)

    # --- feeding ------------------------------------------------------------------------------

    def instant(self, obs: Observation) -> list[Decision]:
        """What the instant rules (sos, fall) decide from this observation alone. Reads no
        state but the staff visit in progress: safe to call beside `observe`."""
        ctx = self.ctx
        out: list[Decision] = []
        for det in self.instant_rules:
            out.extend(det.observe(obs, ctx))
        return self._annotate(out)

    def observe(self, obs: Observation, *, instant: bool = True) -> list[Decision]:
        """Feed one observation; time-based conditions are checked up to its time first.
        With `instant=False` the instant rules are left out (the caller ran `instant`)."""
        self._skip_instant = not instant
        out = self.tick(obs.ts)
        visit = self.visits.observe(obs)
        if visit is not None and visit.end is not None:
            self.last_visit = visit
        self.ctx.visit = self.visits.in_progress()
        changed = self.transitions.update(obs)
        sig = classify(obs, self.settings.devices.get(obs.device_id), changed,
                       self.transitions.first)
        derived = self.bed.derive(obs, sig)
        if derived is not None:  # the bed changes before what the movement means is judged
            self.transitions.update(derived)
            out.extend(self._apply(derived, classify(
                derived, self.settings.devices.get(derived.device_id), True)))
        out.extend(self._apply(obs, sig))
        return self._annotate(_by_time(out))

    def _apply(self, obs: Observation, sig: Signal) -> list[Decision]:
        ctx = self.ctx
        if obs.kind == "bed" and isinstance(obs.value, bool) and \
                self.bed.in_bed is not obs.value:
            self.bed.update(obs)
            self.rise.observe_bed(obs.ts, obs.value)
        end = self.last_visit.end if self.last_visit is not None else None
        self.occupancy.observe(obs, sig, staff_visit=ctx.visit is not None,
                               last_visit_end=end)
        if sig.inside and obs.kind != "bed":
            ctx.last_move = obs.ts if ctx.last_move is None else max(ctx.last_move, obs.ts)
        ctx.occupancy = self.occupancy.at(obs.ts)
        ctx.in_bed = self.bed.in_bed
        ctx.signal = sig
        self.home.observe(obs, sig)
        out: list[Decision] = []
        skip = self._skip_instant
        for det in self.detectors:
            if not (skip and det.instant):
                out.extend(det.observe(obs, ctx))
        return out

    def seen(self, device_id: str, ts: datetime) -> list[Decision]:
        """A message arrived from a device that produced no observation (still alive)."""
        return self._annotate(self.link.seen(device_id, ts))

    def tick(self, now: datetime) -> list[Decision]:
        """Check the time-based conditions at `now`."""
        ctx = self.ctx
        self.occupancy.tick(now, in_bed=self.bed.in_bed, staff_visit=ctx.visit is not None)
        ctx.occupancy = self.occupancy.at(now)
        self.rises.extend(self.rise.tick(now))
        out: list[Decision] = []
        for det in self.timed:
            out.extend(det.tick(now, ctx))
        if self.supervisor is not None:
            self.checks.extend(self.supervisor.tick(
                now, lambda: self.home.state(self.link, ctx.occupancy)))
        return self._annotate(_by_time(out))

    def take_checks(self) -> list[CheckEntry]:
        """Journal entries produced since the last call."""
        out, self.checks = self.checks, []
        return out

    def take_facts(self) -> tuple[list[OccupancyChange], list[RiseFact]]:
        """Occupancy changes and learnt rises since the last call."""
        rises, self.rises = self.rises, []
        return self.occupancy.take_changes(), rises

    def _annotate(self, decisions: list[Decision]) -> list[Decision]:
        visit = self.ctx.visit
        if visit is None:
            return decisions
        for d in decisions:
            d.detail["during_visit"] = visit.staff_id
        return decisions


def _by_time(decisions: list[Decision]) -> list[Decision]:
    """Decisions in event-time order (one tick can reach several conditions at once, and a
    replay ticks less often than a live home: the order must not depend on that)."""
    return sorted(decisions, key=lambda d: d.ts) if len(decisions) > 1 else decisions
