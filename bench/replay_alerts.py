"""Replay a real smart-home log through broker, gateway and detectors; list the alerts.

Usage: python bench/replay_alerts.py [--format kasteren|tapia]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._harness import running_gateway  # noqa: E402
from firmware_stubs import replay as rp  # noqa: E402
from firmware_stubs.player import Player  # noqa: E402

DATA = ROOT / "data" / "smarthome"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--format", choices=["kasteren", "tapia"], default="kasteren")
    args = ap.parse_args()
    tz = ZoneInfo("Europe/Stockholm")
    if args.format == "kasteren":
        firings = rp.parse_kasteren(DATA / "vankasteren_2008_houseA" / "kasterenSenseData.txt")
        mapping = rp.load_mapping(DATA / "kasteren_mapping.yaml")
    else:
        firings = rp.parse_tapia(DATA / "mit_tapia_2004_subject1" / "activities_data.csv")
        mapping = rp.tapia_mapping(DATA / "mit_tapia_2004_subject1" / "sensors.csv")
    reg = rp.registry_for(mapping)
    reg["staff"] = [{"id": "s-1", "name": "Night nurse", "unit": mapping["unit"],
                     "role": "night_staff"}]
    with running_gateway(reg, "bench-replay", site={"max_clock_behind_days": 60}) as (
            rt, broker):
        events, shift = rp.to_events(firings, mapping, tz, datetime.now(UTC))
        player = Player(broker.url, rt.registry, client_id="bench-replay-player")
        assert rt.detectors is not None and rt.alerts is not None
        # Day by day (noon to noon); after each, staff resolve what is open, as they would,
        # so each night's occurrences count (within one night a condition is raised once).
        days: dict[int, list[rp.SimEvent]] = {}
        for e in events:
            local = datetime.fromtimestamp(e.ts_ms / 1000, tz)
            days.setdefault((local.toordinal() * 24 + local.hour - 12) // 24, []).append(e)
        sent = 0
        for day in sorted(days):
            sent += player.play(days[day], speed=0) - sent
            while rt.ingest.delivered_messages < sent:
                time.sleep(0.02)
            rt.detectors.tick()
            for a in rt.alerts.list_alerts(status="unresolved", limit=100_000):
                rt.alerts.resolve(a["id"], "s-1", "no_action_needed")
        player.close()
        alerts = rt.alerts.list_alerts(limit=100_000)
        nights = len({(e.ts_ms // 86_400_000) for e in events})
        print(f"{args.format}: {len(firings)} firings, {sent} messages over {nights} days "
              f"(shifted {shift} days)")
        print(f"alerts by kind: {dict(Counter(a['kind'] for a in alerts))}")
        for a in sorted(alerts, key=lambda a: a["event_ms"])[:60]:
            when = datetime.fromtimestamp(a["event_ms"] / 1000, tz)
            print(f"  {when:%a %Y-%m-%d %H:%M} {a['kind']:18} {a['device_id']} "
                  f"{a['detail'] if a['kind'] != 'door_open_night' else ''}")


if __name__ == "__main__":
    main()
