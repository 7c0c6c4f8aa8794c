"""Fall-risk cost: a backfill of 1,000 residents x 90 days that reads days, not raw rows.

The service keeps each resident's daily features in `risk_days` as days complete (the
daily round computes a day once, from the two days of observations around it, and stores
it; docs/fall-risk.md#cost). A backfill or a catch-up then reads those days. This bench
measures, in a real SQLite store:

- **the backfill (the target)**: for every resident, read the stored features of 90 days
  (plus the 104 days of history the inputs need) and compute the inputs, the decline
  statistic and the model's score of every scorable day: `--residents` x `--days`;
- **the incremental part**, paid once per resident-day as days complete: computing one
  day's features from the observations around it (the service's own path,
  `RiskService.compute_features(res, day, day)`), on a sample of `--sample` residents;
- **the reference**: the bare SELECT of the same sample's raw observations, which a
  backfill from raw rows would have to read (the path before 2026-12-04: 177 s for 12
  million rows, 328 s in all).

Phase 1 (not timed) simulates the cohort, writes the sample's observations and every
resident's daily features as the service would have stored them. Phase 2 runs in a fresh
process so its peak memory is its own.

Run: .venv/bin/python -m bench.risk [--residents 1000] [--days 90] [--sample 100]
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Europe/Stockholm")
HISTORY = 104  # days of features the inputs of a day need (gateway.risk.service)


def _dates(days: int) -> tuple[date, date, date]:
    """(first day with features, first scored day, last day): the last complete day is
    yesterday, so the service's own reads see them as the past."""
    last = date.today() - timedelta(days=2)
    first_scored = last - timedelta(days=days - 1)
    return first_scored - timedelta(days=HISTORY), first_scored, last


def populate(db: Path, cfg: Path, residents: int, days: int, sample: int, seed: int
             ) -> tuple[int, int]:
    from detectors.features import daily
    from firmware_stubs.cohort import make_cohort, simulate
    from gateway.risk.dataset import cohort_spec
    from gateway.storage.migrate import upgrade
    from tests.cohort_store import insert_observations

    first, _, last = _dates(days)
    total = (last - first).days + 1
    db.unlink(missing_ok=True)
    upgrade(f"sqlite:///{db}")
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous = OFF")
    n_obs = n_days = 0
    people = make_cohort(residents, seed, total)
    for p in people:
        rows, _ = simulate(p, first, total, TZ, seed)
        if p.index < sample:
            insert_observations(conn, p.id, rows)
            n_obs += len(rows)
        feats = daily(rows, cohort_spec(p.index, p.distances_m, TZ), first, last)
        conn.executemany(
            "INSERT INTO risk_days (resident_id, day, features, status, computed_ms) "
            "VALUES (?,?,?,'features',0)",
            [(p.id, f.day.isoformat(), json.dumps(f.as_dict())) for f in feats])
        n_days += len(feats)
        conn.commit()
    conn.close()
    from firmware_stubs.cohort import cohort_registry
    from tests.homes import SITE, write_config

    write_config(cfg.parent, "mqtt://127.0.0.1:1", f"sqlite:///{db}",
                 reg=cohort_registry(people, SITE), risk={"model": str(cfg.parent / "model"),
                                                          "method": "model"})
    return n_obs, n_days


def measure(cfg: Path, residents: int, days: int, sample: int) -> None:
    from sqlalchemy import select

    from detectors.risk import inputs
    from gateway.runtime import load_runtime
    from gateway.storage.schema import observations

    rt = load_runtime(cfg)
    risk = rt.risk
    assert risk is not None and risk.artefact is not None
    model = risk.artefact.model
    first, first_scored, last = _dates(days)
    people = rt.registry.residents

    # The reference: the bare SELECT of the sample's raw observations.
    t0 = time.perf_counter()
    n_rows = 0
    with rt.store.engine.connect() as conn:
        for res in people[:sample]:
            n_rows += len(conn.execute(
                select(observations.c.ts_ms, observations.c.kind, observations.c.device_id,
                       observations.c.value).where(observations.c.resident_id == res.id)
                .order_by(observations.c.ts_ms, observations.c.id)).all())
    t_ref = time.perf_counter() - t0

    # The incremental part: each of the sample's days from the observations around it.
    t0 = time.perf_counter()
    for res in people[:sample]:
        day = first_scored
        while day <= last:
            risk.compute_features(res, day, day)
            day += timedelta(days=1)
    t_inc = time.perf_counter() - t0

    # The backfill: stored days in, inputs, decline statistic and scores out.
    t0 = time.perf_counter()
    t_read = 0.0
    scored = 0
    for res in people:
        a = time.perf_counter()
        stored = risk.stored_days(res.id, first, last)
        t_read += time.perf_counter() - a
        ready = []
        day = first_scored
        while day <= last:
            inp = inputs(stored, day, rt.config.risk.baseline_days)
            if inp.scorable:
                ready.append(inp)
            day += timedelta(days=1)
        model.score_many(ready)
        scored += len(ready)
    total = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sample_days = sample * days
    print(f"backfill: {residents} residents x {days} days ({residents * days} resident-days, "
          f"{scored} scorable) from the stored days: {total:.1f} s (reading the days "
          f"{t_read:.1f} s), {1000 * total / residents:.0f} ms per resident")
    print(f"incremental: one day's features from its observations, {sample} residents x "
          f"{days} days: {t_inc:.1f} s = {1000 * t_inc / sample_days:.1f} ms per "
          f"resident-day (for {residents} residents {residents * t_inc / sample_days:.0f} s "
          "a day, spread over the day's rounds)")
    print(f"reference: bare SELECT of the sample's {n_rows} raw observations: {t_ref:.1f} s "
          f"({n_rows / t_ref:,.0f} rows/s); for all {residents} residents about "
          f"{t_ref * residents / sample:.0f} s, which a backfill from raw rows reads before "
          f"computing anything: the backfill from days took "
          f"{total / (t_ref * residents / sample):.2f} x that")
    print(f"peak memory of this process {peak_mb:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--residents", type=int, default=1000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--sample", type=int, default=100,
                    help="residents whose raw observations are written and read")
    ap.add_argument("--dir", type=Path, default=Path("var/bench-risk"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--phase", choices=("all", "measure"), default="all")
    a = ap.parse_args()
    a.dir = a.dir.resolve()
    cfg = a.dir / "config.yaml"
    if a.phase == "measure":
        measure(cfg, a.residents, a.days, a.sample)
        return
    a.dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n_obs, n_days = populate(a.dir / "bench.db", cfg, a.residents, a.days, a.sample, a.seed)
    from gateway.risk.dataset import simulated
    from gateway.risk.train import train

    ds, _ = simulated(60, 150, 3)
    train(ds, a.dir / "model", seed=3, simulated=True, method="model", rounds=50)
    print(f"setup: {n_days} stored feature days of {a.residents} residents, {n_obs} raw "
          f"observations of {a.sample} of them, a model; {time.perf_counter() - t0:.0f} s")
    subprocess.run([sys.executable, "-m", "bench.risk", "--phase", "measure", "--dir",
                    str(a.dir), "--residents", str(a.residents), "--days", str(a.days),
                    "--sample", str(a.sample)], check=True)


if __name__ == "__main__":
    main()
