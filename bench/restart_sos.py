"""SOS during a large restart replay: publish -> the board's stream, and -> the alarm centre.

The gateway (`tillsyn run`, SQLite) starts on a database holding `--rows` observations of
the last 10 hours for `--residents` residents, so its timed rules spend a minute or more
rebuilding. As soon as it is connected, one resident after another presses the alarm
(one every `--interval` s) for as long as the rebuild runs. Each SOS is timed from just
before its MQTT publish to
- its `raised` event on /api/alerts/stream (the night-staff board's stream), and
- its SCAIP request arriving at the alarm receiving centre: SIPp behind Kamailio with
  digest auth (the same set-up as tests/test_scaip.py), timestamped in SIPp's own log.
Only presses published while the rebuild was still running are counted.

Usage: python bench/restart_sos.py [--rows 2000000] [--residents 1000] [--interval 0.5]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.alert_latency import registry  # noqa: E402
from gateway.auth import create_token  # noqa: E402
from gateway.broker import PrivateMosquitto, free_port  # noqa: E402
from gateway.runtime import load_runtime  # noqa: E402
from gateway.storage.schema import observations  # noqa: E402
from tests.gateway_proc import GatewayProcess, follow_alerts  # noqa: E402
from tests.homes import SITE, write_config  # noqa: E402
from tests.mqtt_client import Publisher  # noqa: E402
from tests.sip import PASSWORD, REALM, USER, Centre, Kamailio  # noqa: E402

SECRET = "test-secret-not-for-production"


def fill(cfg: Path, rows: int, residents: int) -> float:
    """`rows` motion observations over the last 10 hours; returns seconds taken."""
    t0 = time.monotonic()
    rt = load_runtime(cfg)
    now = int(time.time() * 1000)
    span = 10 * 3_600_000
    rnd = random.Random(7)
    with rt.store.engine.begin() as conn:
        for start in range(0, rows, 50_000):
            conn.execute(insert(observations), [
                {"resident_id": f"r-{i % residents}", "device_id": f"pir-{i % residents}",
                 "kind": "motion", "value": rnd.random() < 0.5,
                 "ts_ms": now - span + i * (span // rows),
                 "received_ms": now - span + i * (span // rows), "room": "kitchen",
                 "clock_override": False}
                for i in range(start, min(rows, start + 50_000))])
    rt.store.close()
    return time.monotonic() - t0


def centre_arrivals(centre: Centre) -> dict[str, float]:
    """cid -> wall-clock time SIPp logged the first ME request carrying it."""
    text = centre.messages.read_text(errors="replace") if centre.messages.exists() else ""
    out: dict[str, float] = {}
    for stamp, body in re.findall(
            r"-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n\w+ message received.*?"
            r"(<mrq>.*?</mrq>)", text, flags=re.S):
        if "<mty>ME</mty>" not in body:
            continue
        cid = re.search(r"<cid>([^<]+)</cid>", body)
        if cid and cid.group(1) not in out:
            out[cid.group(1)] = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()
    return out


def summary(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * len(ms))) - 1)]
    return (f"{name}: n={len(ms)} p50 {statistics.median(ms):.0f} ms, p99 {p99:.0f} ms, "
            f"max {ms[-1]:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--residents", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between presses")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tillsyn-restart-sos-"))
    broker = PrivateMosquitto(work / "mosquitto")
    broker.start()
    centre = Centre("accept")
    centre.start()
    proxy = Kamailio(centre.port)
    proxy.start()
    port = free_port()
    cfg = write_config(
        work, broker.url, f"sqlite:///{work}/t.db", reg=registry(args.residents),
        client_id="bench-restart", api_port=port,
        scaip={"enabled": True, "local_uri": "sip:tillsyn@127.0.0.1", "heartbeat_seconds": 60,
               "centres": [{"id": "larm", "transport": "tcp",
                            "uri": f"sip:scaip@127.0.0.1:{centre.port}",
                            "proxy": proxy.proxy_uri("tcp"), "username": USER,
                            "password": PASSWORD, "realm": REALM}]})
    print(f"filling {args.rows} observations ...", flush=True)
    print(f"filled in {fill(cfg, args.rows, args.residents):.0f} s", flush=True)
    gw = GatewayProcess(cfg, port, work / "gw.log")
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {create_token(SECRET, 's-admin', 3600)}"}
    raised: dict[str, float] = {}
    sent: dict[str, float] = {}

    def on_event(e: dict[str, Any]) -> None:
        if e["transition"] == "raised" and e["alert"]["kind"] == "sos":
            raised.setdefault(e["alert"]["resident_id"], time.time())

    def listen() -> None:
        follow_alerts(base, auth, on_event, read_s=600)

    try:
        t_start = time.monotonic()
        wall_start = time.time()
        gw.start()
        print(f"connected {time.monotonic() - t_start:.1f} s after start; rebuilding: "
              f"{gw.health().get('detectors_rebuilding')}", flush=True)
        threading.Thread(target=listen, daemon=True).start()
        time.sleep(0.3)
        rebuild_done: float | None = None
        with Publisher(broker.url, client_id="bench-sos") as pub:
            i = 0
            while i < args.residents:
                if not gw.health().get("detectors_rebuilding"):
                    rebuild_done = time.time()
                    break
                rid = f"r-{i}"
                sent[rid] = time.time()
                pub.publish_many([(f"tillsyn/v1/{SITE}/alarm-{i}/event", json.dumps(
                    {"ts": int(time.time() * 1000), "kind": "sos", "value": True}))])
                i += 1
                time.sleep(args.interval)
        deadline = time.monotonic() + 900
        while rebuild_done is None and time.monotonic() < deadline:
            if not gw.health().get("detectors_rebuilding"):
                rebuild_done = time.time()
            time.sleep(0.2)
        print(f"rebuild finished {time.monotonic() - t_start:.0f} s after start "
              f"({(rebuild_done or time.time()) - wall_start:.0f} s by the wall clock); "
              f"{len(sent)} presses during it", flush=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (
                len(raised) < len(sent) or len(centre_arrivals(centre)) < len(sent)):
            time.sleep(0.5)
        arrivals = centre_arrivals(centre)
        rebuilt = re.search(r"detectors rebuilt from (\d+) observations",
                            (work / "gw.log").read_text())
        print(f"replay: {rebuilt.group(1) if rebuilt else '?'} observations")
        print(f"SOS published during the replay: {len(sent)}; on the stream "
              f"{sum(r in raised for r in sent)}; at the centre {sum(r in arrivals for r in sent)}")
        if sent:
            print(summary("publish -> board stream", [1000 * (raised[r] - sent[r])
                                                      for r in sent if r in raised]))
            print(summary("publish -> alarm centre (SCAIP)",
                          [1000 * (arrivals[r] - sent[r]) for r in sent if r in arrivals]))
    finally:
        gw.stop()
        proxy.stop()
        centre.cleanup()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
