"""How the walking-speed decline test's figures hang on the simulator's day-to-day spread.

The trend target (docs/fall-risk.md) depends most on one parameter no published figure
gives: how much a person's true mean walking speed varies from day to day
(`firmware_stubs.cohort.DAY_SPEED_SD`, 1.0 cm/s). This simulates the same declining and
stable residents with other values and prints, per detection threshold, the share of
5 cm/s slowings flagged within 14 days of onset and the false flags per stable
resident-year. Not part of the test suite.

Usage: python -m bench.trend_sensitivity [--residents 200] [--days 365] [--seed 11]
                                         [--sd 1.0 0.5 0] [--workers 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import cast

import firmware_stubs.cohort as cohort
from bench.risk_eval import SCORED_FROM, days_from_onset
from detectors import trend
from firmware_stubs.cohort import Person
from gateway.risk.dataset import simulated

THRESHOLDS = (2.3, 2.5, 2.7, 3.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--residents", type=int, default=200, help="half declining, half stable")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--sd", type=float, nargs="+", default=[1.0, 0.5, 0.0],
                    help="values of DAY_SPEED_SD to try, cm/s")
    ap.add_argument("--workers", type=int, default=2,
                    help="simulation processes (forked: they see the changed value)")
    a = ap.parse_args()
    default_sd, default_th = cohort.DAY_SPEED_SD, trend.THRESHOLD
    try:
        for sd in a.sd:
            t0 = time.perf_counter()
            cohort.DAY_SPEED_SD = sd
            ds, made = simulated(a.residents, a.days, a.seed,
                                 courses=["decline", "stable"], workers=a.workers)
            people = cast(list[Person], made)
            series = {p.id: {f.day: f.walking_speed for f in ds.days[p.id]} for p in people}
            spread = [statistics.stdev(v for v in series[p.id].values() if v is not None)
                      for p in people if p.course == "stable"]
            cells = []
            for th in THRESHOLDS:
                trend.THRESHOLD = th
                found, false, stable_days = [], 0, 0
                for p in people:
                    scored = ds.days[p.id][SCORED_FROM:]
                    flags = [d.day for d in trend.flagged_days(series[p.id], scored[0].day,
                                                               scored[-1].day)]
                    if p.course == "decline":
                        found.append(bool(days_from_onset(p, flags)))
                    else:
                        false += len(flags)
                        stable_days += len(scored)
                cells.append(f"threshold {th}: {sum(found) / len(found):.0%} found, "
                             f"{false / (stable_days / 365):.2f} false/yr")
            print(f"DAY_SPEED_SD {sd} cm/s (measured day spread of stable residents, median "
                  f"{statistics.median(spread):.2f} cm/s; {time.perf_counter() - t0:.0f} s): "
                  + "; ".join(cells), flush=True)
    finally:
        cohort.DAY_SPEED_SD, trend.THRESHOLD = default_sd, default_th


if __name__ == "__main__":
    main()
