"""Replay real smart-home event logs as zigbee2mqtt contact messages.

Formats (data/smarthome/SOURCE.md):
- kasteren: van Kasteren et al. 2008, `start<TAB>end<TAB>id<TAB>val` per sensor firing, times
  like `25-Feb-2008 09:36:43`; a firing becomes "open" at start and "closed" at end.
- tapia: Munguia Tapia 2004, 5-line activity blocks (label,date,start,end / sensor ids /
  sensor names / activation times / deactivation times), times like `21:5:23`; an
  activation becomes "open", its deactivation "closed" (on the next day if it is earlier).

Original times are local wall-clock times; replay shifts them by whole days so the last
event lands just before now, keeping time of day (night windows still mean something).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from firmware_stubs.home import SimEvent

__all__ = ["Firing", "SimEvent", "load_mapping", "parse_kasteren", "parse_tapia",
           "registry_for", "tapia_mapping", "to_events"]

KASTEREN_LINE = re.compile(
    r"^(\d{2}-[A-Za-z]{3}-\d{4} \d{2}:\d{2}:\d{2})\s+(\d{2}-[A-Za-z]{3}-\d{4} "
    r"\d{2}:\d{2}:\d{2})\s+(\d+)\s+(\d+)\s*$")


@dataclass(frozen=True)
class Firing:
    """A sensor on from start to end (local naive times)."""

    sensor: str
    start: datetime
    end: datetime


def parse_kasteren(path: Path) -> list[Firing]:
    """Every sensor firing in kasterenSenseData.txt."""
    out = []
    for line in path.read_text(encoding="latin-1").splitlines():
        m = KASTEREN_LINE.match(line)
        if m:
            start = datetime.strptime(m.group(1), "%d-%b-%Y %H:%M:%S")
            end = datetime.strptime(m.group(2), "%d-%b-%Y %H:%M:%S")
            out.append(Firing(m.group(3), start, end))
    return out


def _hms(text: str) -> tuple[int, int, int]:
    h, m, s = (int(x) for x in text.strip().split(":"))
    return h, m, s


def parse_tapia(path: Path) -> list[Firing]:
    """Every sensor activation in activities_data.csv (one per id in each block)."""
    lines = [ln.rstrip("\r\n") for ln in path.read_text(encoding="latin-1").splitlines()]
    lines = [ln for ln in lines if ln.strip()]
    out = []
    for i in range(0, len(lines) - 4, 5):
        label = lines[i].split(",")
        month, day, year = (int(x) for x in label[1].split("/"))
        ids = [x.strip() for x in lines[i + 1].split(",") if x.strip()]
        starts = [x for x in lines[i + 3].split(",") if x.strip()]
        ends = [x for x in lines[i + 4].split(",") if x.strip()]
        if not (len(ids) == len(starts) == len(ends)):
            raise ValueError(f"{path}: block at line {i + 1}: {len(ids)} ids, {len(starts)} "
                             f"activations, {len(ends)} deactivations")
        base = datetime(year, month, day)
        for sid, a, b in zip(ids, starts, ends, strict=True):
            start = base.replace(hour=_hms(a)[0], minute=_hms(a)[1], second=_hms(a)[2])
            end = base.replace(hour=_hms(b)[0], minute=_hms(b)[1], second=_hms(b)[2])
            if end < start:
                end += timedelta(days=1)
            out.append(Firing(sid, start, end))
    return out


def tapia_mapping(sensors_csv: Path) -> dict[str, Any]:
    """Mapping for the Tapia flat built from its sensors.csv (id, room, object)."""
    sensors: dict[str, dict[str, Any]] = {}
    for line in sensors_csv.read_text(encoding="latin-1").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3 and parts[0].isdigit():
            obj = re.sub(r"[^a-z0-9]+", "-", parts[2].lower()).strip("-")
            sensors[parts[0]] = {"device": f"{parts[0]}-{obj}"[:60],
                                 "room": parts[1].lower().replace(" ", "-"),
                                 "exterior": parts[2].lower().startswith("door")
                                 and parts[1].lower() == "foyer"}
    return {"resident": "r-tapia", "unit": "replay", "source_prefix": "zigbee2mqtt/tapia",
            "sensors": sensors}


def load_mapping(path: Path) -> dict[str, Any]:
    """A mapping YAML (sensor id -> device, room, exterior)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["sensors"] = {str(k): v for k, v in data["sensors"].items()}
    return dict(data)


def registry_for(mapping: dict[str, Any]) -> dict[str, Any]:
    """A registry with one resident whose devices are the mapped sensors."""
    devices = [{"id": s["device"], "profile": "zigbee2mqtt.contact",
                "source": f"{mapping['source_prefix']}/{s['device']}", "room": s["room"],
                "exterior": bool(s.get("exterior", False))}
               for s in mapping["sensors"].values()]
    return {"units": [{"id": mapping["unit"], "name": "Replayed homes"}], "staff": [],
            "residents": [{"id": mapping["resident"], "name": "Replayed dataset",
                           "unit": mapping["unit"], "consent": ["contact", "motion"],
                           "devices": devices}]}


def to_events(firings: list[Firing], mapping: dict[str, Any], tz: ZoneInfo,
              now: datetime) -> tuple[list[SimEvent], int]:
    """Contact events shifted by whole days to end before now; returns (events, days shifted).

    A firing whose sensor is not in the mapping raises KeyError naming it.
    """
    if not firings:
        return [], 0
    last = max(f.end for f in firings)
    local_now = now.astimezone(tz).replace(tzinfo=None)
    shift = (local_now - last).days
    events = []
    for f in firings:
        sensor = mapping["sensors"].get(f.sensor)
        if sensor is None:
            raise KeyError(f"sensor id {f.sensor} is not in the mapping file")
        dev = sensor["device"]
        for when, state in ((f.start, "open"), (f.end, "closed")):
            local = (when + timedelta(days=shift)).replace(tzinfo=tz)
            events.append(SimEvent(int(local.timestamp() * 1000), dev, "contact", state))
    events.sort()
    return events, shift
