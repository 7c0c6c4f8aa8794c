"""Fall-risk cost: daily features and scores for N residents x D days of observations in a
real SQLite store (default 1,000 x 90), with time and peak memory.

Phase 1 (not timed) simulates the cohort and writes its observations into the database.
Phase 2 runs in a fresh process so its peak memory is its own: for every resident it reads
the observations (the reference: the bare SELECT of the same rows, timed on its own first),
computes the features of every day, and scores every day that has a baseline.

Run: .venv/bin/python -m bench.risk [--residents 1000] [--days 90] [--db var/bench-risk.db]
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
FIRST = date(2026, 1, 1)


def populate(db: Path, residents: int, days: int, seed: int) -> int:
    from firmware_stubs.cohort import make_cohort, simulate
    from gateway.storage.migrate import upgrade

    db.unlink(missing_ok=True)
    upgrade(f"sqlite:///{db}")
    conn = sqlite3.connect(db)
    # Setup only: write without the indexes and rebuild them at the end (minutes, not an
    # hour, for 12 million rows); the timed phase reads the same indexed table as the
    # gateway does.
    indexes = [r[0] for r in conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'observations' "
        "AND sql IS NOT NULL")]
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND "
                                "tbl_name = 'observations' AND sql IS NOT NULL").fetchall():
        conn.execute(f"DROP INDEX {name}")
    conn.execute("PRAGMA synchronous = OFF")
    n = 0
    for p in make_cohort(residents, seed, days):
        rows, _ = simulate(p, FIRST, days, TZ, seed)
        conn.executemany(
            "INSERT INTO observations (resident_id, device_id, kind, value, ts_ms, "
            "received_ms, room, clock_override) VALUES (?,?,?,?,?,?,?,0)",
            [(p.id, dev, kind, json.dumps(value), ts, ts, None)
             for ts, kind, dev, value in rows])
        n += len(rows)
        conn.commit()
    for sql in indexes:
        conn.execute(sql)
    conn.commit()
    conn.close()
    return n


def score(db: Path, residents: int, days: int, seed: int, model_dir: Path) -> None:
    from sqlalchemy import select

    from detectors.features import daily
    from detectors.risk import inputs
    from firmware_stubs.cohort import make_cohort
    from gateway.risk.artefact import load
    from gateway.risk.dataset import cohort_spec
    from gateway.storage.schema import observations
    from gateway.storage.store import Store

    store = Store(f"sqlite:///{db}")
    model = load(model_dir).model
    people = make_cohort(residents, seed, days)
    last = FIRST + timedelta(days=days - 1)

    def rows_of(rid: str) -> list[tuple[int, str, str, object]]:
        with store.engine.connect() as conn:
            return [(int(r.ts_ms), r.kind, r.device_id, r.value) for r in conn.execute(
                select(observations.c.ts_ms, observations.c.kind, observations.c.device_id,
                       observations.c.value).where(observations.c.resident_id == rid)
                .order_by(observations.c.ts_ms, observations.c.id))]

    t0 = time.perf_counter()
    n_rows = sum(len(rows_of(p.id)) for p in people)
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    t_feat = t_score = 0.0
    scored = 0
    for p in people:
        a = time.perf_counter()
        feats = daily(rows_of(p.id), cohort_spec(p.index, p.distances_m, TZ), FIRST, last)
        b = time.perf_counter()
        by_day = {f.day: f for f in feats}
        ready = [inp for f in feats if (inp := inputs(by_day, f.day)).scorable]
        model.score_many(ready)  # a resident's days in one batch, as a catch-up would
        scored += len(ready)
        t_feat += b - a
        t_score += time.perf_counter() - b
    total = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"reference: SELECT of {n_rows} observations of {residents} residents: "
          f"{t_read:.1f} s ({n_rows / t_read:,.0f} rows/s)")
    print(f"read + features of {residents * days} resident-days: {t_feat:.1f} s; inputs + "
          f"score of {scored} scorable resident-days: {t_score:.1f} s; total {total:.1f} s "
          f"= {total / t_read:.2f} x the bare read")
    print(f"per resident: {1000 * total / residents:.0f} ms for {days} days of features and "
          f"scores; peak memory of this process {peak_mb:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--residents", type=int, default=1000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--db", type=Path, default=Path("var/bench-risk.db"))
    ap.add_argument("--model", type=Path, default=None,
                    help="artefact folder (default: train a small one on simulated data)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--phase", choices=("all", "score"), default="all")
    a = ap.parse_args()
    if a.phase == "score":
        score(a.db, a.residents, a.days, a.seed, a.model)
        return
    a.db.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n = populate(a.db, a.residents, a.days, a.seed)
    print(f"setup: {n} observations of {a.residents} residents x {a.days} days written in "
          f"{time.perf_counter() - t0:.0f} s ({a.db.stat().st_size / 1e6:.0f} MB)")
    model = a.model
    if model is None:
        from gateway.risk.dataset import simulated
        from gateway.risk.train import train

        model = a.db.parent / "bench-risk-model"
        ds, _ = simulated(60, 150, 3)
        train(ds, model, seed=3, simulated=True)
    subprocess.run([sys.executable, "-m", "bench.risk", "--phase", "score", "--db",
                    str(a.db), "--residents", str(a.residents), "--days", str(a.days),
                    "--seed", str(a.seed), "--model", str(model)], check=True)


if __name__ == "__main__":
    main()
