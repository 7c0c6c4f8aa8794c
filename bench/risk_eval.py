"""Evidence for the fall-risk model on the simulated cohort (docs/fall-risk.md):

1. walking-speed estimation error against simulator truth (per day and per transit);
2. a model trained on simulated residents, evaluated on held-out residents (ROC AUC,
   Brier) beside a walking-speed-only model and the base rate;
3. trend detection: a slowing of 5 cm/s over four weeks flagged by `fall_risk_rise`
   within 14 days of its onset, and false rises per resident-year in stable residents.

Run: .venv/bin/python -m bench.risk_eval [--train N] [--days D] [--trend N] [--out DIR]
                                          [--trend-days D] [--workers N]
Not part of the test suite; the figures are printed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from detectors.features import daily, onsets, transits
from detectors.risk import inputs, level_of, rise
from detectors.trend import flagged_days
from firmware_stubs.cohort import Person, make_cohort, simulate
from gateway.risk.artefact import load
from gateway.risk.dataset import cohort_spec, simulated
from gateway.risk.train import train

TZ = ZoneInfo("Europe/Stockholm")
FIRST = date(2026, 1, 1)  # gateway.risk.dataset.simulated's default first day
SCORED_FROM = 35  # trend detection is scored from this day of each resident's history
DETECT_WITHIN_DAYS = 14  # the target: a slowing flagged within 14 days of its onset


def days_from_onset(p: Person, raised: Iterable[date]) -> list[int]:
    """Days from a declining resident's onset to each raised day within the target's
    DETECT_WITHIN_DAYS of it, earliest first."""
    assert p.onset_day is not None
    onset = FIRST + timedelta(days=p.onset_day)
    return sorted((d - onset).days for d in raised
                  if 0 <= (d - onset).days <= DETECT_WITHIN_DAYS)


def speed_error(n: int, days: int, seed: int) -> None:
    day_err: dict[str, list[float]] = defaultdict(list)
    walk_err: dict[str, list[float]] = defaultdict(list)
    for p in make_cohort(n, seed, days):
        rows, truth = simulate(p, FIRST, days, TZ, seed)
        spec = cohort_spec(p.index, p.distances_m, TZ)
        feats = daily(rows, spec, FIRST, FIRST + timedelta(days=days - 1))
        on, bed, _ = onsets(rows, spec)
        est = {w.ts_ms: w for w in transits(on, bed, spec)}
        for f, t in zip(feats, truth, strict=True):
            if f.walking_speed is not None:
                day_err["all"].append(abs(f.walking_speed - t.speed))
            for ts, v in t.transits:
                w = est.get(ts)
                if w is None:
                    continue
                band = "2-3 m" if w.distance_cm < 300 else "3-4 m"
                walk_err[band].append(abs(w.speed_cm_s - v))
                walk_err["all"].append(abs(w.speed_cm_s - v))
    print(f"1. walking speed, {n} residents x {days} days, sensors 2-4 m apart")
    e = day_err["all"]
    print(f"   per day (interquartile mean of the day's transits vs the day's true mean speed): "
          f"MAE {statistics.fmean(e):.2f} cm/s over {len(e)} days, "
          f"90th percentile {sorted(e)[int(0.9 * len(e))]:.2f}")
    for band in ("2-3 m", "3-4 m", "all"):
        w = walk_err[band]
        print(f"   per transit {band}: MAE {statistics.fmean(w):.2f} cm/s over {len(w)} walks")


def trend(model_dir: Path, n: int, days: int, seed: int, workers: int) -> None:
    """What the service raises as fall_risk_rise: a new walking-speed decline
    (detectors/trend.py, needs no model), a level rise of the model, and either."""
    art = load(model_dir)
    m = art.model
    ds, people = simulated(n, days, seed, courses=["decline", "stable"], workers=workers)
    found: dict[str, list[bool]] = defaultdict(list)
    delays: dict[str, list[int]] = defaultdict(list)
    false: dict[str, int] = defaultdict(int)
    stable_days = 0
    for p in people:
        hist = ds.days[p.id]
        by_day = {f.day: f for f in hist}
        scored = hist[SCORED_FROM:]
        decl = {d.day for d in flagged_days({f.day: f.walking_speed for f in hist},
                                            scored[0].day, scored[-1].day)}
        inps = [inputs(by_day, f.day) for f in scored]
        ok = [i for i, inp in enumerate(inps) if inp.scorable]
        levels: list[tuple[date, str | None]] = [(f.day, None) for f in scored]
        if ok:
            probs = m.probabilities(np.array([inps[i].vector(m.inputs) for i in ok]))
            for i, pr in zip(ok, probs, strict=True):
                levels[i] = (scored[i].day, level_of(float(pr), m.thresholds))
        lev = {levels[i][0] for i in range(len(levels)) if rise(levels[:i + 1]) is not None}
        for name, days_raised in (("decline", decl), ("level", lev), ("either", decl | lev)):
            if p.course == "decline":
                hit = days_from_onset(p, days_raised)
                found[name].append(bool(hit))
                delays[name] += hit[:1]
            else:
                false[name] += len(days_raised)
        if p.course != "decline":
            stable_days += len(scored)
    years = stable_days / 365
    print(f"3. trend detection ({n // 2} declining, {n // 2} stable residents, {days} days, "
          f"scored from day 36; model {art.version})")
    for name, what in (("decline", "walking-speed decline (detectors/trend.py)"),
                       ("level", "level rise of the model"),
                       ("either", "fall_risk_rise as the service raises it (either)")):
        f = found[name]
        d = delays[name]
        print(f"   {what}: 5 cm/s over 4 weeks flagged within 14 days of onset "
              f"{sum(f)}/{len(f)} = {sum(f) / len(f):.1%} (days from onset median "
              f"{statistics.median(d) if d else '-'}); false in stable residents "
              f"{false[name]} in {years:.1f} resident-years = {false[name] / years:.2f} "
              "per resident-year")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--speed", type=int, default=200, help="residents for the speed error")
    ap.add_argument("--train", type=int, default=1000, help="residents to train on")
    ap.add_argument("--days", type=int, default=240)
    ap.add_argument("--trend", type=int, default=400, help="residents for trend detection")
    ap.add_argument("--trend-days", type=int, default=365)
    ap.add_argument("--workers", type=int, default=2, help="simulation processes")
    ap.add_argument("--out", type=Path, default=Path("var/risk-model"))
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    t0 = time.perf_counter()
    speed_error(a.speed, 30, a.seed + 100)
    ds, _ = simulated(a.train, a.days, a.seed, workers=a.workers)
    art = train(ds, a.out, seed=a.seed, simulated=True)
    ev = art.meta["evaluation"]
    print(f"2. model {art.version}: {art.meta['residents']} residents, {art.meta['samples']} "
          f"resident-days, {art.meta['falls']} falls, {art.meta['positive_samples']} "
          "days followed by a fall within 21 days")
    print(f"   held out {ev['held_out_residents']} residents ({ev['held_out_days']} days): "
          f"ROC AUC {ev['roc_auc']}, Brier {ev['brier']}")
    print(f"   walking speed alone: ROC AUC {ev['speed_only']['roc_auc']}, Brier "
          f"{ev['speed_only']['brier']}; base rate {ev['base_rate']['probability']}: Brier "
          f"{ev['base_rate']['brier']}")
    print(f"   levels: moderate >= {art.meta['thresholds'][0]}, high >= "
          f"{art.meta['thresholds'][1]}")
    trend(a.out, a.trend, a.trend_days, a.seed + 200, a.workers)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
