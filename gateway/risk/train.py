"""Train and evaluate fall-risk methods on a dataset and save the chosen model as an artefact.

Three methods are compared on residents held out of training (docs/fall-risk.md#which-method):
- `decline`: the walking-speed decline test alone (detectors/trend.py; its statistic as
  the score; for a probability, one-input calibrated logistic regression);
- `speed`: walking-speed change alone (the last week against the person's baseline);
- `model`: the full model on every input.
ROC AUC and Brier score with 95% intervals from a bootstrap over held-out residents (each
resident's days stay together), and the paired difference of each method from the best.
The recommendation is the simplest method whose AUC is not significantly below the best
one's (the interval of the difference reaches 0). `risk.method: auto` uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from detectors.risk import INPUTS, RiskModel
from gateway.errors import ConfigError
from gateway.risk.artefact import Artefact, save
from gateway.risk.dataset import Dataset, Samples, samples

# Simplest first: the order the recommendation prefers them in.
METHOD_INPUTS: dict[str, tuple[str, ...]] = {
    "decline": ("speed_decline",),
    "speed": ("speed_change",),
    "model": INPUTS,
}
METHODS = tuple(METHOD_INPUTS)
LEVEL_QUANTILES = (0.75, 0.95)
MIN_FALLS = 10
MIN_RESIDENTS = 10
BOOTSTRAP = 1000


def _metrics(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    return float(roc_auc_score(y, p)), float(brier_score_loss(y, p))


def bootstrap(y: np.ndarray, groups: np.ndarray, scores: dict[str, np.ndarray], seed: int,
              rounds: int = BOOTSTRAP) -> dict[str, Any]:
    """Per method: AUC and Brier with 95% intervals, resampling residents with
    replacement; and per method the AUC difference from the best method, paired (the
    same resample for both), with its interval."""
    rng = np.random.default_rng(seed)
    residents = np.unique(groups)
    rows = {r: np.flatnonzero(groups == r) for r in residents.tolist()}
    point = {m: _metrics(y, p) for m, p in scores.items()}
    best = max(point, key=lambda m: point[m][0])
    aucs: dict[str, list[float]] = {m: [] for m in scores}
    briers: dict[str, list[float]] = {m: [] for m in scores}
    for _ in range(rounds):
        pick = rng.choice(residents, size=len(residents), replace=True)
        idx = np.concatenate([rows[r] for r in pick.tolist()])
        if len(set(y[idx].tolist())) < 2:
            continue
        for m, p in scores.items():
            auc, brier = _metrics(y[idx], p[idx])
            aucs[m].append(auc)
            briers[m].append(brier)

    def ci(xs: list[float]) -> list[float]:
        return [round(float(np.quantile(xs, 0.025)), 4), round(float(np.quantile(xs, 0.975)),
                                                                 4)]

    out: dict[str, Any] = {"best": best, "rounds": len(aucs[best]), "methods": {}}
    for m in scores:
        diff = [a - b for a, b in zip(aucs[m], aucs[best], strict=True)]
        out["methods"][m] = {
            "roc_auc": round(point[m][0], 4), "roc_auc_ci": ci(aucs[m]),
            "brier": round(point[m][1], 5), "brier_ci": [round(v, 5) for v in ci(briers[m])],
            "auc_minus_best": round(point[m][0] - point[best][0], 4),
            "auc_minus_best_ci": ci(diff),
            "not_worse_than_best": m == best or ci(diff)[1] >= 0}
    out["recommended"] = next(m for m in METHODS if out["methods"][m]["not_worse_than_best"])
    return out


def evaluate(train: Samples, test_mask: np.ndarray, seed: int,
             rounds: int = BOOTSTRAP) -> dict[str, Any]:
    """The three methods fitted on the training residents and compared on the held-out
    ones (with intervals), beside the base rate."""
    from sklearn.metrics import brier_score_loss

    x, y, g = train.x, train.y, train.groups
    tr, te = ~test_mask, test_mask
    out: dict[str, Any] = {"held_out_residents": int(len(set(g[te].tolist()))),
                           "held_out_days": int(te.sum()), "held_out_positive": int(y[te].sum())}
    if len(set(y[te].tolist())) < 2 or len(set(y[tr].tolist())) < 2:
        out["note"] = "held-out or training part has only one class; no evaluation"
        return out
    scores = {}
    for method, keys in METHOD_INPUTS.items():
        cols = [INPUTS.index(k) for k in keys]
        m = RiskModel.fit(x[tr][:, cols], y[tr], g[tr], inputs=keys, seed=seed)
        scores[method] = m.probabilities(x[te][:, cols])
    out["comparison"] = bootstrap(y[te], g[te], scores, seed, rounds)
    base = float(y[tr].mean())
    out["base_rate"] = {"probability": round(base, 5), "brier": round(float(
        brier_score_loss(y[te], np.full(int(te.sum()), base))), 5)}
    return out


def train(ds: Dataset, out: Path, *, seed: int = 0, simulated: bool = False,
          method: str = "auto", progress: Callable[[int], None] | None = None,
          rounds: int = BOOTSTRAP) -> Artefact:
    """Compare the methods on a quarter of the residents held out, fit the model of
    `method` (`auto`: the recommended one; the full model when the recommendation is the
    decline test, which needs none, so that `risk.method: model` stays possible) on every
    scorable resident-day, set the level thresholds and save."""
    if method not in ("auto", "speed", "model"):
        raise ConfigError([f"method: value {method!r}: want auto, speed or model"])
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
    evaluation = evaluate(s, test_mask, seed, rounds)
    recommended = evaluation.get("comparison", {}).get("recommended", "model")
    fitted = method if method != "auto" else ("model" if recommended == "decline"
                                              else recommended)
    keys = METHOD_INPUTS[fitted]
    cols = [INPUTS.index(k) for k in keys]
    model = RiskModel.fit(s.x[:, cols], s.y, s.groups, inputs=keys, seed=seed)
    p = model.probabilities(s.x[:, cols])
    model.thresholds = tuple(round(float(np.quantile(p, q)), 4)  # type: ignore[assignment]
                             for q in LEVEL_QUANTILES)
    meta = {"source": ds.source, "simulated": simulated, "data_sha256": ds.sha256(),
            "seed": seed, "residents": len(residents), "samples": int(len(s.y)),
            "positive_samples": s.falls,
            "falls": int(sum(len(v) for v in ds.falls.values())),
            "method": fitted, "recommended": recommended,
            "level_quantiles": list(LEVEL_QUANTILES), "evaluation": evaluation}
    return save(model, out, meta)
