"""Daily fall-risk scoring in the service: movement features per resident-day from stored
observations, a score from the installed model, and a `fall_risk_rise` alert for day staff
when the level rises (docs/fall-risk.md)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select

from detectors.features import DayFeatures, HomeSpec, daily
from detectors.model import Decision
from detectors.risk import (
    LONG_BASELINE_DAYS,
    RECENT_DAYS,
    RISE_MEMORY_DAYS,
    RISE_PERSIST_DAYS,
    Inputs,
    inputs,
    rise,
)
from detectors.trend import BASELINE_DAYS as DECLINE_BASELINE_DAYS
from detectors.trend import THRESHOLD as DECLINE_THRESHOLD
from detectors.trend import WINDOW_DAYS, Decline, armed
from gateway.alerting.service import AlertService
from gateway.config.gateway import GatewayConfig
from gateway.config.loader import beside_config
from gateway.config.registry import Registry, Resident
from gateway.config.resident import night as resident_night
from gateway.errors import ConfigError
from gateway.ibic.facts import movement_readings
from gateway.profiles.loader import ProfileLibrary
from gateway.risk.artefact import Artefact, load
from gateway.schedule import Periodic
from gateway.storage.schema import risk_days
from gateway.storage.store import Store, now_ms, to_ms

log = logging.getLogger(__name__)
HISTORY_DAYS = max(RECENT_DAYS + LONG_BASELINE_DAYS, WINDOW_DAYS + DECLINE_BASELINE_DAYS)
# How far back the stored decline statistics are read to tell a new slowing from one already
# alerted on (detectors.trend.armed).
DECLINE_MEMORY_DAYS = 180


def home_spec(res: Resident, config: GatewayConfig, profiles: ProfileLibrary) -> HomeSpec:
    """The home as the features see it."""
    night = resident_night(res, config.site)
    bed = set()
    for d in res.devices:
        prof = profiles.profiles.get(d.profile)
        if d.profile == "tillsyn.native":
            if d.room == "bedroom" and "bed" in d.id:
                bed.add(d.id)
        elif prof is not None and "bed" in prof.kinds:
            bed.add(d.id)
    return HomeSpec({d.id: d.room for d in res.devices if d.room}, frozenset(bed),
                    frozenset(d.id for d in res.devices if d.exterior),
                    HomeSpec.parse_distances(res.sensor_distances_m),
                    ZoneInfo(config.site.timezone), time.fromisoformat(night.start),
                    time.fromisoformat(night.end))


def load_model(config: GatewayConfig, config_path: Path | str | None) -> Artefact | None:
    """The configured artefact (None when none is configured); ConfigError if broken."""
    if config.risk.model is None:
        if config.risk.method == "model":
            raise ConfigError([f"{config_path}: risk.method: value 'model': needs risk.model "
                               "(an artefact from `tillsyn risk train`)"])
        return None
    return load(beside_config(config.risk.model, config_path))


METHOD_NAMES = {
    "decline": ("walking-speed decline test (no model)",
                "gånghastighetens nedgångstest (ingen modell)"),
    "speed": ("model of walking-speed change", "modell av gånghastighetens förändring"),
    "model": ("full model (all movement measures)", "full modell (alla rörelsemått)"),
}


def method_in_force(config: GatewayConfig, artefact: Artefact | None) -> dict[str, Any]:
    """Which method gives the risk (docs/fall-risk.md#which-method), and why."""
    configured = config.risk.method
    if artefact is None:
        mid, why = "decline", ("no model is installed", "ingen modell är installerad")
    elif configured == "decline":
        mid, why = "decline", ("chosen in the configuration (risk.method)",
                               "valt i konfigurationen")
    elif configured == "model":
        mid, why = str(artefact.meta.get("method", "model")), (
            "chosen in the configuration (risk.method)", "valt i konfigurationen")
    elif "recommended" not in artefact.meta:
        mid, why = str(artefact.meta.get("method", "model")), (
            "an artefact trained before the comparison existed: its own method",
            "en modell tränad före jämförelsen: dess egen metod")
    elif artefact.meta.get("recommended") == "decline":
        mid, why = "decline", (
            "the installed model was not significantly better than the decline test on "
            "held-out residents", "den installerade modellen var inte signifikant bättre än "
            "nedgångstestet på brukare som hölls utanför träningen")
    else:
        mid = str(artefact.meta.get("method", "model"))
        why = ("the simplest method not significantly worse than the best on held-out "
               "residents", "den enklaste metoden som inte var signifikant sämre än den "
               "bästa på brukare som hölls utanför träningen")
    en, sv = METHOD_NAMES[mid]
    return {"id": mid, "configured": configured, "en": en, "sv": sv, "reason_en": why[0],
            "reason_sv": why[1], "decline_threshold": DECLINE_THRESHOLD}


class RiskService:
    """Features, scores and rise alerts, and the reads behind `/api/residents/{id}/risk`."""

    def __init__(self, store: Store, registry: Registry, config: GatewayConfig,
                 profiles: ProfileLibrary, artefact: Artefact | None,
                 alerting: AlertService | None = None) -> None:
        self.store = store
        self.registry = registry
        self.config = config
        self.profiles = profiles
        self.artefact = artefact
        self.alerting = alerting
        self.method = method_in_force(config, artefact)
        self.tz = ZoneInfo(config.site.timezone)
        self._lock = threading.Lock()
        self._schedule = Periodic("risk", self._round, 900,
                                  failed="fall-risk scoring round failed")

    # --- features ---------------------------------------------------------------------------

    def compute_features(self, res: Resident, first: date, last: date) -> list[DayFeatures]:
        """Features of days first..last straight from the stored observations."""
        spec = home_spec(res, self.config, self.profiles)
        lo = to_ms(datetime.combine(first - timedelta(days=1), time(12), self.tz))
        hi = to_ms(datetime.combine(last + timedelta(days=1), time(12), self.tz))
        with self.store.engine.connect() as conn:
            rows = movement_readings(conn, res.id, lo, hi)
        return daily(rows, spec, first, last)

    def history(self, res: Resident, last: date, days: int) -> list[DayFeatures]:
        """Features of the `days` days up to `last`: stored ones, the rest computed (and
        stored, so each day is computed once)."""
        first = last - timedelta(days=days - 1)
        stored = self.stored_days(res.id, first, last)
        missing = [first + timedelta(days=i) for i in range(days)
                   if first + timedelta(days=i) not in stored]
        if missing:
            fresh = self.compute_features(res, missing[0], missing[-1])
            keep = set(missing)
            for f in fresh:
                if f.day in keep:
                    stored[f.day] = f
            self.store_features(res.id, [f for f in fresh if f.day in keep])
        return [stored[first + timedelta(days=i)] for i in range(days)]

    def stored_days(self, rid: str, first: date, last: date) -> dict[date, DayFeatures]:
        """The stored features of days first..last (one query; what a backfill reads)."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(risk_days.c.day, risk_days.c.features)
                                .where(risk_days.c.resident_id == rid)
                                .where(risk_days.c.day >= first.isoformat())
                                .where(risk_days.c.day <= last.isoformat())).all()
        return {(d := date.fromisoformat(r.day)): DayFeatures.from_dict(d, r.features)
                for r in rows}

    def store_features(self, rid: str, days: list[DayFeatures]) -> None:
        """Keep computed features of complete days (a day scored already keeps its row)."""
        # Only complete days: today and the night after it are still happening.
        done = self.complete_until()
        rows = [{"resident_id": rid, "day": f.day.isoformat(), "features": f.as_dict(),
                 "status": "features", "computed_ms": now_ms()}
                for f in days if f.day <= done]
        if not rows:
            return
        with self._lock, self.store.engine.begin() as conn:
            # A day scored meanwhile keeps its row.
            have = set(conn.execute(select(risk_days.c.day)
                                    .where(risk_days.c.resident_id == rid)
                                    .where(risk_days.c.day.in_([r["day"] for r in rows])))
                       .scalars())
            new = [r for r in rows if r["day"] not in have]
            if new:
                conn.execute(insert(risk_days), new)

    def complete_until(self, now: datetime | None = None) -> date:
        """The newest day whose night has ended (before score_time: the day before)."""
        local = (now or datetime.now(UTC)).astimezone(self.tz)
        at = time.fromisoformat(self.config.risk.score_time)
        return local.date() - timedelta(days=1 if local.time() >= at else 2)

    # --- scoring ----------------------------------------------------------------------------

    def score_day(self, res: Resident, day: date) -> dict[str, Any]:
        """Features, inputs, the walking-speed decline statistic and (with a model) the
        score of one complete day; stored, and a rise alert raised when the level rises or
        a new slowing is flagged (the decline needs no model)."""
        hist = self.history(res, day, HISTORY_DAYS)
        inp = inputs(hist, day, self.config.risk.baseline_days)
        dec = inp.decline
        new_decline = dec is not None and dec.flagged and \
            armed(self._previous_declines(res.id, day))
        stored_inputs = _inputs(inp)
        stored_inputs["decline"] = None if dec is None else \
            dict(dec.as_dict(), alerted=new_decline)
        row: dict[str, Any] = {"resident_id": res.id, "day": day.isoformat(),
                               "features": hist[-1].as_dict(), "inputs": stored_inputs,
                               "probability": None, "level": None, "factors": None,
                               "model_version": None, "computed_ms": now_ms()}
        if self.artefact is None:
            row["status"] = "no_model"
        elif self.method["id"] == "decline":
            row["status"] = "decline_only"  # a model is installed but not in force
        elif not inp.scorable:
            row["status"] = "insufficient_data"
            row["model_version"] = self.artefact.version
        else:
            score = self.artefact.model.score(inp)
            row.update(status="scored", probability=score.probability, level=score.level,
                       factors=[f.as_dict() for f in score.factors],
                       model_version=self.artefact.version)
        with self._lock, self.store.engine.begin() as conn:
            conn.execute(delete(risk_days).where(risk_days.c.resident_id == res.id)
                         .where(risk_days.c.day == row["day"]))
            conn.execute(insert(risk_days).values(**row))
        level_rise = self.level_rise(res, day) if row["status"] == "scored" else None
        if level_rise is not None or new_decline:
            self._raise(res, day, row, level_rise, dec if new_decline else None)
        return row

    def _previous_declines(self, rid: str, day: date) -> list[tuple[float | None, bool]]:
        """(z, alerted) of the stored days before `day`, oldest first."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(risk_days.c.inputs).where(risk_days.c.resident_id == rid)
                .where(risk_days.c.day >= (day - timedelta(days=DECLINE_MEMORY_DAYS))
                       .isoformat())
                .where(risk_days.c.day < day.isoformat())
                .where(risk_days.c.status != "features")
                .order_by(risk_days.c.day)).scalars().all()
        out: list[tuple[float | None, bool]] = []
        for inp in rows:
            d = (inp or {}).get("decline")
            out.append((None, False) if not d else (d.get("z"), bool(d.get("alerted"))))
        return out

    def level_rise(self, res: Resident, day: date) -> tuple[str, str] | None:
        """The rise of the model's level that `day` completes, from the stored levels
        (detectors.risk.rise): (previous highest level, new level) or None."""
        with self.store.engine.connect() as conn:
            levels = conn.execute(
                select(risk_days.c.day, risk_days.c.level, risk_days.c.status)
                .where(risk_days.c.resident_id == res.id)
                .where(risk_days.c.day >= (day - timedelta(
                    days=RISE_MEMORY_DAYS + RISE_PERSIST_DAYS)).isoformat())
                .where(risk_days.c.day <= day.isoformat())
                .where(risk_days.c.status.in_(("scored", "insufficient_data")))
                .order_by(risk_days.c.day)).all()
        return rise([(date.fromisoformat(r.day), r.level) for r in levels])

    def _raise(self, res: Resident, day: date, row: dict[str, Any],
               level_rise: tuple[str, str] | None, dec: Decline | None) -> None:
        if self.alerting is None:
            return
        factors = list(row["factors"] or [])
        reasons = []
        if dec is not None:
            reasons.append("walking_speed_decline")
            en, sv = dec.words()
            # The slowing leads: it is why the alert was raised today.
            factors = [{"input": "walking_speed_decline", "contribution": dec.z, "en": en,
                        "sv": sv}] + factors
        if level_rise is not None:
            reasons.append("level_rise")
        detail = {"day": day.isoformat(), "reasons": reasons, "level": row["level"],
                  "previous_level": None if level_rise is None else level_rise[0],
                  "probability": row["probability"], "factors": factors,
                  "decline": None if dec is None else dec.as_dict(),
                  "model_version": row["model_version"], "audience": "day"}
        self.alerting.handle([Decision("raise", "fall_risk_rise", res.id, "fall_risk_rise",
                                       datetime.now(UTC), detail)])
        log.info("fall risk of %s rose on %s (%s)", res.id, day, ", ".join(reasons))

    def run_due(self, now: datetime | None = None) -> int:
        """Score every resident's complete days not scored yet (at most catch_up_days back);
        returns how many resident-days were scored."""
        if not self.config.risk.enabled:
            return 0
        last = self.complete_until(now)
        first = last - timedelta(days=self.config.risk.catch_up_days - 1)
        done = 0
        for res in self.registry.residents:
            with self.store.engine.connect() as conn:
                finished = set(conn.execute(
                    select(risk_days.c.day).where(risk_days.c.resident_id == res.id)
                    .where(risk_days.c.day >= first.isoformat())
                    .where(risk_days.c.status != "features")).scalars())
            day = first
            while day <= last:
                if day.isoformat() not in finished:
                    try:
                        self.score_day(res, day)
                        done += 1
                    except Exception:  # one resident's bad data must not stop the others
                        log.exception("fall-risk scoring failed for %s on %s", res.id, day)
                day += timedelta(days=1)
        return done

    # --- reads ------------------------------------------------------------------------------

    def trend(self, rid: str, days: int = 90) -> dict[str, Any]:
        """Scores and walking speed of the last `days` days, newest last."""
        last = self.complete_until()
        first = last - timedelta(days=days - 1)
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(risk_days).where(risk_days.c.resident_id == rid)
                                .where(risk_days.c.day >= first.isoformat())
                                .order_by(risk_days.c.day)).mappings().all()
        series = [{"day": r["day"], "status": r["status"], "probability": r["probability"],
                   "level": r["level"], "factors": r["factors"] or [],
                   "walking_speed": (r["features"] or {}).get("walking_speed"),
                   "decline": (r["inputs"] or {}).get("decline"),
                   "model_version": r["model_version"]} for r in rows]
        scored = [s for s in series if s["status"] == "scored"]
        model = None if self.artefact is None else {
            k: self.artefact.meta.get(k) for k in (
                "version", "trained_at", "source", "simulated", "thresholds", "evaluation")}
        declines = [s["decline"] for s in series if s["decline"]]
        return {"resident_id": rid, "model": model, "method": self.method,
                "model_missing_reason": None if model else
                "no fall-risk model is installed (risk.model in the configuration)",
                "latest": scored[-1] if scored else None,
                "latest_decline": declines[-1] if declines else None, "series": series}

    # --- the schedule -----------------------------------------------------------------------

    def start(self) -> None:
        """Score at start (catching up) and then every 15 minutes."""
        self._schedule.start()

    def _round(self) -> None:
        n = self.run_due()
        if n:
            log.info("fall risk: %d resident-days scored", n)

    def stop(self) -> None:
        """Stop the schedule."""
        self._schedule.stop()


def _inputs(inp: Inputs) -> dict[str, Any]:
    return {"values": inp.values, "recent": inp.recent, "usual": inp.usual,
            "days_with_data": inp.days_with_data,
            "baseline_days_with_data": inp.baseline_days_with_data}
