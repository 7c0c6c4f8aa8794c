"""Ingest benchmark: queued QoS 1 backlog drained by the gateway vs by mosquitto_sub.

On a private Mosquitto, N small zigbee2mqtt messages are queued at QoS 1 for three
persistent sessions while they are away: the gateway's, a mosquitto_sub's and a bare
paho-mqtt callback loop's (same protocol as the gateway, counting messages, nothing else).
Then each drains its backlog alone; the gateway counts as done when every message is
committed (SQLite, WAL, synchronous=FULL, one gateway). Prints the rates and the ratios.

A drain of 200,000 messages by mosquitto_sub lasts one to two seconds, and on the 2-core
machine its rate varied from 86,000 to 161,000 msg/s between runs. So the whole
measurement (queue, then the three drains) is repeated `--rounds` times on the same broker
and database, every round is printed, and the ratio is also given as the median over the
rounds.

Usage: python bench/ingest.py [--messages 200000] [--devices 200] [--db sqlite|postgresql]
                              [--rounds 3]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The gateway's imports are made inside main(): the receiver process is spawned and
# imports this __main__ module again, and `tillsyn run` does not make it import the
# whole gateway either (measured: 1 s of start-up in the timed drain otherwise).


def registry(devices: int) -> dict[str, object]:
    residents = []
    for i in range(devices // 2):
        residents.append({
            "id": f"r-{i}", "name": f"Bench {i}", "unit": "u", "consent": ["motion", "contact"],
            "devices": [
                {"id": f"pir-{i}", "profile": "zigbee2mqtt.occupancy",
                 "source": f"zigbee2mqtt/pir-{i}", "room": "hall"},
                {"id": f"door-{i}", "profile": "zigbee2mqtt.contact",
                 "source": f"zigbee2mqtt/door-{i}", "room": "entrance"}]})
    return {"units": [{"id": "u", "name": "Bench"}], "staff": [], "residents": residents}


def bare_paho(port: int, n: int) -> float:
    """Drain n messages from the 'bench-paho' session with a bare callback loop (3.1.1,
    automatic acknowledgement); n = 0 only creates the session. Returns seconds."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-paho",
                         protocol=mqtt.MQTTv311, clean_session=False)
    count = [0]

    def on_message(c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        count[0] += 1
        if count[0] >= n:
            c.disconnect()

    def on_connect(c: mqtt.Client, *_a: object) -> None:
        c.subscribe("zigbee2mqtt/#", 1)
        if n == 0:
            c.disconnect()

    client.on_message = on_message
    client.on_connect = on_connect
    t0 = time.perf_counter()
    client.connect("127.0.0.1", port)
    client.loop_forever()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--rounds", type=int, default=3,
                    help="times the whole measurement is repeated (median ratio printed)")
    args = ap.parse_args()
    from bench._harness import bench_database
    from gateway.runtime import build_ingest, load_runtime
    from gateway.storage.schema import observations
    from tests.homes import write_config
    from tests.support import Mosquitto, wait_for

    n = args.messages
    work = Path(tempfile.mkdtemp(prefix="tillsyn-bench-"))
    broker = Mosquitto()
    broker.start()
    db_url, pg = bench_database(args.db, work)
    cfg = write_config(work, broker.url, db_url, reg=registry(args.devices),
                       client_id="bench-gateway")
    sub_exe = shutil.which("mosquitto_sub") or "mosquitto_sub"
    sub_args = [sub_exe, "-h", "127.0.0.1", "-p", str(broker.port), "-V", "mqttv5", "-q", "1",
                "-c", "-i", "bench-sub", "-x", "86400", "-t", "zigbee2mqtt/#"]
    try:
        # 1. Create both persistent sessions, then leave.
        rt = load_runtime(cfg)
        ingest = build_ingest(rt)
        ingest.start()
        wait_for(lambda: ingest.connected, what="gateway connected")
        time.sleep(1.0)
        ingest.stop()
        sub = subprocess.Popen(sub_args, stdout=subprocess.DEVNULL)
        time.sleep(1.0)
        sub.terminate()
        sub.wait()
        bare_paho(broker.port, 0)

        results: list[tuple[float, float, float]] = []  # seconds: sub, paho, gateway
        stored = 0
        for rnd in range(1, args.rounds + 1):
            # 2. Queue the backlog for the three sessions.
            t0 = time.perf_counter()
            queue(broker.url, n, args.devices)
            print(f"round {rnd}: queued {n} QoS 1 messages for 3 sessions in "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)

            # 3. mosquitto_sub drains its backlog.
            t0 = time.perf_counter()
            subprocess.run([*sub_args, "-C", str(n)], stdout=subprocess.DEVNULL, check=True)
            sub_s = time.perf_counter() - t0

            # 4. A bare paho callback loop drains its backlog.
            paho_s = bare_paho(broker.port, n)

            # 5. The gateway drains its backlog: received, decoded, committed, acknowledged.
            before = rt.store.count(observations)
            rt2 = load_runtime(cfg)
            ingest2 = build_ingest(rt2)
            t0 = time.perf_counter()
            ingest2.start()
            wait_for(lambda i=ingest2: i.committed_messages >= n, 3600, interval=0.01,
                     what="gateway drained")
            gw_s = time.perf_counter() - t0
            ingest2.stop()
            stored = rt2.store.count(observations) - before
            rt2.store.close()
            if stored != n:
                raise SystemExit(f"round {rnd}: {stored} observations stored, expected {n}")
            results.append((sub_s, paho_s, gw_s))
            print(f"round {rnd}: mosquitto_sub {n / sub_s:9.0f} msg/s, bare paho "
                  f"{n / paho_s:7.0f} msg/s, gateway {n / gw_s:7.0f} msg/s, gateway/"
                  f"mosquitto_sub {sub_s / gw_s:.3f}, gateway/bare paho {paho_s / gw_s:.3f}",
                  flush=True)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        broker.cleanup()
        if pg is not None:
            pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    med = statistics.median
    sub_s, paho_s, gw_s = (med(r[i] for r in results) for i in range(3))
    print(f"median over {len(results)} rounds ({stored} observations committed in each, "
          f"peak RSS {rss_mb:.0f} MB):")
    print(f"mosquitto_sub     : {n / sub_s:9.0f} msg/s")
    print(f"bare paho loop    : {n / paho_s:9.0f} msg/s")
    print(f"gateway ({args.db:6}): {n / gw_s:9.0f} msg/s")
    print(f"ratio gateway/mosquitto_sub = {med(r[0] / r[2] for r in results):.3f} (median of "
          f"the rounds' ratios; per round: "
          f"{', '.join(f'{r[0] / r[2]:.3f}' for r in results)})")
    print(f"ratio gateway/bare paho     = {med(r[1] / r[2] for r in results):.3f}")


def queue(url: str, n: int, devices: int) -> None:
    """Publish n small zigbee2mqtt messages (motion and contact, alternating) at QoS 1."""
    from tests.mqtt_client import Publisher

    pub = Publisher(url, client_id="bench-pub")
    half = devices // 2
    payloads = [b'{"occupancy":true,"linkquality":87}', b'{"occupancy":false,"linkquality":87}',
                b'{"contact":false,"linkquality":60}', b'{"contact":true,"linkquality":60}']
    for start in range(0, n, 5000):
        batch = []
        for i in range(start, min(start + 5000, n)):
            dev = i % half
            if i % 2 == 0:
                batch.append((f"zigbee2mqtt/pir-{dev}", payloads[(i // 2) % 2]))
            else:
                batch.append((f"zigbee2mqtt/door-{dev}", payloads[2 + (i // 2) % 2]))
        pub.publish_many(batch)
    pub.close()

if __name__ == "__main__":
    main()
