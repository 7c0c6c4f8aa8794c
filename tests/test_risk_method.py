"""Which fall-risk method is in force: the held-out comparison with bootstrap intervals
(gateway/risk/train.py) and `risk.method` (gateway/risk/service.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway.config.gateway import GatewayConfig
from gateway.errors import ConfigError
from gateway.risk.artefact import Artefact
from gateway.risk.service import load_model, method_in_force
from gateway.risk.train import bootstrap


def cohort(n_res: int = 120, days: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray,
                                                                        np.ndarray]:
    """Days of residents: a hidden risk per resident, falls drawn from it."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(0, 1, n_res)
    groups = np.repeat(np.arange(n_res), days)
    r = risk[groups]
    y = (rng.random(len(r)) < 1 / (1 + np.exp(-(r * 1.5 - 2.5)))).astype(int)
    return y, groups, r


def prob(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def test_a_method_that_only_guesses_is_worse_and_the_simplest_good_one_wins() -> None:
    y, groups, r = cohort()
    rng = np.random.default_rng(1)
    scores = {"decline": rng.random(len(y)),  # no information
              "speed": prob(r + rng.normal(0, 0.3, len(y)) - 2),
              "model": prob(r + rng.normal(0, 0.29, len(y)) - 2)}
    out = bootstrap(y, groups, scores, seed=0, rounds=200)
    m = out["methods"]
    assert m["decline"]["roc_auc"] < 0.6 and not m["decline"]["not_worse_than_best"]
    assert m["decline"]["auc_minus_best_ci"][1] < 0
    assert m["speed"]["not_worse_than_best"] and m["model"]["not_worse_than_best"]
    assert out["recommended"] == "speed"  # as good as the model, and simpler
    lo, hi = m["speed"]["roc_auc_ci"]
    assert lo < m["speed"]["roc_auc"] < hi


def test_equal_methods_recommend_the_decline_test() -> None:
    y, groups, r = cohort(seed=3)
    rng = np.random.default_rng(2)
    noisy = prob(r + rng.normal(0, 0.5, len(y)) - 2)
    out = bootstrap(y, groups, {"decline": noisy, "speed": noisy + 1e-9, "model": noisy},
                    seed=1, rounds=100)
    assert out["recommended"] == "decline"


def config(**risk: Any) -> GatewayConfig:
    return GatewayConfig.model_validate({"risk": risk})


def artefact(method: str, recommended: str | None) -> Artefact:
    meta = {"method": method, "version": "v"}
    if recommended is not None:
        meta["recommended"] = recommended
    return Artefact(model=None, meta=meta)  # type: ignore[arg-type]


@pytest.mark.parametrize(("configured", "installed", "in_force", "why"), [
    ("auto", None, "decline", "no model is installed"),
    ("auto", ("model", "decline"), "decline", "not significantly better"),
    ("auto", ("speed", "speed"), "speed", "simplest method"),
    ("auto", ("model", "model"), "model", "simplest method"),
    ("decline", ("model", "model"), "decline", "chosen in the configuration"),
    ("model", ("model", "decline"), "model", "chosen in the configuration"),
    ("auto", ("model", None), "model", "trained before the comparison"),
])
def test_method_in_force(configured: str, installed: tuple[str, str | None] | None,
                         in_force: str,
                         why: str) -> None:
    art = None if installed is None else artefact(*installed)
    m = method_in_force(config(method=configured), art)
    assert m["id"] == in_force and why in m["reason_en"]
    assert m["sv"] and m["reason_sv"] and m["decline_threshold"] > 0


def test_model_method_needs_a_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="risk.method: value 'model': needs risk.model"):
        load_model(config(method="model"), tmp_path / "config.yaml")
