"""Scenario suite: 200 resident-nights with scripted incidents through the real pipeline.

A private Mosquitto, the gateway (ingest, detectors, alerting) on SQLite, and the home
simulator playing 40 homes x 5 nights: falls, SOS presses, bed exits without return,
wandering out of the front door at night, a bed sensor that dies, staff visits at night and
normal toilet visits. Prints recall per incident kind, time from incident to alert (event
time) and false alerts per resident-night; then the everyday situations
(firmware_stubs/situations.py), each on its own home for three nights.

Usage: python bench/scenarios.py [--residents 40] [--nights 5] [--seed 11]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._harness import running_gateway  # noqa: E402
from firmware_stubs.scenarios import run, scenario_registry, score  # noqa: E402
from firmware_stubs.situations import (  # noqa: E402
    first_night,
    run_situations,
    situation_registry,
)
from tests.homes import SITE  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--residents", type=int, default=40)
    ap.add_argument("--nights", type=int, default=5)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    with running_gateway(scenario_registry(args.residents, SITE), "bench-scen") as (rt, broker):
        t0 = time.perf_counter()
        truths, sent = run(broker.url, rt, args.nights, args.seed)
        took = time.perf_counter() - t0
        assert rt.alerts is not None
        report = score(truths, rt.alerts.list_alerts(limit=1_000_000), sent)
    print("\n".join(report.lines()))
    print(f"played and evaluated in {took:.1f} s")
    first = first_night()
    with running_gateway(situation_registry(SITE, first), "bench-sit") as (rt, broker):
        results = run_situations(broker.url, rt, first, args.seed)
    print(f"everyday situations (3 nights each): {sum(r.ok for r in results)}/"
          f"{len(results)} raised exactly what they must")
    for r in results:
        print(f"  {r.situation:28} {'ok' if r.ok else 'FAIL'} missing {r.missing} "
              f"unexpected {r.unexpected} checks {r.checks} staff visits {r.visits}")


if __name__ == "__main__":
    main()
