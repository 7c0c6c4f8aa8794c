"""Replay real smart-home event logs as zigbee2mqtt device messages.

Formats (data/smarthome/SOURCE.md):
- kasteren: van Kasteren et al. 2008, `start<TAB>end<TAB>id<TAB>val` per sensor firing, times
  like `25-Feb-2008 09:36:43`; a firing becomes "open" at start and "closed" at end.
- tapia: Munguia Tapia 2004, 5-line activity blocks (label,date,start,end / sensor ids /
  sensor names / activation times / deactivation times), times like `21:5:23`; an
  activation becomes "open", its deactivation "closed" (on the next day if it is earlier).
- casas: WSU CASAS, one event a line, `date time sensor state [activity...]`, tab- or
  space-separated, e.g. `2016-07-12 00:00:30.600670<TAB>BedroomABed<TAB>ON`. ON/OFF
  (motion) and OPEN/CLOSE (door) are replayed; other sensors (temperature, light level,
  battery) are skipped and counted.

A record that cannot be read (an impossible date such as 4/31/2003, a block whose lists do
not line up, a line of the wrong shape) is skipped with a counted reason and a line naming
it, never a crash (`ParseReport`).

Original times are local wall-clock times; replay shifts them by whole days so the last
event lands just before now, keeping time of day (night windows still mean something).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from firmware_stubs.home import SimEvent

__all__ = ["Firing", "ParseReport", "SimEvent", "auto_casas_mapping", "kasteren_mapping",
           "load_mapping",
           "parse_casas", "parse_kasteren", "parse_tapia", "registry_for", "tapia_mapping",
           "to_events", "with_checkins"]

KASTEREN_LINE = re.compile(
    r"^(\d{2}-[A-Za-z]{3}-\d{4} \d{2}:\d{2}:\d{2})\s+(\d{2}-[A-Za-z]{3}-\d{4} "
    r"\d{2}:\d{2}:\d{2})\s+(\d+)\s+(\d+)\s*$")
KASTEREN_DATE = re.compile(r"^\d{2}-[A-Za-z]{3}-\d{4} ")
TAPIA_LABEL = re.compile(r"^[^,]+,\d{1,2}/\d{1,2}/\d{4},\d{1,2}:\d{1,2}:\d{1,2},"
                         r"\d{1,2}:\d{1,2}:\d{1,2}\s*,?\s*$")
CASAS_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2})[ \t]+(\d{1,2}:\d{2}:\d{2}(?:\.\d+)?)[ \t]+"
                        r"(\S+)[ \t]+(\S+)(?:[ \t]+(.*))?$")
CASAS_STATES = {"ON": True, "OFF": False, "OPEN": True, "CLOSE": False, "CLOSED": False}
MAX_EXAMPLES = 20


@dataclass(frozen=True)
class Firing:
    """A sensor on from start to end (local naive times)."""

    sensor: str
    start: datetime
    end: datetime


@dataclass
class ParseReport:
    """What a parser read and what it skipped, by reason (with the first lines named)."""

    file: str
    read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def skip(self, reason: str, where: str) -> None:
        """Count a skipped record; keep its description among the first few."""
        self.skipped[reason] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{self.file}:{where}: skipped: {reason}")

    def lines(self) -> list[str]:
        """The report as text (one line per reason, then the named records)."""
        out = [f"{self.file}: {self.read} records read, {sum(self.skipped.values())} skipped"]
        out += [f"  {n} x {reason}" for reason, n in self.skipped.most_common()]
        return out + [f"  {e}" for e in self.examples]


def parse_kasteren(path: Path, report: ParseReport | None = None) -> list[Firing]:
    """Every sensor firing in kasterenSenseData.txt; header lines are not records, a dated
    line that does not parse is skipped and counted."""
    rep = report if report is not None else ParseReport(path.name)
    out = []
    for n, line in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
        m = KASTEREN_LINE.match(line)
        if not m:
            if KASTEREN_DATE.match(line):
                rep.skip("line does not have the form start end id value", f"line {n}")
            continue
        try:
            start = datetime.strptime(m.group(1), "%d-%b-%Y %H:%M:%S")
            end = datetime.strptime(m.group(2), "%d-%b-%Y %H:%M:%S")
        except ValueError as exc:
            rep.skip(f"impossible date ({exc})", f"line {n}")
            continue
        if end < start:
            rep.skip("ends before it starts", f"line {n}")
            continue
        out.append(Firing(m.group(3), start, end))
        rep.read += 1
    return out


def _hms(text: str) -> tuple[int, int, int]:
    h, m, s = (int(x) for x in text.strip().split(":"))
    if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 60):
        raise ValueError(f"time {text.strip()!r} out of range")
    return h, m, s


def parse_tapia(path: Path, report: ParseReport | None = None) -> list[Firing]:
    """Every sensor activation in activities_data.csv (one per id in each block).

    Blocks are found by their label line (`label,M/D/YYYY,H:M:S,H:M:S`), so one broken
    block is skipped without losing the blocks after it."""
    rep = report if report is not None else ParseReport(path.name)
    lines = [(n, ln.rstrip("\r\n")) for n, ln in
             enumerate(path.read_text(encoding="latin-1").splitlines(), 1) if ln.strip()]
    out = []
    i = 0
    while i < len(lines):
        n, label_line = lines[i]
        if not TAPIA_LABEL.match(label_line):
            rep.skip("not an activity label line (label,date,start,end)", f"line {n}")
            i += 1
            continue
        block = lines[i:i + 5]
        # The next label line ends the block early (a block with missing lines).
        for k in range(1, len(block)):
            if TAPIA_LABEL.match(block[k][1]):
                block = block[:k]
                break
        i += len(block)
        if len(block) < 5:
            rep.skip(f"activity block has {len(block)} of 5 lines", f"line {n}")
            continue
        label = label_line.split(",")
        ids = [x.strip() for x in block[1][1].split(",") if x.strip()]
        starts = [x for x in block[3][1].split(",") if x.strip()]
        ends = [x for x in block[4][1].split(",") if x.strip()]
        if not (len(ids) == len(starts) == len(ends)):
            rep.skip("sensor, activation and deactivation lists differ in length",
                     f"line {n} ({len(ids)} ids, {len(starts)} activations, "
                     f"{len(ends)} deactivations)")
            continue
        try:
            month, day, year = (int(x) for x in label[1].split("/"))
            base = datetime(year, month, day)
        except ValueError:
            rep.skip("impossible date", f"line {n} (date {label[1]})")
            continue
        for sid, a, b in zip(ids, starts, ends, strict=True):
            try:
                ha, ma, sa = _hms(a)
                hb, mb, sb = _hms(b)
            except ValueError as exc:
                rep.skip("impossible time", f"line {n} ({exc})")
                continue
            start = base.replace(hour=ha, minute=ma, second=sa)
            end = base.replace(hour=hb, minute=mb, second=sb)
            if end < start:
                end += timedelta(days=1)
            out.append(Firing(sid, start, end))
            rep.read += 1
    return out


def parse_casas(path: Path, report: ParseReport | None = None) -> list[Firing]:
    """Binary sensor events of a CASAS file as firings (ON..OFF, OPEN..CLOSE).

    An ON with no OFF before the next ON of the same sensor, or at the end of the file,
    lasts one second (CASAS motion sensors send OFF about a second after ON)."""
    rep = report if report is not None else ParseReport(path.name)
    out: list[Firing] = []
    on: dict[str, datetime] = {}
    for n, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(),
                            1):
        line = raw.strip()
        if not line:
            continue
        m = CASAS_LINE.match(line)
        if not m:
            rep.skip("line does not have the form date time sensor state", f"line {n}")
            continue
        try:
            when = datetime.fromisoformat(f"{m.group(1)} {m.group(2)}")
        except ValueError:
            rep.skip("impossible date or time", f"line {n} ({m.group(1)} {m.group(2)})")
            continue
        sensor, state = m.group(3), m.group(4).upper()
        if state not in CASAS_STATES:
            rep.skip("not a binary sensor state (ON/OFF, OPEN/CLOSE)",
                     f"line {n} ({sensor} {m.group(4)[:20]})")
            continue
        rep.read += 1
        if CASAS_STATES[state]:
            if sensor in on:  # ON again without OFF: close the first
                out.append(Firing(sensor, on[sensor], min(when, on[sensor]
                                                           + timedelta(seconds=1))))
            on[sensor] = when
        elif sensor in on:
            start = on.pop(sensor)
            out.append(Firing(sensor, start, max(start, when)))
        # an OFF without an ON says nothing new: the sensor was already off
    for sensor, start in on.items():
        out.append(Firing(sensor, start, start + timedelta(seconds=1)))
    out.sort(key=lambda f: (f.start, f.sensor))
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def tapia_mapping(sensors_csv: Path) -> dict[str, Any]:
    """Mapping for a Tapia flat built from its sensors.csv (id, room, object).

    A sensor on a door is the exterior door when the room says the door leads out (foyer,
    entrance, hall, porch, front); any other door is inside. A mapping file can say
    otherwise for any sensor (`exterior: true`)."""
    sensors: dict[str, dict[str, Any]] = {}
    for line in sensors_csv.read_text(encoding="latin-1").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3 and parts[0].isdigit():
            room, obj = parts[1].lower(), parts[2].lower()
            outer = any(w in room for w in ("foyer", "entrance", "entry", "hall", "porch",
                                            "front"))
            sensors[parts[0]] = {"device": f"{parts[0]}-{_slug(obj)}"[:60],
                                 "room": _slug(room) or None,
                                 "exterior": obj.startswith("door") and outer}
    return {"resident": "r-tapia", "unit": "replay", "source_prefix": "zigbee2mqtt/tapia",
            "sensors": sensors}


KASTEREN_SENSOR = re.compile(r"^\s*\[\s*(\d+)\]\s+'([^']+)'")
KASTEREN_ROOMS = (("toilet", "toilet"), ("bathroom", "bathroom"), ("shower", "bathroom"),
                  ("bedroom", "bedroom"), ("front", "entrance"), ("hall", "hall"),
                  ("washing", "bathroom"), ("living", "living-room"), ("couch", "living-room"),
                  ("bed", "bedroom"))


def kasteren_mapping(sense_data: Path, name: str = "kasteren") -> dict[str, Any]:
    """A mapping made from the sensor table in a van Kasteren file's header: the sensor
    named Frontdoor (or "front door") is the exterior door, rooms come from the names
    (kitchen things otherwise). Review it and write a mapping file for a real home."""
    sensors: dict[str, dict[str, Any]] = {}
    for line in sense_data.read_text(encoding="latin-1").splitlines():
        m = KASTEREN_SENSOR.match(line)
        if not m:
            continue
        label = m.group(2).strip()
        low = label.lower()
        room = next((r for word, r in KASTEREN_ROOMS if word in low), "kitchen")
        entry: dict[str, Any] = {"device": _slug(label)[:60] or f"sensor-{m.group(1)}",
                                 "room": room}
        if "frontdoor" in low.replace(" ", "") or "maindoor" in low.replace(" ", ""):
            entry["exterior"] = True
        sensors[m.group(1)] = entry
    return {"resident": f"r-{name}", "unit": "replay",
            "source_prefix": f"zigbee2mqtt/{name}", "sensors": sensors}


CASAS_ROOMS = (("bathroom", "bathroom"), ("toilet", "bathroom"), ("bedroom", "bedroom"),
               ("kitchen", "kitchen"), ("dining", "dining-room"), ("living", "living-room"),
               ("office", "office"), ("hall", "hallway"), ("entry", "entrance"),
               ("foyer", "entrance"), ("lounge", "living-room"), ("study", "office"))


def auto_casas_mapping(firings: Iterable[Firing]) -> dict[str, Any]:
    """A mapping for a CASAS home made from its sensor names (`BathroomAToilet` ->
    bathroom). Names with no known room word (CASAS testbeds' `M001`) get no room; a
    sensor name with "MainEntry" or "FrontDoor" is the exterior one, one ending in "Bed" in
    a bedroom is the bed sensor. Review it and write a mapping file for a real home."""
    sensors: dict[str, dict[str, Any]] = {}
    for name in sorted({f.sensor for f in firings}):
        low = name.lower()
        room = next((r for word, r in CASAS_ROOMS if word in low), None)
        entry: dict[str, Any] = {"device": _slug(name)[:60] or "sensor", "room": room}
        if "mainentry" in low or "frontdoor" in low:
            entry["exterior"] = True
        if room == "bedroom" and low.endswith("bed"):
            entry["bed"] = True
        sensors[name] = entry
    return {"resident": "r-casas", "unit": "replay", "source_prefix": "zigbee2mqtt/casas",
            "kind": "motion", "sensors": sensors}


def load_mapping(path: Path) -> dict[str, Any]:
    """A mapping YAML (sensor id -> device, room, exterior, bed)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["sensors"] = {str(k): v for k, v in data["sensors"].items()}
    return dict(data)


def _kind(mapping: dict[str, Any], sensor: dict[str, Any]) -> str:
    return str(sensor.get("kind", mapping.get("kind", "contact")))


def registry_for(mapping: dict[str, Any]) -> dict[str, Any]:
    """A registry with one resident whose devices are the mapped sensors."""
    profiles = {"contact": "zigbee2mqtt.contact", "motion": "zigbee2mqtt.occupancy"}
    devices = []
    for s in mapping["sensors"].values():
        dev = {"id": s["device"], "profile": profiles[_kind(mapping, s)],
               "source": f"{mapping['source_prefix']}/{s['device']}", "room": s.get("room"),
               "exterior": bool(s.get("exterior", False))}
        if s.get("bed"):
            dev["bed"] = True
        devices.append(dev)
    return {"units": [{"id": mapping["unit"], "name": "Replayed homes"}], "staff": [],
            "residents": [{"id": mapping["resident"], "name": "Replayed dataset",
                           "unit": mapping["unit"], "consent": ["contact", "motion"],
                           "devices": devices}]}


def to_events(firings: list[Firing], mapping: dict[str, Any], tz: ZoneInfo,
              now: datetime) -> tuple[list[SimEvent], int]:
    """Device events shifted by whole days to end before now; returns (events, days shifted).

    A contact sensor's firing is "open" then "closed", a motion sensor's occupancy true then
    false. A firing whose sensor is not in the mapping raises KeyError naming it.
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
        kind = _kind(mapping, sensor)
        on, off = ("open", "closed") if kind == "contact" else (True, False)
        for when, value in ((f.start, on), (f.end, off)):
            local = (when + timedelta(days=shift)).replace(tzinfo=tz)
            events.append(SimEvent(int(local.timestamp() * 1000), dev, kind, value))
    events.sort()
    return events, shift


def with_checkins(events: list[SimEvent], devices: Iterable[str],
                  every_minutes: float = 60) -> list[SimEvent]:
    """The events plus the periodic check-in every real zigbee device sends (about hourly:
    battery and link quality with its cached state), from the first event to the last.

    The logs record only sensor firings; without check-ins a cupboard left alone for a
    day would look like a dead sensor (`device_offline`)."""
    if not events:
        return []
    lo, hi = events[0].ts_ms, events[-1].ts_ms
    step = int(every_minutes * 60_000)
    extra = []
    for k, dev in enumerate(sorted(devices)):
        t = lo + (k * 7919) % step  # spread over the hour, as real devices are
        while t <= hi:
            extra.append(SimEvent(t, dev, "checkin", None))
            t += step
    return sorted(events + extra)


FORMATS = ("kasteren", "tapia", "casas")


def load_home(fmt: str, file: Path, mapping: Path | None = None
              ) -> tuple[list[Firing], dict[str, Any], ParseReport]:
    """A log file read in a format, with its mapping: the one given; else a mapping file
    shipped beside the data (`<folder>_mapping.yaml`, or kasteren_mapping.yaml for van
    Kasteren house A); else one made from the file (sensors.csv for Tapia, the header's
    sensor table for van Kasteren, the sensor names for CASAS). ValueError for an unknown
    format; KeyError naming a sensor the mapping lacks."""
    report = ParseReport(file.name)
    if fmt == "kasteren":
        firings = parse_kasteren(file, report)
    elif fmt == "tapia":
        firings = parse_tapia(file, report)
    elif fmt == "casas":
        firings = parse_casas(file, report)
    else:
        raise ValueError(f"format {fmt!r}: must be one of {', '.join(FORMATS)}")
    beside = file.parent.parent / f"{file.parent.name}_mapping.yaml"
    if mapping is not None:
        mp = load_mapping(mapping)
    elif beside.is_file():
        mp = load_mapping(beside)
    elif fmt == "kasteren":
        shipped = file.parent.parent / "kasteren_mapping.yaml"
        mp = load_mapping(shipped) if file.parent.name == "vankasteren_2008_houseA" and \
            shipped.is_file() else kasteren_mapping(file, _slug(file.parent.name)[:30])
    elif fmt == "tapia":
        mp = tapia_mapping(file.parent / "sensors.csv")
        mp["resident"] = f"r-{_slug(file.parent.name)[:40]}"
        mp["source_prefix"] = f"zigbee2mqtt/{_slug(file.parent.name)[:40]}"
    else:
        mp = auto_casas_mapping(firings)
        mp["resident"] = f"r-{_slug(file.parent.name)[:40]}"
        mp["source_prefix"] = f"zigbee2mqtt/{_slug(file.parent.name)[:40]}"
    missing = sorted({f.sensor for f in firings} - set(mp["sensors"]))
    if missing:
        raise KeyError(f"sensor id {missing[0]} is not in the mapping"
                       + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return firings, mp, report
