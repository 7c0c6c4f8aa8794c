"""Model artefacts: a directory with `model.pkl` (the fitted scikit-learn objects) and
`model.json` (version, training metadata, data hash, thresholds, evaluation).

A pickle runs code when loaded, so an artefact is loaded only if the SHA-256 of
`model.pkl` matches the one recorded in `model.json`, and only with the scikit-learn
version it was saved with. Keep artefacts where only administrators can write.
"""

from __future__ import annotations

import hashlib
import json
import pickle  # noqa: S403 - integrity-checked below
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from detectors.risk import HORIZON_DAYS, INPUTS, RiskModel
from gateway.errors import ConfigError

FORMAT = "tillsyn-fall-risk/1"


@dataclass
class Artefact:
    """A loaded model and what is known about it."""

    model: RiskModel
    meta: dict[str, Any]

    @property
    def version(self) -> str:
        """The model version (training time and data hash)."""
        return str(self.meta["version"])


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def save(model: RiskModel, directory: Path, meta: dict[str, Any]) -> Artefact:
    """Write model.pkl and model.json into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    trained = datetime.now(UTC).replace(microsecond=0)
    full = {"format": FORMAT,
            "version": f"{trained:%Y%m%dT%H%M%SZ}-{meta['data_sha256'][:8]}",
            "trained_at": trained.isoformat(), "horizon_days": HORIZON_DAYS,
            "inputs": list(model.inputs), "thresholds": list(model.thresholds),
            "sklearn": _sklearn_version(), "numpy": np.__version__,
            "model_sha256": hashlib.sha256(blob).hexdigest(), **meta}
    (directory / "model.pkl").write_bytes(blob)
    (directory / "model.json").write_text(json.dumps(full, indent=2) + "\n")
    return Artefact(model, full)


def load(directory: Path) -> Artefact:
    """Load and verify an artefact, or raise ConfigError naming the problem."""
    meta_path, blob_path = directory / "model.json", directory / "model.pkl"
    try:
        meta = json.loads(meta_path.read_text())
        blob = blob_path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{directory}: cannot read the model: {exc.strerror}: "
                           f"{exc.filename}"]) from exc
    except ValueError as exc:
        raise ConfigError([f"{meta_path}: not JSON: {exc}"]) from exc
    problems = []
    if meta.get("format") != FORMAT:
        problems.append(f"{meta_path}: format: value {meta.get('format')!r}: want {FORMAT}")
    if hashlib.sha256(blob).hexdigest() != meta.get("model_sha256"):
        problems.append(f"{blob_path}: SHA-256 does not match model.json (changed or "
                        "corrupt); retrain or restore the artefact")
    if meta.get("sklearn") != _sklearn_version():
        problems.append(f"{meta_path}: sklearn: value {meta.get('sklearn')!r}: this "
                        f"installation has {_sklearn_version()}; retrain the model")
    if problems:
        raise ConfigError(problems)
    model = pickle.loads(blob)  # noqa: S301 - hash verified against model.json
    if not isinstance(model, RiskModel) or not model.inputs or \
            not set(model.inputs) <= set(INPUTS):
        raise ConfigError([f"{blob_path}: not a fall-risk model with the inputs of this "
                           "version; retrain"])
    meta.setdefault("method", "model" if tuple(model.inputs) == INPUTS else "speed")
    return Artefact(model, meta)
