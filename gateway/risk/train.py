"""Train and evaluate a fall-risk model on a dataset and save it as an artefact."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from detectors.risk import INPUTS, RiskModel
from gateway.errors import ConfigError
from gateway.risk.artefact import Artefact, save
from gateway.risk.dataset import Dataset, Samples, samples

SPEED_INPUTS = ("speed_change", "speed_change_long", "speed_slope", "speed_decline")
LEVEL_QUANTILES = (0.75, 0.95)
MIN_FALLS = 10
MIN_RESIDENTS = 10


def evaluate(train: Samples, test_mask: np.ndarray, seed: int) -> dict[str, Any]:
    """ROC AUC and Brier score on held-out residents, beside a walking-speed-only model
    and the base rate."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    x, y, g = train.x, train.y, train.groups
    tr, te = ~test_mask, test_mask
    out: dict[str, Any] = {"held_out_residents": int(len(set(g[te].tolist()))),
                           "held_out_days": int(te.sum()), "held_out_positive": int(y[te].sum())}
    if len(set(y[te].tolist())) < 2 or len(set(y[tr].tolist())) < 2:
        out["note"] = "held-out or training part has only one class; no evaluation"
        return out
    full = RiskModel.fit(x[tr], y[tr], g[tr], seed=seed)
    p = full.probabilities(x[te])
    cols = [INPUTS.index(k) for k in SPEED_INPUTS]
    speed = RiskModel.fit(x[tr][:, cols], y[tr], g[tr], inputs=SPEED_INPUTS, seed=seed)
    q = speed.probabilities(x[te][:, cols])
    base = float(y[tr].mean())
    out.update({
        "roc_auc": round(float(roc_auc_score(y[te], p)), 4),
        "brier": round(float(brier_score_loss(y[te], p)), 5),
        "speed_only": {"roc_auc": round(float(roc_auc_score(y[te], q)), 4),
                       "brier": round(float(brier_score_loss(y[te], q)), 5)},
        "base_rate": {"probability": round(base, 5),
                      "brier": round(float(brier_score_loss(y[te], np.full(len(p), base))),
                                     5)}})
    return out


def train(ds: Dataset, out: Path, *, seed: int = 0, simulated: bool = False,
          progress: Callable[[int], None] | None = None) -> Artefact:
    """Fit on every scorable resident-day, evaluate on a quarter of the residents held
    out, set the level thresholds and save."""
    s = samples(ds, progress)
    residents = sorted(set(s.groups.tolist()))
    problems = []
    if len(residents) < MIN_RESIDENTS:
        problems.append(f"{ds.source}: {len(residents)} residents with 5 weeks of data and "
                        f"3 weeks of follow-up; at least {MIN_RESIDENTS} are needed")
    if s.falls < MIN_FALLS:
        problems.append(f"{ds.source}: {s.falls} resident-days followed by a fall within "
                        f"21 days; at least {MIN_FALLS} are needed")
    if problems:
        raise ConfigError(problems)
    rng = np.random.default_rng(seed)
    held = set(rng.choice(residents, size=max(1, len(residents) // 4), replace=False).tolist())
    test_mask = np.array([g in held for g in s.groups.tolist()])
    evaluation = evaluate(s, test_mask, seed)
    model = RiskModel.fit(s.x, s.y, s.groups, seed=seed)
    p = model.probabilities(s.x)
    model.thresholds = tuple(round(float(np.quantile(p, q)), 4)  # type: ignore[assignment]
                             for q in LEVEL_QUANTILES)
    meta = {"source": ds.source, "simulated": simulated, "data_sha256": ds.sha256(),
            "seed": seed, "residents": len(residents), "samples": int(len(s.y)),
            "positive_samples": s.falls,
            "falls": int(sum(len(v) for v in ds.falls.values())),
            "level_quantiles": list(LEVEL_QUANTILES), "evaluation": evaluation}
    return save(model, out, meta)
