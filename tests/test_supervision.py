"""Digital night supervision end to end: simulated nights through firmware stubs, a real
Mosquitto, the gateway and SQLite; expectations come from the simulator's own truth."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from detectors.supervision import check_instants
from firmware_stubs.home import SimEvent, last_complete_night, plan_nights
from firmware_stubs.player import Player
from firmware_stubs.scenarios import run, scenario_registry
from gateway.runtime import Runtime, load_runtime, start_service, stop_service
from gateway.storage.schema import supervision_checks
from tests.homes import SITE, write_config
from tests.support import Mosquitto, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]
TZ = ZoneInfo("Europe/Stockholm")
CHECKS = ["23:00", "02:00", "05:00"]
ALL_WELL = ["in_bed", "in_apartment", "door_closed", "not_in_bathroom_long", "sensors_online"]


def supervised_registry(residents: int) -> dict[str, Any]:
    reg = scenario_registry(residents, SITE)
    for res in reg["residents"]:
        res["supervision"] = {"checks": CHECKS, "all_well": ALL_WELL,
                              "replaces_physical_visits": True, "recheck_minutes": 15,
                              "consent_reference": "samtycke 2026-09-01"}
    return reg


def start(tmp_path: Path, mosquitto: Mosquitto, residents: int, client_id: str
          ) -> Runtime:
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db",
                       reg=supervised_registry(residents), client_id=client_id)
    rt = load_runtime(cfg)
    start_service(rt)
    wait_for(lambda: rt.ingest is not None and rt.ingest.connected, what="connected")
    return rt


def journal(rt: Runtime) -> list[dict[str, Any]]:
    with rt.store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(supervision_checks).order_by(supervision_checks.c.resident_id,
                                                supervision_checks.c.due_ms,
                                                supervision_checks.c.attempt))]


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def staff_visit_starts(events: list[SimEvent], resident_index: int) -> list[int]:
    lock = f"lock-{resident_index}"
    return [e.ts_ms for e in events if e.device_id == lock and e.kind == "lock"
            and e.value["state"] == "unlocked"]


def test_asleep_residents_are_ok_at_every_check_over_many_nights(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    residents, nights = 5, 3
    rt = start(tmp_path, mosquitto, residents, "gw-sup-asleep")
    events: list[SimEvent] = []
    try:
        truths, sent = run(mosquitto.url, rt, nights=nights, seed=11, incidents=(),
                           staff_visit_every=2, events_out=events)
        assert rt.ingest is not None and rt.ingest.committed_messages == sent
        rows = journal(rt)
        assert len(rows) == residents * nights * len(CHECKS)
        assert {(r["outcome"], r["attempt"], r["late"], r["final"]) for r in rows} == {
            ("ok", 1, False, True)}, [r["reasons"] for r in rows if r["outcome"] != "ok"]
        assert rt.alerts is not None
        assert [a for a in rt.alerts.list_alerts(limit=1000)
                if a["kind"].startswith("check")] == []
        first = last_complete_night(datetime.now(UTC), TZ, nights_back=nights).date()
        expected_dues = {ms(d) for n in range(nights)
                         for d in check_instants(first + timedelta(days=n), CHECKS, TZ)}
        assert {r["due_ms"] for r in rows} == expected_dues
        # Counting: visits made are the simulator's staff visits; a planned look-in is
        # avoided unless a staff visit started from 30 min before to 60 min after it.
        assert rt.supervision is not None
        counts = rt.supervision.counts(units=None, first=first,
                                       last=first + timedelta(days=nights - 1))
        assert len(counts) == residents * nights
        assert sum(c["physical_visits_made"] for c in counts) == \
            sum(t.staff_visits for t in truths) > 0
        for i in range(residents):
            starts = staff_visit_starts(events, i)
            near = sum(1 for d in expected_dues
                       if any(d - 30 * 60_000 <= s <= d + 60 * 60_000 for s in starts))
            mine = [c for c in counts if c["resident_id"] == f"r-{2000 + i}"]
            assert sum(c["digital_checks"] for c in mine) == nights * len(CHECKS)
            assert sum(c["physical_visits_avoided"] for c in mine) == \
                nights * len(CHECKS) - near
        assert any(c["physical_visits_avoided"] < 3 for c in counts)  # a visit near a check
    finally:
        stop_service(rt)
        rt.store.close()


def test_bathroom_too_long_is_attention_and_a_dead_bed_sensor_is_unknown(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Resident 0 is in the bathroom from 01:20 to 02:15; resident 1's bed sensor dies at
    01:20. Checks at 23:00, 02:00 and 05:00."""
    rt = start(tmp_path, mosquitto, 2, "gw-sup-incidents")
    try:
        run(mosquitto.url, rt, nights=1, seed=5, incidents=("bathroom_long", "sensor_dies"),
            incident_offset=timedelta(hours=4, minutes=20), staff_visit_every=0)
        first = last_complete_night(datetime.now(UTC), TZ).date()
        c23, c02, c05 = (ms(d) for d in check_instants(first, CHECKS, TZ))
        rows = journal(rt)
        got = {(r["resident_id"], r["due_ms"], r["attempt"]): r for r in rows}
        assert set(got) == {("r-2000", c23, 1), ("r-2000", c02, 1), ("r-2000", c05, 1),
                            ("r-2001", c23, 1), ("r-2001", c02, 1), ("r-2001", c02, 2),
                            ("r-2001", c05, 1), ("r-2001", c05, 2)}
        # In the bathroom since 01:20:40, last movement there 01:25: attention at 02:00.
        bath = got[("r-2000", c02, 1)]
        assert bath["outcome"] == "attention"
        assert any(r.startswith("in the bathroom for") for r in bath["reasons"])
        assert got[("r-2000", c23, 1)]["outcome"] == got[("r-2000", c05, 1)]["outcome"] == "ok"
        assert rt.alerts is not None
        failed = rt.alerts.get(bath["alert_id"])
        assert (failed["kind"], failed["resident_id"], failed["priority"]) == (
            "check_failed", "r-2000", 2)
        # The bed sensor is silent from 01:20: unknown at 02:00, re-check 15 min later,
        # still unknown, check_unknown; the same again at 05:00.
        for due in (c02, c05):
            one, two = got[("r-2001", due, 1)], got[("r-2001", due, 2)]
            assert (one["outcome"], one["final"], one["alert_id"]) == ("unknown", False, None)
            assert one["recheck_ms"] == one["evaluated_ms"] + 15 * 60_000
            assert two["evaluated_ms"] >= one["recheck_ms"]
            assert (two["outcome"], two["final"]) == ("unknown", True)
            assert "bed sensor bed-1 silent" in two["reasons"]
            assert rt.alerts.get(two["alert_id"])["kind"] == "check_unknown"
        assert got[("r-2001", c23, 1)]["outcome"] == "ok"
        kinds = sorted(a["kind"] for a in rt.alerts.list_alerts(limit=100)
                       if a["kind"].startswith("check"))
        assert kinds == ["check_failed", "check_unknown", "check_unknown"]
        assert rt.supervision is not None
        total = rt.supervision.summary(units=None, unit="unit-a", night=first)["total"]
        assert (total["digital_checks"], total["ok"], total["attention"], total["unknown"],
                total["rechecks"], total["late"]) == (6, 3, 1, 2, 2, 0)
        assert total["alerts"]["check_unknown"] == 2 and total["alerts"]["check_failed"] == 1
        # The same summary from the command line, and a clear error for a wrong unit.
        cli = [sys.executable, "-m", "gateway", "supervision", "summary", "--config",
               str(tmp_path / "config.yaml"), "--night", first.isoformat()]
        r = subprocess.run([*cli, "--unit", "unit-a", "--json"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        printed = json.loads(r.stdout)["total"]
        assert (printed["digital_checks"], printed["attention"], printed["unknown"]) == (6, 1, 2)
        table = subprocess.run([*cli, "--unit", "unit-a"], capture_output=True, text=True,
                               timeout=60)
        assert table.returncode == 0 and "r-2001" in table.stdout
        wrong = subprocess.run([*cli, "--unit", "unit-x"], capture_output=True, text=True,
                               timeout=60)
        assert wrong.returncode == 2
        assert wrong.stderr.strip() == "--unit: value 'unit-x': no such unit in the registry"
    finally:
        stop_service(rt)
        rt.store.close()


def test_a_check_time_passed_while_the_gateway_was_down_is_evaluated_late(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    reg = supervised_registry(1)
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db", reg=reg,
                       client_id="gw-sup-late")
    first = last_complete_night(datetime.now(UTC), TZ)
    c23, c02, c05 = (ms(d) for d in check_instants(first.date(), CHECKS, TZ))
    rt = load_runtime(cfg)
    events, _ = plan_nights(rt.registry, first, 1, seed=8, tz=TZ)
    before = [e for e in events if e.ts_ms < c02 - 2_000]
    # The bed's heartbeat just before 02:00 is the last thing the gateway sees.
    before.append(SimEvent(c02 - 2_000, "bed-0", "heartbeat", None))
    after = [e for e in events if e.ts_ms >= c02 - 2_000]
    start_service(rt)
    wait_for(lambda: rt.ingest is not None and rt.ingest.connected, what="connected")
    player = Player(mosquitto.url, rt.registry, client_id="sim-late")
    try:
        n1 = player.play(before, speed=0)
        wait_for(lambda: rt.ingest is not None and rt.ingest.committed_messages == n1,
                 what="first part stored")
        assert rt.detectors is not None
        rt.detectors.tick()
        assert [(r["due_ms"], r["late"]) for r in journal(rt)] == [(c23, False)]
        stop_service(rt)
        rt.store.close()
        # Down across 02:00: the devices go on reporting; the broker queues it all.
        time.sleep(3)
        n2 = player.play(after, speed=0) - n1
        rt = load_runtime(cfg)
        start_service(rt)
        wait_for(lambda: rt.ingest is not None and rt.ingest.committed_messages == n2,
                 timeout=60, what="queued messages stored")
        wait_for(lambda: len(journal(rt)) == 3, what="05:00 evaluated")
        rows = journal(rt)
        assert [(r["due_ms"], r["attempt"], r["late"], r["outcome"]) for r in rows] == [
            (c23, 1, False, "ok"), (c02, 1, True, "ok"), (c05, 1, False, "ok")]
    finally:
        player.close()
        stop_service(rt)
        rt.store.close()
