"""Soak run: a steady load for a long time, with a broker restart and a gateway SIGKILL in
the middle; counts what was published against what was stored, alerts expected against
raised, and the gateway's memory over the run.

A private Mosquitto (persistence on) and `tillsyn run` as a child process (SQLite by
default, or --db postgresql on a private server). The registry has devices/5 residents,
each with three zigbee2mqtt motion sensors, a zigbee2mqtt door contact (indoor) and a
Tillsyn native device (heartbeat every minute, and now and then an SOS). Every message
carries a unique device time (base + sequence number, `last_seen` for zigbee2mqtt, `ts`
for native), so a lost or doubled message is found exactly. One SOS a minute goes to a
new resident: each must raise exactly one alert, including those sent while the broker or
the gateway was down.

Usage: python bench/soak.py [--minutes 30] [--rate 2000] [--devices 5000] [--db sqlite]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
import yaml  # noqa: E402

from bench._harness import bench_database  # noqa: E402
from gateway.broker import PrivateMosquitto, free_port  # noqa: E402
from tests.gateway_proc import health as gateway_health  # noqa: E402

SITE = "soak"
MAX_OUTSTANDING = 50_000  # publishes awaiting PUBACK, well under 65,535 packet ids


def registry(devices: int) -> dict[str, Any]:
    residents = []
    for i in range(devices // 5):
        rid = f"r-{i}"
        devs: list[dict[str, Any]] = [
            {"id": f"pir{k}-{i}", "profile": "zigbee2mqtt.occupancy",
             "source": f"zigbee2mqtt/pir{k}-{i}", "room": room}
            for k, room in enumerate(["hall", "kitchen", "living room"])]
        devs.append({"id": f"door-{i}", "profile": "zigbee2mqtt.contact",
                     "source": f"zigbee2mqtt/door-{i}", "room": "hall"})
        devs.append({"id": f"tag-{i}", "profile": "tillsyn.native",
                     "source": f"tillsyn/v1/{SITE}/tag-{i}"})
        residents.append({"id": rid, "name": f"Soak {i}", "unit": "u",
                          "consent": ["motion", "contact", "sos"], "devices": devs})
    return {"units": [{"id": "u", "name": "Soak"}],
            "staff": [{"id": "s-1", "name": "Night", "unit": "u", "role": "night_staff"}],
            "residents": residents}


class Publisher:
    """Paced QoS 1 publishing on one paho client; records what the broker acknowledged."""

    def __init__(self, url: str, total: int, base_ms: int) -> None:
        host, port = url.split("://", 1)[1].rsplit(":", 1)
        self.total = total
        self.base_ms = base_ms
        self.acked = bytearray(total)
        self.kind = bytearray(total)  # 0 load, 1 heartbeat, 2 sos
        self.sent = 0
        self._mids: dict[int, int] = {}
        self._early: set[int] = set()
        self._lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="soak-publisher",
                             protocol=mqtt.MQTTv311, clean_session=False)
        self.c.max_inflight_messages_set(1000)
        self.c.max_queued_messages_set(0)
        self.c.reconnect_delay_set(0.2, 2)
        self.c.on_publish = self._on_publish
        self.c.connect(host, int(port))
        self.c.loop_start()

    def _on_publish(self, c: Any, u: Any, mid: int, rc: Any, p: Any) -> None:
        with self._lock:
            seq = self._mids.pop(mid, None)
            if seq is None:
                self._early.add(mid)
            else:
                self.acked[seq] = 1

    def publish(self, topic: str, body: bytes, kind: int = 0) -> None:
        # Packet ids wrap at 65,535: with more than that awaiting PUBACK (say, while the
        # broker is down) two would share one id and the bookkeeping would mix them up.
        while len(self._mids) > MAX_OUTSTANDING:
            time.sleep(0.01)
        seq = self.sent
        self.kind[seq] = kind
        info = self.c.publish(topic, body, qos=1)  # not under our lock (paho's own lock)
        with self._lock:
            if info.mid in self._mids:
                raise RuntimeError(f"packet id {info.mid} reused while still awaiting PUBACK")
            if info.mid in self._early:
                self._early.discard(info.mid)
                self.acked[seq] = 1
            else:
                self._mids[info.mid] = seq
        self.sent += 1

    def ts(self) -> int:
        return self.base_ms + self.sent

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def rss_kb(pid: int) -> int:
    """Resident memory of a process and its children (the receiver process)."""
    total = 0
    pids = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(x) for x in (task / "children").read_text().split()]
    except OSError:
        return 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def health(port: int) -> dict[str, Any]:
    """/healthz of the gateway under load (a longer timeout than the tests use)."""
    return gateway_health(port, timeout=2)


def start_gateway(cfg: Path, log: Path, port: int) -> subprocess.Popen[bytes]:
    with log.open("ab") as f:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(cfg)],
                                stdout=f, stderr=f, cwd=ROOT)
    deadline = time.monotonic() + 600  # a restart replays the last 12 h into the detectors
    while health(port).get("mqtt_connected") is not True:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            proc.wait()
            raise SystemExit(f"gateway did not start within 600 s; see {log}")
        time.sleep(0.2)
    return proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=int, default=2000, help="messages per second")
    ap.add_argument("--devices", type=int, default=5000)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--receiver", choices=["process", "thread"], default="process")
    ap.add_argument("--protocol", choices=["3.1.1", "5"], default="3.1.1")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tillsyn-soak-"))
    broker = PrivateMosquitto(work / "mosquitto")
    broker.start()
    db_url, pg = bench_database(args.db, work)
    port = free_port()
    reg = registry(args.devices)
    (work / "registry.yaml").write_text(yaml.safe_dump(reg, sort_keys=False))
    (work / "config.yaml").write_text(yaml.safe_dump({
        "mqtt": {"url": broker.url, "client_id": "soak-gw", "receiver": args.receiver,
                 "protocol": args.protocol},
        "storage": {"url": db_url},
        "api": {"port": port, "token_secret": "soak-secret-not-for-production"},
        "site": {"id": SITE}, "registry": {"path": "registry.yaml"}}, sort_keys=False))
    cfg = work / "config.yaml"
    log = work / "gateway.log"
    n_res = len(reg["residents"])
    seconds = args.minutes * 60
    total = int(args.rate * seconds * 1.01) + 10_000
    base_ms = int(time.time() * 1000) - total - 60_000  # device times stay in the past
    print(f"soak: {args.minutes:g} min at {args.rate} msg/s, {n_res * 5} devices "
          f"({n_res} residents), {args.db}; work folder {work}", flush=True)

    gw = start_gateway(cfg, log, port)
    pub = Publisher(broker.url, total, base_ms)
    memory: list[tuple[float, int]] = []
    lag: list[float] = []
    events: list[str] = []
    sos_sent: list[str] = []
    t0 = time.monotonic()
    restart_at, kill_at = seconds / 3, 2 * seconds / 3
    broker_done = kill_done = False
    before_kill = 0
    step = 0.01
    next_tick = t0
    next_sample = t0 + 60
    next_sos = t0 + 30
    next_heartbeat = t0
    hb_cursor = 0
    device_cursor = 0
    per_tick = args.rate * step
    owed = 0.0
    restarter: threading.Thread | None = None
    failed: list[str] = []
    running = [gw]

    def restart(t0: float) -> None:
        time.sleep(5)
        try:
            running.append(start_gateway(cfg, log, port))
        except SystemExit as exc:
            failed.append(str(exc))
            return
        events.append(f"{time.monotonic() - t0:6.0f} s  gateway running again (replay of "
                      f"the last 12 h included)")

    try:
        while (now := time.monotonic()) - t0 < seconds:
            if not broker_done and now - t0 >= restart_at:
                broker_done = True
                broker.stop()
                events.append(f"{now - t0:6.0f} s  broker stopped")
                time.sleep(5)
                broker.start()
                events.append(f"{time.monotonic() - t0:6.0f} s  broker started again")
            if not kill_done and now - t0 >= kill_at:
                kill_done = True
                before_kill = rss_kb(gw.pid)
                memory.append((now - t0, before_kill))
                gw.send_signal(signal.SIGKILL)
                gw.wait()
                events.append(f"{now - t0:6.0f} s  gateway killed (SIGKILL)")
                # Devices do not stop while the gateway is away: restart it in the
                # background and keep publishing (the broker queues for its session).
                restarter = threading.Thread(target=restart, args=(t0,), daemon=True)
                restarter.start()
            if failed:
                raise SystemExit(failed[0])
            if now >= next_sos:
                next_sos += 60
                i = len(sos_sent) % n_res
                sos_sent.append(f"r-{i}")
                pub.publish(f"tillsyn/v1/{SITE}/tag-{i}/event", json.dumps(
                    {"ts": pub.ts(), "kind": "sos", "value": True}).encode(), 2)
            if now >= next_heartbeat:  # each tag once a minute, spread over the minute
                n_hb = max(1, n_res // 60)
                for _ in range(n_hb):
                    i = hb_cursor % n_res
                    hb_cursor += 1
                    pub.publish(f"tillsyn/v1/{SITE}/tag-{i}/heartbeat", json.dumps(
                        {"ts": pub.ts(), "kind": "heartbeat", "value": 1}).encode(), 1)
                next_heartbeat += 1.0
            gw = running[-1]
            if now >= next_sample and (restarter is None or not restarter.is_alive()):
                next_sample += 30
                memory.append((now - t0, rss_kb(gw.pid)))
                h = health(port)
                lag.append(float(h.get("ingest_lag_seconds", 0.0)))
                print(f"  {now - t0:6.0f} s  sent {pub.sent:>9,}  acked {sum(pub.acked):>9,}  "
                      f"gateway RSS {memory[-1][1] / 1024:6.1f} MB  lag {lag[-1]:.2f} s  "
                      f"queue {h.get('queue_depth')}", flush=True)
            owed += per_tick
            while owed >= 1:
                owed -= 1
                k = device_cursor % (n_res * 4)
                device_cursor += 1
                i, sensor = divmod(k, 4)
                if sensor < 3:
                    body = {"occupancy": True, "battery": 90, "linkquality": 120,
                            "last_seen": pub.ts()}
                    pub.publish(f"zigbee2mqtt/pir{sensor}-{i}", json.dumps(body).encode())
                else:
                    body = {"contact": (device_cursor // (n_res * 4)) % 2 == 0,
                            "battery": 80, "last_seen": pub.ts()}
                    pub.publish(f"zigbee2mqtt/door-{i}", json.dumps(body).encode())
            next_tick += step
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        elapsed = time.monotonic() - t0
        if restarter is not None:
            restarter.join()
        if failed:
            raise SystemExit(failed[0])
        gw = running[-1]
        memory.append((elapsed, rss_kb(gw.pid)))
        print(f"publishing stopped after {elapsed:.0f} s; waiting for acknowledgements and "
              f"commits", flush=True)
        deadline = time.monotonic() + 120
        while sum(pub.acked[:pub.sent]) < pub.sent and time.monotonic() < deadline:
            time.sleep(0.5)
        results = settle(db_url, pub)
    finally:
        pub.close()
        for proc in running:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        broker.cleanup()
        if pg is not None:
            pg.cleanup()
    report(args, pub, results, memory, before_kill, lag, events, sos_sent, elapsed, log)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def settle(db_url: str, pub: Publisher) -> dict[str, Any]:
    """Wait until the store stops growing, then read what it holds."""
    from sqlalchemy import func, select

    from gateway.storage.schema import alerts, dead_letters, observations
    from gateway.storage.store import Store

    store = Store(db_url)
    kinds = ("motion", "contact", "heartbeat", "sos")
    acked = sum(pub.acked[:pub.sent])
    last, same_since = -1, time.monotonic()
    while time.monotonic() - same_since < 30:
        with store.engine.connect() as conn:
            n = int(conn.execute(select(func.count()).select_from(observations)
                                 .where(observations.c.kind.in_(kinds))).scalar_one())
        if n >= acked:
            break
        if n != last:
            last, same_since = n, time.monotonic()
        time.sleep(2)
    seen = bytearray(pub.total)
    doubled = 0
    outside = 0
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=50_000).execute(
            select(observations.c.ts_ms).where(observations.c.kind.in_(kinds)))
        for (ts,) in result:
            seq = int(ts) - pub.base_ms
            if not 0 <= seq < pub.total:
                outside += 1
            elif seen[seq]:
                doubled += 1
            else:
                seen[seq] = 1
        alert_rows = conn.execute(select(alerts.c.kind, alerts.c.resident_id)).all()
        dead = int(conn.execute(select(func.count()).select_from(dead_letters)).scalar_one())
    store.close()
    lost = [s for s in range(pub.sent) if pub.acked[s] and not seen[s]]
    return {"stored_once": sum(seen), "doubled": doubled, "outside": outside, "lost": lost,
            "alerts": alert_rows, "dead_letters": dead}


def report(args: argparse.Namespace, pub: Publisher, r: dict[str, Any],
           memory: list[tuple[float, int]], before_kill: int, lag: list[float],
           events: list[str], sos_sent: list[str], elapsed: float, log: Path) -> None:
    acked = sum(pub.acked[:pub.sent])
    sos_alerts = sorted(res for kind, res in r["alerts"] if kind == "sos")
    other: dict[str, int] = {}
    for kind, _ in r["alerts"]:
        if kind != "sos":
            other[kind] = other.get(kind, 0) + 1
    print()
    print(f"soak result ({elapsed / 60:.1f} min, target {args.rate} msg/s, "
          f"{args.devices} devices, {args.db})")
    for e in events:
        print(f"  {e}")
    print(f"  published           {pub.sent:>12,}  ({pub.sent / elapsed:,.0f} msg/s)")
    print(f"  acknowledged        {acked:>12,}  by the broker")
    print(f"  stored once         {r['stored_once']:>12,}")
    print(f"  lost (acked, not stored) {len(r['lost']):>7,}")
    if r["lost"]:
        first = r["lost"][:20]
        print(f"    first lost sequence numbers {first} (kinds {[pub.kind[s] for s in first]}); "
              f"dead letters in the database: {r['dead_letters']}")
    print(f"  doubled             {r['doubled']:>12,}  (publisher resends after the broker "
          f"restart can double a message: QoS 1 is at least once)")
    print(f"  SOS alerts          expected {len(set(sos_sent))}, raised {len(sos_alerts)} "
          f"({len(set(sos_alerts))} residents)")
    print(f"  other alerts        {other or 'none'}")
    start = next((kb for t, kb in memory if t >= 60), memory[0][1] if memory else 0)
    peak = max(kb for _, kb in memory)
    print(f"  gateway memory      {start / 1024:.0f} MB at 1 min, {before_kill / 1024:.0f} MB "
          f"before the kill, {memory[-1][1] / 1024:.0f} MB at the end (restarted process), "
          f"max {peak / 1024:.0f} MB (gateway and receiver processes)")
    print(f"  ingest lag          median {sorted(lag)[len(lag) // 2] if lag else 0:.2f} s, "
          f"max {max(lag, default=0):.2f} s (sampled every 30 s)")
    errors = [line for line in log.read_text(errors="replace").splitlines()
              if " ERROR " in line or "Traceback" in line]
    print(f"  gateway log         {len(errors)} error lines")
    for line in errors[:10]:
        print(f"    {line[:160]}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
