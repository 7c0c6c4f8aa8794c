"""The demo's fall-risk part: a model trained on the simulator at first start, and a
simulated movement history for one resident so that the resident page has a walking-speed
trend, the decline statistic and a score to show. Everything here is simulated and is
labelled so on the page (the model's `simulated` flag) and in the demo's console."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from gateway.risk.service import RiskService
from gateway.storage.schema import risk_days

MODEL_DIR = "risk-model"
HISTORY_RESIDENT = "r-1001"
HISTORY_DAYS = 150
SCORED_DAYS = 90


def train_demo_model(folder: Path) -> Path:
    """The demo's artefact (trained once, about 20 s; kept for later starts)."""
    from gateway.risk.dataset import simulated
    from gateway.risk.train import train

    out = folder / MODEL_DIR
    if not (out / "model.json").exists():
        ds, _ = simulated(120, 180, 1, workers=2)
        train(ds, out, seed=1, simulated=True, rounds=200)
    return out


def seed_history(risk: RiskService) -> int:
    """Simulated daily features for HISTORY_RESIDENT (a slowing of 8 cm/s over the last six
    weeks), then the last SCORED_DAYS days scored as the service would; returns the days
    scored (0 when the history is there already)."""
    from detectors.features import daily
    from firmware_stubs.cohort import make_cohort, simulate
    from gateway.risk.dataset import cohort_spec

    res = next((r for r in risk.registry.residents if r.id == HISTORY_RESIDENT), None)
    if res is None:
        return 0
    with risk.store.engine.connect() as conn:
        if conn.execute(select(risk_days.c.day).where(risk_days.c.resident_id == res.id)
                        .limit(1)).first() is not None:
            return 0
    last = risk.complete_until()
    first = last - timedelta(days=HISTORY_DAYS - 1)
    tz = ZoneInfo(risk.config.site.timezone)
    [person] = make_cohort(1, 4, HISTORY_DAYS, courses=["decline"], decline_cm_s=8.0,
                           decline_days=42, onset=HISTORY_DAYS - 49)
    rows, _ = simulate(person, first, HISTORY_DAYS, tz, 4)
    feats = daily(rows, cohort_spec(person.index, person.distances_m, tz), first, last)
    risk.store_features(res.id, feats)
    day: date = last - timedelta(days=SCORED_DAYS - 1)
    n = 0
    while day <= last:
        risk.score_day(res, day)
        day += timedelta(days=1)
        n += 1
    return n
