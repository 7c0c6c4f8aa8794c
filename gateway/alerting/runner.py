"""Runs the pure detectors on committed observations and hands decisions to alerting.

Each resident has a `ResidentEngine`. Observations are fed after they are committed, in
the order they were received. A ticker advances each engine on an *event clock*: the last
event time plus the wall time since it arrived, so a live home follows the wall clock and
a replayed or simulated night at 100x follows its own time.

At start the engines are rebuilt from the last hours of stored observations (and the
device link table), and their decisions are applied again: alerting skips conditions it
already alerted for, so an alert whose observation was committed just before a crash is
still raised after the restart, once. The event clock survives the restart: the newest
stored observation's event time plus the wall time since it was received.

No alert waits on that rebuild. Ingest runs from the start; the instant rules (sos, fall:
they decide from the observation alone) judge every committed observation the moment it
arrives, before and during the rebuild, outside the engines' lock. Live batches that
arrive during the rebuild are kept in order and fed to the engines (without the instant
rules, which already ran) once the replay of what came before them is done, so a
condition cannot be raised twice. Escalation runs on its own clock meanwhile.

Digital night checks run inside the engines on the same clock; their journal entries are
handed to the supervision journal after each feed and tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, select

from detectors.engine import ResidentEngine
from detectors.model import Decision, Observation, PlannedAbsence
from detectors.occupancy import OccupancyChange
from detectors.rise import RiseFact
from detectors.supervisor import CheckEntry, Plan, Supervisor
from gateway.alerting.service import AlertService
from gateway.config.gateway import GatewayConfig
from gateway.config.registry import Registry
from gateway.config.resident import resident_settings
from gateway.occupancy.absences import AbsenceService
from gateway.occupancy.facts import FactStore
from gateway.profiles.loader import ProfileLibrary
from gateway.storage.schema import device_status, observations
from gateway.storage.store import Store, from_ms, to_ms
from gateway.supervision.journal import Journal

log = logging.getLogger(__name__)
REBUILD_HOURS = 12
REBUILD_CHUNK = 20_000  # observations read and replayed at a time
PLANNED_REFRESH_TICKS = 60  # planned absences are re-read this often (every minute)
Facts = tuple[list[OccupancyChange], list[RiseFact]]


def _obs(row: dict[str, Any]) -> Observation:
    return Observation(row["resident_id"], row["device_id"], row["kind"], row["value"],
                       from_ms(row["ts_ms"]), row.get("room"))


class DetectorRunner:
    """Per-resident engines, fed by ingest and ticked by a thread."""

    def __init__(self, config: GatewayConfig, registry: Registry, profiles: ProfileLibrary,
                 store: Store, alerts: AlertService, *, tick_seconds: float = 1.0,
                 plans: dict[str, Plan | None] | None = None,
                 journal: Journal | None = None,
                 absences: AbsenceService | None = None) -> None:
        self.alerts = alerts
        self.store = store
        self.journal = journal
        self.facts = FactStore(store)
        self.absences = absences
        self.tick_seconds = tick_seconds
        # Link supervision counts a device never heard from since this start; devices
        # heard before have their real last-seen time from the link table (rebuild).
        now = datetime.now(UTC)
        self.plans = dict(plans or {})
        self.settings = {r.id: resident_settings(r, config, registry, profiles)
                          for r in registry.residents}
        self.engines = {rid: ResidentEngine(st, now, self.plans.get(rid))
                        for rid, st in self.settings.items()}
        self._planned: dict[str, list[PlannedAbsence]] = {}
        self._ticks = 0
        # Residents whose detectors run here: all of them (None), or, with several workers,
        # those of the partitions this worker holds (adopt/drop, docs/scale.md).
        self.owned: set[str] | None = None
        self._clock: dict[str, tuple[datetime, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rebuild_thread: threading.Thread | None = None
        # Live batches committed while the startup rebuild runs (fed after it, in order).
        self._pending: list[tuple[list[Observation], dict[str, dict[str, Any]]]] | None = None
        self._pending_lock = threading.Lock()
        self._upto_id: int | None = None
        self.rebuilt = threading.Event()  # set once the startup rebuild is done
        self.last_tick = time.monotonic()  # the watchdog's sign that the clock is alive
        self.refresh_planned()

    # --- clock ----------------------------------------------------------------------------

    def now_for(self, resident_id: str) -> datetime:
        """Event clock: last event time + wall time since; wall clock if none yet."""
        last = self._clock.get(resident_id)
        if last is None:
            return datetime.now(UTC)
        ts, wall = last
        return ts + timedelta(seconds=time.monotonic() - wall)

    @property
    def rebuilding(self) -> bool:
        """Whether the startup rebuild is still running."""
        return self._pending is not None

    def occupancy(self, resident_id: str) -> dict[str, Any]:
        """The resident's occupancy now: state, source, since, and why when unknown."""
        now = self.now_for(resident_id)
        if self.rebuilding:  # not known until the engines have caught up (never a wait)
            return {"state": "unknown", "source": None, "since": None, "planned": None,
                    "reason": "detectors_rebuilding", "at": now.isoformat()}
        with self._lock:
            occ = self.engines[resident_id].occupancy.at(now)
        return {"state": occ.state, "source": occ.source,
                "since": occ.since.isoformat() if occ.since else None,
                "planned": None if occ.planned is None else {
                    "start": occ.planned.start.isoformat(), "end": occ.planned.end.isoformat(),
                    "reason": occ.planned.reason},
                "reason": occ.reason, "at": now.isoformat()}

    def supervised_since(self, resident_id: str) -> datetime | None:
        """When this resident's digital checks began to be owed (None: not yet/no plan)."""
        engine = self.engines.get(resident_id)
        return engine.supervisor.since if engine and engine.supervisor else None

    # --- feeding --------------------------------------------------------------------------

    def feed(self, rows: list[dict[str, Any]], seen: dict[str, dict[str, Any]]) -> None:
        """Committed observations (dicts as stored) and device last-seen entries. The
        instant rules judge them at once; the engines take them when not rebuilding."""
        batch = [_obs(r) for r in rows]
        instant = self._instant(batch)
        if instant:
            self.alerts.handle(instant)
        with self._pending_lock:
            if self._pending is not None:
                self._pending.append((batch, seen))
                return
        with self._lock:
            decisions, checks, facts = self._observe(batch, seen, instant=False)
        self._deliver(decisions, checks, facts)

    def _instant(self, batch: list[Observation]) -> list[Decision]:
        owned = self.owned
        out: list[Decision] = []
        for obs in batch:
            engine = self.engines.get(obs.resident_id)
            if engine is not None and (owned is None or obs.resident_id in owned):
                out.extend(engine.instant(obs))
        return out

    def _observe(self, batch: list[Observation], seen: dict[str, dict[str, Any]], *,
                 instant: bool = True) -> tuple[list[Decision], list[CheckEntry], Facts]:
        """Feed observations, then last-seen entries, to the owned engines (the caller
        holds the lock); the decisions and journal entries they gave (those of the instant
        rules too unless `instant` is False)."""
        decisions: list[Decision] = []
        fed: dict[str, ResidentEngine] = {}  # only engines fed an observation tick checks
        owned = self.owned
        for obs in batch:
            engine = self.engines.get(obs.resident_id)
            if engine is None or (owned is not None and obs.resident_id not in owned):
                continue
            fed[obs.resident_id] = engine
            prev = self._clock.get(obs.resident_id)
            if prev is None and engine.supervisor is not None:
                # Until its first data a resident's checks ran on the wall clock; data
                # from an earlier time (a replay, a simulated night) moves them back.
                engine.supervisor.rewind(obs.ts)
            if prev is None or obs.ts >= prev[0]:
                self._clock[obs.resident_id] = (obs.ts, time.monotonic())
            before = engine.visits.in_progress()
            decisions.extend(engine.observe(obs, instant=instant))
            self._visit_change(obs.resident_id, before, engine)
        for entry in seen.values():
            engine = self.engines.get(entry["resident_id"])
            if engine is not None and (owned is None or entry["resident_id"] in owned):
                # Event time of the device's newest message (receive time in the link
                # table rebuilt at start), so replays follow their own clock.
                ms = entry.get("event_ms", entry["last_seen_ms"])
                decisions.extend(engine.seen(entry["device_id"], from_ms(ms)))
        return decisions, self._take_checks(fed.values()), self._take_facts(fed.values())

    def _deliver(self, decisions: list[Decision], checks: list[CheckEntry],
                 facts: Facts = ([], []), *, replay: bool = False) -> None:
        if facts[0] or facts[1]:
            self.facts.record(*facts)
        if decisions:
            self.alerts.handle(decisions, replay=replay)
        self._record(checks, late=replay)

    @staticmethod
    def _take_checks(engines: Iterable[ResidentEngine]) -> list[CheckEntry]:
        return [c for engine in engines for c in engine.take_checks()]

    @staticmethod
    def _take_facts(engines: Iterable[ResidentEngine]) -> Facts:
        changes: list[OccupancyChange] = []
        rises: list[RiseFact] = []
        for engine in engines:
            c, r = engine.take_facts()
            changes += c
            rises += r
        return changes, rises

    # --- planned absences -------------------------------------------------------------------

    def set_planned(self, resident_id: str, planned: list[PlannedAbsence]) -> None:
        """A resident's planned absences changed (through the API)."""
        with self._lock:
            self._planned[resident_id] = list(planned)
            engine = self.engines.get(resident_id)
            if engine is not None:
                engine.set_planned(planned)

    def refresh_planned(self) -> None:
        """Read every resident's planned absences (at start, and every minute: another
        worker may have changed them)."""
        if self.absences is None:
            return
        planned = self.absences.planned_all()
        with self._lock:
            for rid, items in planned.items():
                if self._planned.get(rid) != items and rid in self.engines:
                    self._planned[rid] = items
                    self.engines[rid].set_planned(items)

    def _record(self, checks: list[CheckEntry], *, late: bool = False) -> None:
        if checks and self.journal is not None:
            self.journal.record(checks, late=late)

    def set_plan(self, resident_id: str, plan: Plan | None) -> None:
        """A changed plan takes effect from the next check time."""
        with self._lock:
            engine = self.engines[resident_id]
            self.plans[resident_id] = plan  # an engine made later (adopt) starts with it
            if plan is None:
                engine.supervisor = None
            elif engine.supervisor is not None:
                engine.supervisor.plan = plan
            else:
                sup = Supervisor(resident_id, plan, engine.settings.tz)
                sup.cursor = sup.since = self.now_for(resident_id)
                engine.supervisor = sup

    def _visit_change(self, resident_id: str, before: Any, engine: ResidentEngine) -> None:
        after = engine.visits.in_progress()
        if after is not None and after is not before:
            self.alerts.visit_started(resident_id, after.staff_id, after.device_id,
                                      to_ms(after.start))
        if before is not None and after is None:
            end = engine.last_visit
            assert end is not None and end.end is not None
            self.alerts.visit_ended(resident_id, end.staff_id,
                                    to_ms(end.start),
                                    to_ms(end.end))

    def tick(self) -> None:
        """Advance every engine to its event clock (escalation only, while rebuilding)."""
        self.last_tick = time.monotonic()
        if self.rebuilding:
            self.alerts.escalate_due()
            return
        self._ticks += 1
        if self._ticks % PLANNED_REFRESH_TICKS == 0:
            self.refresh_planned()
        decisions = []
        with self._lock:
            engines = self._owned_engines()
            for rid, engine in engines.items():
                decisions.extend(engine.tick(self.now_for(rid)))
            checks = self._take_checks(engines.values())
            facts = self._take_facts(engines.values())
        self._deliver(decisions, checks, facts)
        self.alerts.escalate_due()

    def _owned_engines(self) -> dict[str, ResidentEngine]:
        owned = self.owned
        if owned is None:
            return self.engines
        return {rid: e for rid, e in self.engines.items() if rid in owned}

    # --- ownership (several workers) --------------------------------------------------------

    def adopt(self, residents: set[str], upto_id: int | None = None) -> None:
        """Start running these residents' detectors here: fresh engines, rebuilt from the
        stored observations (up to `upto_id`, where the caller's feed goes on from)."""
        residents = residents & set(self.engines)
        now = datetime.now(UTC)
        with self._lock:
            for rid in residents:
                self.engines[rid] = ResidentEngine(self.settings[rid], now, self.plans.get(rid))
                self.engines[rid].set_planned(self._planned.get(rid, []))
                self._clock.pop(rid, None)
            if self.owned is None:
                self.owned = set()
            self.owned |= residents
        self.rebuild(residents, upto_id)

    def drop(self, residents: set[str]) -> None:
        """Stop running these residents' detectors here (another worker takes them)."""
        with self._lock:
            if self.owned is None:
                self.owned = set(self.engines)
            self.owned -= residents

    # --- lifecycle ------------------------------------------------------------------------

    def rebuild(self, residents: set[str] | None = None, upto_id: int | None = None) -> None:
        """Replay the last hours of stored observations and the device link table (of some
        residents, and observations up to an id, when given).

        The observations are streamed from the database in chunks, so memory stays flat
        however busy the last hours were (the soak: 2.4 million rows had taken 1.8 GB as
        one list). The lock is held for the whole replay, as for one batch: the ticker
        and live batches wait, and see the engines only once they are rebuilt."""
        with self.store.engine.connect() as conn:
            newest = conn.execute(select(func.max(observations.c.ts_ms))).scalar()
            since = int(newest) - REBUILD_HOURS * 3_600_000 if newest is not None else 0
            where = [observations.c.ts_ms >= since]
            links_q = select(device_status)
            if residents is not None:
                ids = sorted(residents)
                where.append(observations.c.resident_id.in_(ids))
                links_q = links_q.where(device_status.c.resident_id.in_(ids))
            if upto_id is not None:
                where.append(observations.c.id <= upto_id)
            clocks = self._restart_clocks(conn, where)
            links = {r.device_id: dict(r._mapping) for r in conn.execute(links_q)}
        self._restore_facts(residents, from_ms(since))
        if self.journal is not None:
            self.journal.restore({rid: e.supervisor for rid, e in self.engines.items()
                                  if e.supervisor is not None
                                  and (residents is None or rid in residents)}, clocks)
        o = observations.c
        q = (select(o.resident_id, o.device_id, o.kind, o.value, o.ts_ms, o.room)
             .where(*where).order_by(o.ts_ms, o.id))
        decisions: list[Decision] = []
        checks: list[CheckEntry] = []
        changes: list[OccupancyChange] = []
        rises: list[RiseFact] = []
        replayed = 0
        with self._lock:
            for part in self.store.stream_rows(q, REBUILD_CHUNK):
                d, c, f = self._observe([Observation(r[0], r[1], r[2], r[3],
                                                     from_ms(r[4]), r[5])
                                         for r in part], {})
                decisions += d
                checks += c
                changes += f[0]
                rises += f[1]
                replayed += len(part)
            d, c, f = self._observe([], links)
        self._deliver(decisions + d, checks + c, (changes + f[0], rises + f[1]), replay=True)
        with self._lock:
            for rid, clock in clocks.items():
                self._clock[rid] = (clock, time.monotonic())
                sup = self.engines[rid].supervisor if rid in self.engines else None
                if sup is not None:
                    sup.started = clock  # checks due before now were missed: late
        live = self._catch_up()
        log.info("detectors rebuilt from %d observations of the last %d h (%s residents); "
                 "%d live observations that came meanwhile fed after them", replayed,
                 REBUILD_HOURS, "all" if residents is None else len(residents), live)

    def _catch_up(self) -> int:
        """Feed the live batches kept during the rebuild, in order, until none is left;
        then live batches go straight to the engines again."""
        fed = 0
        while True:
            with self._pending_lock:
                if not self._pending:
                    self._pending = None
                    return fed
                batches, self._pending = self._pending, []
            for batch, seen in batches:
                with self._lock:
                    d, c, f = self._observe(batch, seen, instant=False)
                self._deliver(d, c, f)
                fed += len(batch)

    def _restore_facts(self, residents: set[str] | None, since: datetime) -> None:
        """Occupancy as it was when the replay window starts, and the rises of the last
        nights (the replay alone covers only REBUILD_HOURS)."""
        ids = sorted(residents if residents is not None else self.engines)
        if not ids:
            return
        occupancy = self.facts.occupancy_before(ids, since)
        rises = self.facts.rises(ids, since)
        with self._lock:
            for rid in ids:
                engine = self.engines.get(rid)
                if engine is not None:
                    engine.restore(occupancy.get(rid), rises.get(rid, []))

    @staticmethod
    def _restart_clocks(conn: Connection, where: list[ColumnElement[bool]]
                        ) -> dict[str, datetime]:
        """Each resident's clock now: newest event time + wall time since it arrived."""
        o = observations.c
        newest = (select(o.resident_id, func.max(o.ts_ms).label("ts_ms")).where(*where)
                  .group_by(o.resident_id).subquery())
        q = (select(o.resident_id, o.ts_ms, func.max(o.received_ms))
             .join_from(observations, newest, and_(o.resident_id == newest.c.resident_id,
                                                   o.ts_ms == newest.c.ts_ms))
             .where(*where).group_by(o.resident_id, o.ts_ms))
        wall = datetime.now(UTC)
        return {rid: from_ms(ts) + max(timedelta(0), wall - from_ms(received))
                for rid, ts, received in conn.execute(q)}

    def prepare(self) -> None:
        """Before ingest starts: remember where the stored observations end (the rebuild
        replays up to there) and keep live batches until it is done."""
        with self.store.engine.connect() as conn:
            upto = conn.execute(select(func.max(observations.c.id))).scalar()
        self._upto_id = int(upto) if upto is not None else 0
        with self._pending_lock:
            self._pending = []

    def start(self, *, rebuild: bool = True, wait: bool = False) -> None:
        """Rebuild in the background (unless residents are adopted later) and tick; with
        `wait`, return once the rebuild is done."""
        if rebuild:
            if self._pending is None:
                self.prepare()
            self._rebuild_thread = threading.Thread(target=self._rebuild_at_start,
                                                    name="tillsyn-rebuild", daemon=True)
            self._rebuild_thread.start()
        else:
            self.owned = set()
            self.rebuilt.set()
        self._thread = threading.Thread(target=self._run, name="tillsyn-detectors",
                                        daemon=True)
        self._thread.start()
        if wait:
            self.rebuilt.wait()

    def _rebuild_at_start(self) -> None:
        try:
            self.rebuild(upto_id=self._upto_id)
        except Exception:
            # The engines run on what was rebuilt so far; the live feed must not stall.
            log.exception("detector rebuild failed; continuing with live data")
            self._catch_up()
        finally:
            self.rebuilt.set()

    def _run(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            try:
                self.tick()
            except Exception:  # never let one bad tick stop supervision
                log.exception("detector tick failed")

    def stop(self) -> None:
        """Stop ticking."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._rebuild_thread is not None:
            self._rebuild_thread.join(timeout=5)
