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


# --- reading real logs that have broken records (issue 21) --------------------------------------

TAPIA_BROKEN = """Toileting,4/30/2003,17:30:36,17:46:41
100,68
Toilet Flush,Sink faucet - hot
17:39:37,17:39:46
18:10:57,17:39:52
Toileting,4/31/2003,18:4:43,18:18:2
68
Sink faucet - hot
18:5:1
18:6:2
Grooming,5/1/2003,8:1:2,8:9:10
57,58
Medicine cabinet,Medicine cabinet
8:2:0
8:3:0,8:4:0
garbage line without structure
Bathing,5/1/2003,20:41:35,21:32:50
93
Shower faucet
20:51:52
21:5:20
"""


def test_tapia_broken_records_are_skipped_counted_and_named(tmp_path: Path) -> None:
    f = tmp_path / "activities_data.csv"
    f.write_text(TAPIA_BROKEN)
    rep = replay.ParseReport(f.name)
    firings = replay.parse_tapia(f, rep)
    # Kept: the two firings of 4/30 and the shower of 5/1; not the impossible 4/31, not the
    # block whose lists differ in length.
    assert [(x.sensor, x.start.isoformat()) for x in firings] == [
        ("100", "2003-04-30T17:39:37"), ("68", "2003-04-30T17:39:46"),
        ("93", "2003-05-01T20:51:52")]
    assert rep.read == 3
    assert rep.skipped == {
        "impossible date": 1,
        "sensor, activation and deactivation lists differ in length": 1,
        "not an activity label line (label,date,start,end)": 1}
    assert any("line 6" in e and "4/31/2003" in e for e in rep.examples)


def test_casas_text_formats(tmp_path: Path) -> None:
    f = tmp_path / "home.txt"
    f.write_text(
        "2016-07-12 00:00:30.600670\tBedroomABed\tON\t\n"       # CIL: tab, trailing tab
        "2016-07-12 00:00:31.700786\tBedroomABed\tOFF\t\n"
        "2009-02-02 07:15:21.1234 M001 ON Sleep begin\n"      # older: spaces, activity
        "2009-02-02 07:15:22 M001 OFF\n"
        "2009-02-02 07:16:00 D001 OPEN\n"
        "2009-02-02 07:16:05 D001 CLOSE\n"
        "2009-02-02 07:17:00 T001 21.5\n"                     # temperature: not binary
        "2009-02-31 07:17:00 M002 ON\n"                       # impossible date
        "not a record\n")
    rep = replay.ParseReport(f.name)
    got = replay.parse_casas(f, rep)
    assert [(x.sensor, x.start.isoformat(), (x.end - x.start).total_seconds()) for x in got] == [
        ("M001", "2009-02-02T07:15:21.123400", 0.8766),
        ("D001", "2009-02-02T07:16:00", 5.0),
        ("BedroomABed", "2016-07-12T00:00:30.600670", 1.100116)]
    assert rep.skipped == {"not a binary sensor state (ON/OFF, OPEN/CLOSE)": 1,
                           "impossible date or time": 1,
                           "line does not have the form date time sensor state": 1}
    mapping = replay.auto_casas_mapping(got)
    assert mapping["sensors"]["BedroomABed"] == {"device": "bedroomabed", "room": "bedroom",
                                                 "bed": True}


def test_replay_cli_reports_skips_and_reads_casas(tmp_path: Path) -> None:
    f = tmp_path / "mit_tapia_2004_subject9" / "activities_data.csv"
    f.parent.mkdir()
    f.write_text(TAPIA_BROKEN)
    (f.parent / "sensors.csv").write_text(
        "100,Bathroom,Toilet Flush\n68,Bathroom,Sink faucet - hot\n57,Bathroom,Medicine "
        "cabinet\n58,Bathroom,Medicine cabinet\n93,Bathroom,Shower faucet\n140,Foyer,Door\n")
    reg = tmp_path / "reg.yaml"
    r = subprocess.run([sys.executable, "-m", "gateway", "replay", "--format", "tapia", str(f),
                        "--write-registry", str(reg)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "3 records read, 3 skipped" in r.stderr
    assert "4/31/2003" in r.stderr
    devices = yaml.safe_load(reg.read_text())["residents"][0]["devices"]
    assert [d["id"] for d in devices if d["exterior"]] == ["140-door"]
    r = subprocess.run([sys.executable, "-m", "gateway", "replay", "--format", "casas",
                        str(DATA / "casas_cil_tm000" / "multiday_absence.txt"),
                        "--write-registry", str(reg)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    devices = yaml.safe_load(reg.read_text())["residents"][0]["devices"]
    # The shipped mapping beside the data: the bed and the front-door motion sensors.
    assert [d["id"] for d in devices if d.get("bed")] == ["bedroom-a-bed"]
    assert [d["id"] for d in devices if d["exterior"]] == ["main-entryway"]
    r = subprocess.run([sys.executable, "-m", "gateway", "replay", "--format", "csv", str(f)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "must be one of kasteren, tapia, casas" in r.stderr
