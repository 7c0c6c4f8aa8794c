"""Real smart-home logs replayed through broker and gateway; stored counts match the files."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.config.loader import load_registry
from gateway.runtime import build_ingest, load_runtime
from gateway.storage.schema import observations
from tests.homes import write_config
from tests.support import ROOT, Mosquitto, wait_for

pytestmark = pytest.mark.broker
DATA = ROOT / "data" / "smarthome"
KASTEREN = DATA / "vankasteren_2008_houseA" / "kasterenSenseData.txt"
TAPIA = DATA / "mit_tapia_2004_subject1" / "activities_data.csv"


def firings_in_file(fmt: str) -> int:
    """Counted straight from the file, independently of the replay parser."""
    if fmt == "kasteren":
        return sum(1 for line in KASTEREN.read_text(encoding="latin-1").splitlines()
                   if re.match(r"^\d\d-\w\w\w-\d{4} ", line))
    lines = [ln for ln in TAPIA.read_text(encoding="latin-1").splitlines() if ln.strip()]
    return sum(len([x for x in lines[i].split(",") if x.strip()])
               for i in range(1, len(lines), 5))


@pytest.mark.parametrize(("fmt", "file", "resident"), [
    ("kasteren", KASTEREN, "r-kasteren"), ("tapia", TAPIA, "r-tapia")])
def test_replay_through_gateway(mosquitto: Mosquitto, tmp_path: Path, fmt: str, file: Path,
                                resident: str) -> None:
    reg_path = tmp_path / "replay-registry.yaml"
    r = subprocess.run([sys.executable, "-m", "gateway", "replay", "--format", fmt, str(file),
                        "--write-registry", str(reg_path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    cfg = write_config(tmp_path, mosquitto.url, f"sqlite:///{tmp_path}/t.db",
                       reg=load_registry(reg_path).model_dump(mode="json"),
                       client_id=f"gw-replay-{fmt}", site={"max_clock_behind_days": 60})
    rt = load_runtime(cfg)
    ingest = build_ingest(rt)
    ingest.start()
    try:
        wait_for(lambda: ingest.connected, what="connected")
        r = subprocess.run([sys.executable, "-m", "gateway", "replay", "--format", fmt,
                            str(file), "--broker", mosquitto.url, "--speed", "0"],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        expected = 2 * firings_in_file(fmt)  # each firing: open, then closed
        wait_for(lambda: rt.store.count(observations) >= expected, 120,
                 what=f"{expected} observations")
        assert rt.store.count(observations, kind="contact") == expected
        assert rt.store.count(observations, clock_override=True) == 0
        assert rt.metrics.dead_letters._value.get() == 0
        if fmt == "kasteren":
            first = rt.store.observations(resident, limit=1)[0]
            local = datetime.fromtimestamp(first["ts_ms"] / 1000, ZoneInfo("Europe/Stockholm"))
            # First line of the file: 25-Feb-2008 00:20:14, sensor 24 (Hall-Bedroom door).
            assert local.strftime("%H:%M:%S") == "00:20:14"
            assert first["device_id"] == "hall-bedroom-door"
            assert first["value"] == "open"
    finally:
        ingest.stop()
        rt.store.close()
