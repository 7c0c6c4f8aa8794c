"""Push latency: an SOS published to Mosquitto -> its encrypted Web Push message at every
subscribed phone's push endpoint.

A private Mosquitto, the gateway (ingest, detectors, alerting, the push sender) on SQLite,
and a push service on loopback (a threaded HTTP server recording when each message
arrives). 100 night nurses of one unit each have a phone subscribed (their own P-256 key and
auth secret, so each message is encrypted for its phone). 30 residents press their alarm,
one press a second; each press must reach all 100 phones. Prints p50, p99 and max from
publish to arrival, over every (press, phone).

Usage: python bench/push_latency.py [--phones 100] [--presses 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._harness import running_gateway  # noqa: E402
from tests.homes import SITE  # noqa: E402
from tests.mqtt_client import Publisher  # noqa: E402
from tests.pushing import Phone, PushService  # noqa: E402


def registry(residents: int, phones: int) -> dict[str, Any]:
    return {"units": [{"id": "u", "name": "Bench"}],
            "staff": [{"id": f"s-{i}", "name": f"Nurse {i}", "unit": "u",
                       "role": "night_staff"} for i in range(phones)],
            "residents": [{"id": f"r-{i}", "name": f"Bench {i}", "unit": "u",
                           "consent": ["sos"], "action_plan": "Knacka och gå in.",
                           "devices": [{"id": f"alarm-{i}", "profile": "tillsyn.native",
                                        "source": f"tillsyn/v1/{SITE}/alarm-{i}",
                                        "room": "bedroom"}]} for i in range(residents)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--phones", type=int, default=100)
    ap.add_argument("--presses", type=int, default=30)
    args = ap.parse_args()
    service = PushService()
    reg = registry(args.presses, args.phones)
    with running_gateway(reg, "bench-push",
                         push={"endpoint_hosts": ["127.0.0.1"]}) as (rt, broker):
        assert rt.push is not None
        phones = [Phone(service, f"p{i}") for i in range(args.phones)]
        for i, phone in enumerate(phones):
            s = phone.subscription()
            rt.push.subscribe(f"s-{i}", s["endpoint"], s["keys"]["p256dh"], s["keys"]["auth"])
        pub = Publisher(broker.url, client_id="bench-push-pub")
        sent: dict[int, float] = {}
        for i in range(args.presses):
            body = json.dumps({"ts": int(time.time() * 1000), "kind": "sos", "value": True})
            sent[i] = time.monotonic()
            pub.publish_many([(f"tillsyn/v1/{SITE}/alarm-{i}/event", body)])
            time.sleep(1.0)
        deadline = time.monotonic() + 30
        want = args.presses * args.phones
        while len(service.received) < want and time.monotonic() < deadline:
            time.sleep(0.1)
        pub.close()
        delays = []
        for got in service.received:
            phone = phones[int(got["path"].rsplit("p", 1)[1])]
            data = phone.read(got["body"])
            press = int(next(a for a in rt.alerts.list_alerts(limit=10_000)  # type: ignore
                             if a["id"] == data["alert_id"])["resident_id"][2:])
            delays.append((got["at"] - sent[press]) * 1000)
    service.close()
    delays.sort()
    p99 = delays[max(0, int(len(delays) * 0.99) - 1)]
    print(f"{len(delays)} of {want} pushes arrived ({args.presses} SOS x {args.phones} phones)")
    print(f"publish -> push at the phone's endpoint: p50 {statistics.median(delays):.0f} ms, "
          f"p99 {p99:.0f} ms, max {delays[-1]:.0f} ms (target p99 < 1000 ms)")


if __name__ == "__main__":
    main()
