"""Time-series export (storage.influxdb): line protocol, the sink's buffer and retries, and
the whole path through a real gateway, Mosquitto and VictoriaMetrics (which accepts the
InfluxDB v2 write API influxdb-client speaks)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from gateway.config.gateway import InfluxConfig
from gateway.metrics import Metrics
from gateway.storage.store import Store
from gateway.timeseries import Encoder, InfluxSink, WriteRejected, backfill, fields_of
from tests.gateway_proc import GatewayProcess
from tests.homes import SITE, write_config
from tests.mqtt_client import Publisher
from tests.support import PAYLOADS, Mosquitto, VictoriaMetrics, free_port, tillsyn, wait_for

# --- what an observation becomes ------------------------------------------------------------


def test_fields_of_each_kind() -> None:
    assert fields_of("motion", True) == {"value": True}
    assert fields_of("battery", 87) == {"value": 87.0}  # numbers are floats: one field type
    assert fields_of("contact", "open") == {"value": "open", "open": True}
    assert fields_of("contact", "closed") == {"value": "closed", "open": False}
    assert fields_of("availability", "offline") == {"value": "offline", "online": False}
    # who unlocked (staff credential, lock user slot) is not exported
    assert fields_of("lock", {"state": "unlocked", "method": "keypad", "user": 2,
                              "credential": "keypad:2"}) == {
        "state": "unlocked", "method": "keypad", "locked": False}
    assert fields_of("position", {"lat": 59.3293, "lon": 18.0686, "acc": None}) == {
        "lat": 59.3293, "lon": 18.0686}
    assert fields_of("geofence", {"event": "leave", "region": "Hemma", "rid": "x1"}) == {
        "event": "leave", "region": "Hemma", "inside": False}
    assert fields_of("heartbeat", float("nan")) == {}
    assert fields_of("heartbeat", None) == {}


def test_encoder_line() -> None:
    enc = Encoder("site-1")
    line = enc.line({"resident_id": "r-1", "device_id": "pir 1", "kind": "motion",
                     "value": True, "ts_ms": 1_700_000_000_123, "room": "living room"})
    assert line == ("motion,device=pir\\ 1,resident=r-1,room=living\\ room,site=site-1 "
                    "value=true 1700000000123")
    assert enc.line({"resident_id": "r-1", "device_id": "d", "kind": "heartbeat",
                     "value": None, "ts_ms": 1, "room": None}) is None


text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
               max_size=12)
scalar = st.one_of(st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
                   st.integers(-10**9, 10**9), text)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["motion", "contact", "lock", "position", "geofence", "battery"]),
       resident=text, device=text, room=st.one_of(st.none(), text),
       value=st.one_of(scalar, st.dictionaries(
           st.text("abcdefgh =,", min_size=1, max_size=6), st.one_of(st.none(), scalar),
           max_size=4)),
       ts=st.integers(0, 2**42))
def test_encoder_matches_influxdb_client(kind: str, resident: str, device: str,
                                         room: str | None, value: Any, ts: int) -> None:
    """Same text as influxdb-client's own Point for the same fields (the library is the
    reference for escaping and number formatting)."""
    obs = {"resident_id": resident, "device_id": device, "kind": kind, "value": value,
           "ts_ms": ts, "room": room}
    fields = fields_of(kind, value)
    ours = Encoder("site-1").line(obs)
    if not fields:
        assert ours is None
        return
    point = Point(kind).tag("resident", resident).tag("device", device).tag("site", "site-1")
    if room:
        point.tag("room", room)
    for key, item in fields.items():
        point.field(key, item)
    point.time(ts, WritePrecision.MS)
    assert ours == point.to_line_protocol()


# --- the sink's buffer, batching and retries (a fake server: pure logic) -------------------


def _obs(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"resident_id": "r-1", "device_id": "d-1", "kind": "battery", "value": i,
             "ts_ms": 1_000 + i, "room": None} for i in range(start, start + n)]


class FakeServer:
    """Stores the bodies it accepts; fails while `down`; rejects while `reject`."""

    def __init__(self) -> None:
        self.bodies: list[list[str]] = []
        self.down = False
        self.reject = False
        self.calls = 0
        self.lock = threading.Lock()

    def write(self, body: str) -> None:
        with self.lock:
            self.calls += 1
            if self.down:
                raise ConnectionRefusedError("connection refused")
            if self.reject:
                raise WriteRejected("HTTP 400: field type conflict")
            self.bodies.append(body.split("\n"))

    def values(self) -> list[int]:
        return [int(line.split("value=")[1].split(" ")[0]) for b in self.bodies for line in b]


def _sink(server: FakeServer, **cfg: Any) -> tuple[InfluxSink, Metrics]:
    metrics = Metrics()
    config = InfluxConfig(url="http://fake:8086", **{"flush_seconds": 0.1,
                                                      "backoff_max_seconds": 1, **cfg})
    return InfluxSink(config, "site-1", metrics, server.write), metrics


def _metric(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_sink_batches_in_order() -> None:
    server = FakeServer()
    sink, metrics = _sink(server, batch_size=5000)
    sink.start()
    for part in range(12):
        sink.offer(_obs(1000, part * 1000))
    wait_for(lambda: sink.written == 12_000, 10, what="all written")
    sink.stop()
    assert server.values() == list(range(12_000))
    assert max(len(b) for b in server.bodies) == 5000
    assert _metric(metrics, "tillsyn_influx_points_written_total") == 12_000
    assert _metric(metrics, "tillsyn_influx_up") == 1


def test_sink_keeps_and_retries_while_server_is_down() -> None:
    server = FakeServer()
    server.down = True
    sink, metrics = _sink(server, batch_size=100)
    sink.start()
    sink.offer(_obs(950))
    wait_for(lambda: server.calls >= 2, 10, what="retries")
    assert sink.up is False and sink.written == 0
    assert _metric(metrics, "tillsyn_influx_up") == 0
    assert _metric(metrics, "tillsyn_influx_buffer_points") == 950
    server.down = False
    wait_for(lambda: sink.written == 950, 15, what="written after the outage")
    sink.stop()
    assert server.values() == list(range(950))  # each once, in order
    assert _metric(metrics, "tillsyn_influx_write_failures_total") >= 2
    assert sink.dropped == 0


def test_sink_drops_oldest_when_full_and_counts_them() -> None:
    server = FakeServer()
    server.down = True
    sink, metrics = _sink(server, batch_size=100, buffer_points=1000)
    sink.start()
    sink.offer(_obs(50))  # becomes the batch being retried
    wait_for(lambda: server.calls >= 1, 10, what="first attempt")
    for part in range(6):
        sink.offer(_obs(500, 50 + part * 500))  # 3,000 more while the server is down
    wait_for(lambda: sink.pending() == 1050, 10, what="buffer full")
    assert _metric(metrics, "tillsyn_influx_points_dropped_total", reason="buffer_full") == 2000
    server.down = False
    wait_for(lambda: sink.written == 1050, 15, what="the rest written")
    sink.stop()
    # the retried batch, then the newest 1,000: the oldest of the buffer went
    assert server.values() == list(range(50)) + list(range(2050, 3050))


def test_sink_drops_rejected_batch_and_goes_on() -> None:
    server = FakeServer()
    server.reject = True
    sink, metrics = _sink(server, batch_size=10)
    sink.start()
    sink.offer(_obs(10))
    wait_for(lambda: sink.dropped == 10, 10, what="rejected")
    server.reject = False
    sink.offer(_obs(5, 10))
    wait_for(lambda: sink.written == 5, 10, what="next batch written")
    sink.stop()
    assert server.values() == list(range(10, 15))
    assert _metric(metrics, "tillsyn_influx_points_dropped_total", reason="rejected") == 10


def test_sink_stop_counts_what_it_could_not_write() -> None:
    server = FakeServer()
    server.down = True
    sink, metrics = _sink(server)
    sink.start()
    sink.offer(_obs(300))
    wait_for(lambda: server.calls >= 1, 10, what="attempt")
    sink.stop(flush_seconds=0.5)
    assert _metric(metrics, "tillsyn_influx_points_dropped_total", reason="shutdown") == 300


def test_backfill_waits_for_room_and_never_drops() -> None:
    server = FakeServer()
    sink, _ = _sink(server, batch_size=500, buffer_points=1000)
    sink.start()
    n = backfill(sink, (_obs(400, i * 400) for i in range(20)))
    sink.stop()
    assert n == 8000 and sink.dropped == 0
    assert server.values() == list(range(8000))


def test_backfill_gives_up_when_nothing_can_be_written() -> None:
    server = FakeServer()
    server.down = True
    sink, _ = _sink(server, buffer_points=1000)
    sink.start()
    with pytest.raises(TimeoutError, match="ConnectionRefusedError"):
        backfill(sink, [_obs(100)], stall_s=1.5)
    sink.stop(flush_seconds=0)


# --- the whole path: gateway, Mosquitto, VictoriaMetrics -----------------------------------


def _metrics_text(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        lines = r.read().decode().splitlines()
    out = {}
    for line in lines:
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _points(vm: VictoriaMetrics, name: str) -> dict[tuple[str, int], float]:
    """{(device, ts_ms): value} of one series name (unique: a point written twice is one)."""
    out: dict[tuple[str, int], float] = {}
    for series in vm.export(f'{{__name__="{name}"}}'):
        metric: Any = series["metric"]
        values: Any = series["values"]
        stamps: Any = series["timestamps"]
        for value, ts in zip(values, stamps, strict=True):
            out[(metric["device"], int(ts))] = float(value)
    return out


@pytest.mark.broker
@pytest.mark.slow
def test_gateway_exports_to_victoriametrics_through_outage_and_backfill(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    vm = VictoriaMetrics()
    vm.start()
    port = free_port()
    db = f"sqlite:///{tmp_path}/t.db"
    cfg = write_config(tmp_path, mosquitto.url, db, client_id="gw-influx", api_port=port,
                       storage={"influxdb": {"url": vm.url, "bucket": "care", "org": "kommun",
                                             "flush_seconds": 0.2, "batch_size": 500,
                                             "buffer_points": 1000,
                                             "backoff_max_seconds": 2}})
    gw = GatewayProcess(cfg, port, tmp_path / "gw.log")
    gw.start()
    store = Store(db)
    base = int(time.time() * 1000) - 600_000
    try:
        time.sleep(0.5)  # connected; let the new session's subscriptions be granted
        z2m = PAYLOADS / "zigbee2mqtt"
        with Publisher(mosquitto.url, client_id="pub-influx") as pub:
            pub.publish_many([
                ("zigbee2mqtt/hall-pir-0",
                 (z2m / "RTCGQ11LM_state_occupancy_true.json").read_bytes()),
                ("zigbee2mqtt/door-0", b'{"contact":false}'),
                ("zigbee2mqtt/lock-0",
                 (z2m / "yale_YRD226_lock_state_unlocked_keypad_user2.json").read_bytes()),
                ("owntracks/r-1000/alarm", json.dumps(
                    {"_type": "location", "lat": 59.3293, "lon": 18.0686, "acc": 12,
                     "tst": base // 1000})),
            ])
        wait_for(lambda: _points(vm, "position_lat") != {}, 20, what="points in VM")
        # values as published (z2m contact false = open; Yale lock_state unlocked)
        assert list(_points(vm, "motion_value").values()) == [1.0]
        assert list(_points(vm, "contact_open").values()) == [1.0]
        assert list(_points(vm, "lock_locked").values()) == [0.0]
        assert list(_points(vm, "position_lat").values()) == [59.3293]
        assert list(_points(vm, "position_lon").values()) == [18.0686]
        assert list(_points(vm, "battery_value").values()) == [100.0, 100.0]  # pir, lock
        assert (("alarm-0", base // 1000 * 1000)) in _points(vm, "position_acc")
        series = vm.export('{__name__="motion_value"}')
        assert series[0]["metric"] == {"__name__": "motion_value", "device": "hall-pir-0",
                                       "resident": "r-1000", "room": "hall", "site": SITE}
        assert vm.export('{__name__=~"lock_(user|credential)"}') == []  # not exported
        assert gw.health()["timeseries"] is True

        # Outage shorter than the buffer: nothing lost.
        vm.stop()
        with Publisher(mosquitto.url, client_id="pub-influx") as pub:
            pub.publish_many([(f"tillsyn/v1/{SITE}/bed-0/event", json.dumps(
                {"ts": base + i, "kind": "motion", "value": True})) for i in range(800)])
        wait_for(lambda: gw.health().get("timeseries") is False, 20, what="export failing")
        health = gw.health()
        assert health["status"] == "ok"  # the database is the record: not degraded
        m = _metrics_text(port)
        assert m["tillsyn_influx_up"] == 0 and m["tillsyn_influx_write_failures_total"] >= 1
        wait_for(lambda: _metrics_text(port)["tillsyn_influx_buffer_points"] == 800, 20,
                 what="800 points buffered")
        vm.start()
        wait_for(lambda: len(_points(vm, "motion_value")) == 801, 30,
                 what="buffered points written")
        assert _metrics_text(port)['tillsyn_influx_points_dropped_total{reason="buffer_full"}'] \
            == 0

        # Outage longer than the buffer (1,000 points): the oldest are dropped and counted,
        # then `tillsyn timeseries backfill` sends the range again from the database.
        vm.stop()
        with Publisher(mosquitto.url, client_id="pub-influx") as pub:
            pub.publish_many([(f"tillsyn/v1/{SITE}/bed-0/event", json.dumps(
                {"ts": base + 1000 + i, "kind": "motion", "value": True}))
                for i in range(2500)])
        wait_for(lambda: store.count_between(base + 1000, base + 3500) == 2500, 30,
                 what="stored")
        wait_for(lambda: _metrics_text(port)[
            'tillsyn_influx_points_dropped_total{reason="buffer_full"}'] > 0, 20,
            what="drops counted")
        vm.start()
        wait_for(lambda: _metrics_text(port)["tillsyn_influx_buffer_points"] == 0, 30,
                 what="buffer written")
        m = _metrics_text(port)
        dropped = m['tillsyn_influx_points_dropped_total{reason="buffer_full"}']
        in_vm = sum(1 for (dev, ts) in _points(vm, "motion_value")
                    if dev == "bed-0" and ts >= base + 1000)
        assert in_vm + dropped == 2500  # every point either written or counted as dropped
        assert dropped >= 1000
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((base + 1000) / 1000))
        done = tillsyn("timeseries", "backfill", "--config", str(cfg), "--since", since)
        assert done.returncode == 0, done.stderr
        in_vm = sum(1 for (dev, ts) in _points(vm, "motion_value")
                    if dev == "bed-0" and ts >= base + 1000)
        assert in_vm == 2500
        check = tillsyn("timeseries", "check", "--config", str(cfg))
        assert check.returncode == 0 and check.stdout.strip() == "OK", check.stderr
    finally:
        gw.stop()
        store.close()
        vm.cleanup()


def test_timeseries_commands_explain_missing_config(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db")
    done = tillsyn("timeseries", "backfill", "--config", str(cfg), "--since", "2026-01-01")
    assert done.returncode == 2
    assert "storage.influxdb: not configured" in done.stderr
    down = write_config(tmp_path, "mqtt://127.0.0.1:1", f"sqlite:///{tmp_path}/t.db",
                        storage={"influxdb": {"url": f"http://127.0.0.1:{free_port()}"}})
    done = tillsyn("timeseries", "check", "--config", str(down))
    assert done.returncode == 2 and "write failed" in done.stderr


def test_grafana_dashboard_queries_fields_the_gateway_writes() -> None:
    """Every measurement/field pair the shipped dashboard filters on is one the encoder
    writes for a real value of that kind, so the panels are not empty by a typo."""
    import re

    from tests.support import ROOT

    dash = json.loads((ROOT / "deploy" / "grafana" / "tillsyn-observations.json").read_text())
    sample = {"motion": True, "contact": "open", "bed": False, "battery": 80,
              "availability": "online", "position": {"lat": 59.3, "lon": 18.1, "acc": 10},
              "geofence": {"event": "enter", "region": "Hemma", "rid": "a"},
              "lock": {"state": "locked", "method": "keypad", "user": 2, "credential": "k:2"}}
    pairs = []
    for panel in dash["panels"]:
        for target in panel["targets"]:
            pairs += re.findall(r'r\._measurement == "(\w+)" and r\._field == "(\w+)"',
                                target["query"])
    assert len(pairs) >= 6
    for measurement, field in pairs:
        assert field in fields_of(measurement, sample[measurement]), (measurement, field)
