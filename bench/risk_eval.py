"""Evidence for fall-risk detection on the simulated cohort (docs/fall-risk.md). Every
figure is from the simulator, whose variability comes from the literature
(firmware_stubs/cohort.py, VARIABILITY): it is evidence about the method under those
assumptions, not about real residents.

1. walking speed against simulator truth: MAE per day and per transit, and the measured
   day-to-day CV of the daily speed (Hayes et al. 2008 measured 7.9% +/- 2.7% in healthy
   elders, 14.7% +/- 7.4% with MCI), per variability setting;
2. which method: the decline test alone, walking-speed change alone and the full model,
   trained on simulated residents and compared on held-out ones, with bootstrap 95%
   intervals (gateway/risk/train.py), and the method it recommends;
3. the detection curve of the walking-speed decline test: for declines of 2.5, 5, 10 and
   15 cm/s reached over 4 and over 12 weeks, the share of residents flagged within 14, 28
   and 56 days of the decline's end, at the threshold that gives at most one false
   `fall_risk_rise` per stable resident-year, per variability setting.

Run: .venv/bin/python -m bench.risk_eval [--part 1 2 3] [--workers 2] [--quick]
Not part of the test suite; the figures are printed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from detectors.features import daily, onsets, transits
from detectors.trend import decline, new_declines
from firmware_stubs.cohort import Person, make_cohort, simulate
from gateway.risk.dataset import cohort_spec, simulated
from gateway.risk.train import train

TZ = ZoneInfo("Europe/Stockholm")
FIRST = date(2026, 1, 1)
SETTINGS = ("low", "default", "high")
SIZES = (2.5, 5.0, 10.0, 15.0)
WEEKS = (4, 12)
WITHIN = (14, 28, 56)
ONSET = 120  # the decline starts on this day: a full 90-day baseline before its window
SCORED_FROM = 35  # stable residents are scored from this day (as the service would)
THRESHOLDS = tuple(round(2.0 + 0.1 * i, 1) for i in range(41))  # 2.0 .. 6.0
FALSE_BUDGET = 1.0  # false fall_risk_rise per stable resident-year


def speed_error(n: int, days: int, seed: int, setting: str) -> None:
    day_err: list[float] = []
    walk_err: dict[str, list[float]] = defaultdict(list)
    cvs: list[float] = []
    for p in make_cohort(n, seed, days, courses=["stable"], variability=setting):
        rows, truth = simulate(p, FIRST, days, TZ, seed)
        spec = cohort_spec(p.index, p.distances_m, TZ)
        feats = daily(rows, spec, FIRST, FIRST + timedelta(days=days - 1))
        on, bed, _ = onsets(rows, spec)
        est = {w.ts_ms: w for w in transits(on, bed, spec)}
        speeds = [f.walking_speed for f in feats if f.walking_speed is not None]
        cvs.append(statistics.stdev(speeds) / statistics.fmean(speeds))
        for f, t in zip(feats, truth, strict=True):
            if f.walking_speed is not None:
                day_err.append(abs(f.walking_speed - t.speed))
            for ts, v in t.transits:
                w = est.get(ts)
                if w is not None:
                    band = "2-3 m" if w.distance_cm < 300 else "3-4 m"
                    walk_err[band].append(100 * (w.speed_cm_s - v) / v)
    print(f"   {setting}: measured daily CV median {100 * statistics.median(cvs):.1f}% "
          f"(interquartile {100 * statistics.quantiles(cvs, n=4)[0]:.1f}-"
          f"{100 * statistics.quantiles(cvs, n=4)[2]:.1f}%); daily speed MAE "
          f"{statistics.fmean(day_err):.2f} cm/s over {len(day_err)} days (90th percentile "
          f"{sorted(day_err)[int(0.9 * len(day_err))]:.2f}); per-walk error SD "
          + ", ".join(f"{b} {statistics.pstdev(e):.1f}% of the speed" for b, e in
                      sorted(walk_err.items())))


def comparison(n: int, days: int, seed: int, workers: int, rounds: int) -> None:
    t0 = time.perf_counter()
    ds, _ = simulated(n, days, seed, workers=workers)
    with tempfile.TemporaryDirectory() as out:
        art = train(ds, Path(out), seed=seed, simulated=True, rounds=rounds)
    ev = art.meta["evaluation"]
    cmp_ = ev["comparison"]
    print(f"   {art.meta['residents']} residents x {days} days, {art.meta['falls']} falls; "
          f"held out {ev['held_out_residents']} residents ({ev['held_out_days']} days, "
          f"{ev['held_out_positive']} followed by a fall in 21 days); {cmp_['rounds']} "
          f"bootstrap rounds over residents; {time.perf_counter() - t0:.0f} s")
    print("   | method | ROC AUC (95% CI) | Brier (95% CI) | AUC minus best (95% CI) |")
    print("   |---|---|---|---|")
    for m, r in cmp_["methods"].items():
        print(f"   | {m} | {r['roc_auc']:.3f} ({r['roc_auc_ci'][0]:.3f}-{r['roc_auc_ci'][1]:.3f}) "
              f"| {r['brier']:.4f} ({r['brier_ci'][0]:.4f}-{r['brier_ci'][1]:.4f}) | "
              f"{r['auc_minus_best']:+.3f} ({r['auc_minus_best_ci'][0]:+.3f} to "
              f"{r['auc_minus_best_ci'][1]:+.3f}) |")
    print(f"   base rate: Brier {ev['base_rate']['brier']:.4f}; best {cmp_['best']}; "
          f"recommended (simplest not significantly worse): {cmp_['recommended']}")
    # How many residents a cohort needs to separate each method from the best at the
    # effect sizes seen here: the interval's half-width shrinks as 1/sqrt(residents held
    # out); separation with 80% power needs the difference to be 2.8 standard errors.
    held = ev["held_out_residents"]
    for m, r in cmp_["methods"].items():
        if m == cmp_["best"]:
            continue
        lo, hi = r["auc_minus_best_ci"]
        se = (hi - lo) / (2 * 1.96)
        diff = abs(r["auc_minus_best"])
        if diff == 0 or se == 0:
            continue
        need = held * (se / (diff / 2.8)) ** 2
        print(f"   to separate {m} from {cmp_['best']} (AUC difference {diff:.3f}) with 80% "
              f"power: about {need:,.0f} held-out residents, {4 * need:,.0f} in all "
              f"(extrapolated from the interval's width, {days} days each)")


def _z_series(job: tuple[Person, int, int]) -> list[tuple[int, float | None]]:
    """(day index, decline statistic) of one simulated resident."""
    p, days, seed = job
    rows, _ = simulate(p, FIRST, days, TZ, seed)
    feats = daily(rows, cohort_spec(p.index, p.distances_m, TZ), FIRST,
                  FIRST + timedelta(days=days - 1))
    speeds = {f.day: f.walking_speed for f in feats}
    out: list[tuple[int, float | None]] = []
    for k in range(days):
        d = decline(speeds, FIRST + timedelta(days=k))
        out.append((k, None if d is None else d.z))
    return out


def new_flags(series: list[tuple[int, float | None]], threshold: float,
              start: int = 0) -> list[int]:
    """Days from `start` on which a new decline is flagged at `threshold` (the service's
    rule, detectors.trend.new_declines)."""
    return new_declines([(k, z) for k, z in series if k >= start], threshold)


def detection_curve(setting: str, n_stable: int, n_cell: int, seed: int,
                    pool: ProcessPoolExecutor) -> float:
    """Prints the curve of one variability setting; returns its operating threshold."""
    t0 = time.perf_counter()
    stable = make_cohort(n_stable, seed, 365, courses=["stable"], variability=setting)
    stable_z = list(pool.map(_z_series, [(p, 365, seed) for p in stable], chunksize=4))
    years = sum(365 - SCORED_FROM for _ in stable) / 365
    false = {th: sum(len(new_flags(s, th, SCORED_FROM)) for s in stable_z) / years
             for th in THRESHOLDS}
    op = next((th for th in THRESHOLDS if false[th] <= FALSE_BUDGET), THRESHOLDS[-1])
    cells: dict[tuple[float, int], list[list[tuple[int, float | None]]]] = {}
    for size in SIZES:
        for weeks in WEEKS:
            days = ONSET + 7 * weeks + max(WITHIN) + 1
            people = make_cohort(n_cell, seed + int(size * 10) + weeks, days,
                                 courses=["decline"], variability=setting,
                                 decline_cm_s=size, decline_days=7 * weeks, onset=ONSET)
            cells[(size, weeks)] = list(pool.map(_z_series, [(p, days, seed) for p in people],
                                                 chunksize=4))
    print(f"   {setting}: {n_stable} stable residents ({years:.0f} resident-years), "
          f"{n_cell} residents per decline; {time.perf_counter() - t0:.0f} s")
    print("   false fall_risk_rise per stable resident-year by threshold: "
          + ", ".join(f"{th}: {false[th]:.2f}" for th in (2.5, 3.0, 3.5, 4.0, 4.5, 5.0)))
    for th, label in ((op, f"operating point {op} (at most {FALSE_BUDGET:g} false a year: "
                           f"{false[op]:.2f})"), (2.5, f"threshold 2.5 (before; {false[2.5]:.2f}"
                                                       " false a year)")):
        print(f"   {label}: share flagged within 14 / 28 / 56 days of the decline's end")
        print("   | decline | over 4 weeks | over 12 weeks |")
        print("   |---|---|---|")
        for size in SIZES:
            parts = []
            for weeks in WEEKS:
                end = ONSET + 7 * weeks
                zs = cells[(size, weeks)]
                shares = []
                for within in WITHIN:
                    hit = sum(1 for s in zs if any(ONSET <= k <= end + within
                                                   for k in new_flags(s, th, ONSET)))
                    shares.append(f"{100 * hit / len(zs):.0f}%")
                parts.append(" / ".join(shares))
            print(f"   | {size:g} cm/s | {parts[0]} | {parts[1]} |")
    return op


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", type=int, nargs="*", default=[1, 2, 3])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train", type=int, default=1000, help="residents for part 2")
    ap.add_argument("--days", type=int, default=240, help="days per resident in part 2")
    ap.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds")
    ap.add_argument("--stable", type=int, default=150, help="stable residents in part 3")
    ap.add_argument("--cell", type=int, default=60, help="residents per decline in part 3")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    t0 = time.perf_counter()
    if 1 in a.part:
        print("1. walking speed against simulator truth (60 stable residents x 120 days, "
              "sensors 2-4 m apart)")
        for setting in SETTINGS:
            speed_error(60, 120, a.seed + 100, setting)
    if 2 in a.part:
        print("2. which method (default variability)")
        comparison(a.train, a.days, a.seed, a.workers, a.rounds)
    if 3 in a.part:
        print("3. detection curve of the walking-speed decline test")
        ops: dict[str, Any] = {}
        with ProcessPoolExecutor(a.workers) as pool:
            for setting in SETTINGS:
                ops[setting] = detection_curve(setting, a.stable, a.cell, a.seed + 300, pool)
        print(f"   operating thresholds: {ops}")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
