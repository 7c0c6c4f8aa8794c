"""The procedure an organisation follows to validate fall risk on its own residents
(docs/fall-risk.md#validating-on-real-cohorts), run as they would run it:

1. `tillsyn risk features` exports the daily features from the gateway's own store;
2. the organisation joins them with its fall records (a CSV of resident_id,date);
3. `tillsyn risk train --features --falls` compares the three methods on residents held
   out and prints the comparison with 95% intervals and the recommendation.

The store is filled with a simulated cohort's readings (a stand-in for real homes: the
procedure, not the figures, is under test)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from detectors.features import daily
from firmware_stubs.cohort import cohort_registry, make_cohort
from gateway.risk.dataset import cohort_spec
from tests.cohort_store import TZ, stored_cohort
from tests.homes import SITE, write_config
from tests.support import tillsyn

pytestmark = pytest.mark.slow
RESIDENTS = 40
DAYS = 120


def test_features_from_the_store_joined_with_falls_train_and_compare(tmp_path: Path) -> None:
    people = make_cohort(RESIDENTS, 21, DAYS, decline_share=0.5, episode_share=0.2)
    store = stored_cohort(tmp_path, people, DAYS, 21)
    cfg, first, last = store.config, store.first, store.last
    falls = [(rid, t.day.isoformat()) for rid, (_, truth) in store.played.items()
             for t in truth if t.fell]
    assert len(falls) >= 5

    # 1. Export from the store.
    features = tmp_path / "features.csv"
    r = tillsyn("risk", "features", "--config", str(cfg), "--from", str(first), "--to",
                str(last), "--out", str(features))
    assert r.returncode == 0, r.stdout + r.stderr
    with features.open() as f:
        exported = list(csv.DictReader(f))
    assert len(exported) == RESIDENTS * DAYS
    # The export is what the features are: one resident checked against the extractor.
    p = people[3]
    direct = daily(store.played[p.id][0], cohort_spec(p.index, p.distances_m, TZ), first, last)
    mine = [row for row in exported if row["resident_id"] == p.id]
    assert [row["walking_speed"] for row in mine] == [
        "" if d.walking_speed is None else str(d.walking_speed) for d in direct]

    # 2. The organisation's own fall records.
    falls_csv = tmp_path / "falls.csv"
    with falls_csv.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["resident_id", "date"])
        w.writerows(falls)

    # 3. Train, compare, recommend.
    out = tmp_path / "model"
    r = tillsyn("risk", "train", "--features", str(features), "--falls", str(falls_csv),
                "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    text = " ".join(r.stdout.split())
    for method in ("decline", "speed", "model"):
        assert f"{method} ROC AUC" in text
    assert "95% intervals" in text and "recommended" in text
    meta = json.loads((out / "model.json").read_text())
    cmp_ = meta["evaluation"]["comparison"]
    assert meta["recommended"] == cmp_["recommended"] in ("decline", "speed", "model")
    for m in cmp_["methods"].values():
        lo, hi = m["roc_auc_ci"]
        assert lo <= m["roc_auc"] <= hi
    assert meta["simulated"] is False  # trained from CSV files: it does not know
    # A site can then run it: the method in force follows the recommendation.
    cfg2 = write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db",
                        reg=cohort_registry(people, SITE), risk={"model": str(out)})
    r = tillsyn("check-config", str(cfg2))
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr
