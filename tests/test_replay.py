"""Real smart-home logs replayed through broker and gateway; stored counts match the files."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import func, select

from firmware_stubs import replay
from gateway.config.loader import load_registry
from gateway.runtime import build_ingest, load_runtime
from gateway.storage.schema import observations
from tests.homes import write_config
from tests.support import ROOT, Mosquitto, wait_for

pytestmark = pytest.mark.broker
DATA = ROOT / "data" / "smarthome"
KASTEREN = DATA / "vankasteren_2008_houseA" / "kasterenSenseData.txt"
TAPIA = DATA / "mit_tapia_2004_subject1" / "activities_data.csv"


def kasteren_activity_per_day() -> list[int | None]:
    """Firings of the indoor (not exterior) sensors per day, straight from the file and the
    mapping, from the first day to the last. A day is unknown (None) when no sensor reported
    anything from its midnight to 07:00 the next morning (the end of its night)."""
    mapping = yaml.safe_load((DATA / "kasteren_mapping.yaml").read_text())
    exterior = {str(k) for k, v in mapping["sensors"].items() if v.get("exterior")}
    days: Counter[date] = Counter()
    readings: list[datetime] = []
    fmt = "%d-%b-%Y %H:%M:%S"
    for line in KASTEREN.read_text(encoding="latin-1").splitlines():
        m = re.match(r"^(\S+ \S+)\s+(\S+ \S+)\s+(\d+)\s", line)
        if not m or not re.match(r"\d\d-\w\w\w-\d{4}", m.group(1)):
            continue
        start, end = datetime.strptime(m.group(1), fmt), datetime.strptime(m.group(2), fmt)
        readings += [start, end]
        if m.group(3) not in exterior:
            days[start.date()] += 1
    first, last = min(readings).date(), max(readings).date()
    out: list[int | None] = []
    for i in range((last - first).days + 1):
        d = first + timedelta(days=i)
        lo, hi = datetime.combine(d, time(0)), datetime.combine(d + timedelta(days=1), time(7))
        out.append(days[d] if any(lo <= r < hi for r in readings) else None)
    return out


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
        # The fall-risk features run on the real homes: one day per calendar day of the
        # file, activity = the indoor sensors' firings that day (docs/fall-risk.md).
        assert rt.risk is not None
        with rt.store.engine.connect() as conn:
            lo, hi = conn.execute(select(func.min(observations.c.ts_ms),
                                         func.max(observations.c.ts_ms))).one()
        tz = ZoneInfo(rt.config.site.timezone)
        first_day = datetime.fromtimestamp(lo / 1000, tz).date()
        last_day = datetime.fromtimestamp(hi / 1000, tz).date()
        res = rt.registry.residents[0]
        feats = rt.risk.compute_features(res, first_day, last_day)
        assert all(f.walking_speed is None for f in feats)  # no sensor distances known
        if fmt == "kasteren":
            # A day without a single reading is unknown (None), not a day of no activity.
            assert [f.activity for f in feats] == kasteren_activity_per_day()
            # Contact sensors only: the door alone cannot tell time out of home.
            assert {f.time_out for f in feats} == {None}
        else:
            # Openings of the indoor objects, counted from the file's firings as replayed
            # ("open" after "closed"; a firing while one is still on is no new opening).
            mapping = replay.tapia_mapping(DATA / "mit_tapia_2004_subject1" / "sensors.csv")
            events, _ = replay.to_events(replay.parse_tapia(TAPIA), mapping, tz,
                                         datetime.now(UTC))
            indoor = {d.id for d in res.devices if not d.exterior and d.room}
            opened, state = 0, {}
            for e in sorted(events):
                if e.device_id in indoor:
                    opened += e.value == "open" and state.get(e.device_id) != "open"
                    state[e.device_id] = e.value
            assert sum(f.activity or 0 for f in feats) == opened
    finally:
        ingest.stop()
        rt.store.close()
