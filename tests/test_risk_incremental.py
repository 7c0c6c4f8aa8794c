"""Features kept day by day are the features of the whole period.

The service computes each day once, as it completes, from the observations around it
(`RiskService.history` -> `compute_features(res, day, day)`), stores it, and a backfill
reads the stored days (bench/risk.py). This checks, on a simulated cohort in a real
SQLite store, that day-by-day features equal the features computed over the whole period
at once from the same observations, and that what a backfill reads back from the store is
what was computed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from firmware_stubs.cohort import make_cohort
from gateway.runtime import load_runtime
from tests.cohort_store import stored_cohort

DAYS = 40


def test_day_by_day_features_equal_the_whole_period(tmp_path: Path) -> None:
    people = make_cohort(8, 31, DAYS, decline_share=0.5, episode_share=0.25)
    store = stored_cohort(tmp_path, people, DAYS, 31)
    first, last = store.first, store.last
    rt = load_runtime(store.config)
    risk = rt.risk
    assert risk is not None
    compared = 0
    for res in rt.registry.residents:
        whole = risk.compute_features(res, first, last)
        by_day = []
        day = first
        while day <= last:
            by_day += risk.compute_features(res, day, day)
            day += timedelta(days=1)
        assert [f.as_dict() for f in by_day] == [f.as_dict() for f in whole], res.id
        # Stored as days complete, read back by a backfill: the same.
        risk.store_features(res.id, by_day)
        back = risk.stored_days(res.id, first, last)
        assert [back[f.day].as_dict() for f in by_day] == [f.as_dict() for f in by_day]
        compared += len(by_day)
    assert compared == len(people) * DAYS
    assert sum(1 for res in rt.registry.residents
               for f in risk.stored_days(res.id, first, last).values()
               if f.walking_speed is not None) > 0.8 * compared
    rt.store.close()
