"""Scripted incidents through firmware stubs, broker, gateway and detectors: recall."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_stubs.scenarios import run, scenario_registry, score
from firmware_stubs.situations import first_night, run_situations, situation_registry
from gateway.runtime import load_runtime, start_service, stop_service
from tests.homes import SITE, write_config
from tests.support import Mosquitto, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_scripted_incidents_raise_their_alerts(mosquitto: Mosquitto, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db",
                       reg=scenario_registry(10, SITE), client_id="gw-scenario")
    rt = load_runtime(cfg)
    start_service(rt)
    try:
        assert rt.ingest is not None and rt.alerts is not None
        wait_for(lambda: rt.ingest is not None and rt.ingest.connected, what="connected")
        truths, sent = run(mosquitto.url, rt, nights=2, seed=3)
        assert rt.ingest.committed_messages == sent
        report = score(truths, rt.alerts.list_alerts(limit=10_000), sent)
        print("\n".join(report.lines()))
        assert report.resident_nights == 20
        assert set(report.incidents) == {"fall", "sos", "bed_exit_no_return", "wandering",
                                         "sensor_dies"}
        for kind in report.incidents:
            assert report.recall(kind) == 1.0, kind
        assert report.false_alerts == []
        assert report.staff_visits_planned > 0
    finally:
        stop_service(rt)
        rt.store.close()


def test_everyday_situations_raise_what_they_must_and_nothing_else(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Absences (daytime, multi-day, planned), an evening out, a shower, a stray pulse,
    getting up for the day, a bed mat's repeated reports, keypad visits in two lock formats
    and graded bed exits, through firmware stubs, broker, gateway and detectors."""
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db",
                       reg=situation_registry(SITE, first := first_night()),
                       client_id="gw-situations")
    rt = load_runtime(cfg)
    start_service(rt)
    try:
        wait_for(lambda: rt.ingest is not None and rt.ingest.connected, what="connected")
        results = run_situations(mosquitto.url, rt, first)
        lines = [f"{r.situation}: missing {r.missing} unexpected {r.unexpected} "
                 f"checks {r.checks} visits {r.visits}" for r in results]
        assert all(r.ok for r in results), "\n".join(lines)
        by = {r.situation: r for r in results}
        # The keypad visits were recognised in both formats (no door_open_night, above).
        assert by["keypad_visit_action_prefix"].visits == 3
        assert by["keypad_visit_source_name"].visits == 3
        # Checks during the planned absence are journalled as away; none failed to decide.
        assert by["planned_absence"].checks.get("away", 0) >= 2
        assert all("unknown" not in r.checks for r in results), "\n".join(lines)
    finally:
        stop_service(rt)
        rt.store.close()
