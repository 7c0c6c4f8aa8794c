"""Training datasets: daily features and falls, from CSV files (the documented schema an
organisation can fill from its own data) or from the simulated cohort (the direct path).

Daily features CSV (`tillsyn risk features` writes it): one row per resident and day,
columns `resident_id,date` then DAY_COLUMNS; an empty cell is "not measured".
Falls CSV: `resident_id,date`, one row per recorded fall.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from detectors.features import DAY_FIELDS, DayFeatures, HomeSpec, daily
from detectors.risk import BASELINE_DAYS, HORIZON_DAYS, INPUTS, RECENT_DAYS, inputs
from gateway.errors import ConfigError

DAY_COLUMNS = DAY_FIELDS
INT_COLUMNS = {"observations", "transits", "activity", "room_transitions", "night_bed_exits",
               "night_bathroom_visits"}


@dataclass
class Dataset:
    """Daily features per resident, and the days each resident fell."""

    days: dict[str, list[DayFeatures]] = field(default_factory=dict)
    falls: dict[str, set[date]] = field(default_factory=lambda: defaultdict(set))
    source: str = ""

    def features_csv(self) -> str:
        """The daily features as CSV text."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(("resident_id", "date") + DAY_COLUMNS)
        for rid in sorted(self.days):
            for f in self.days[rid]:
                w.writerow([rid, f.day.isoformat()] + ["" if (v := getattr(f, c)) is None
                                                       else v for c in DAY_COLUMNS])
        return buf.getvalue()

    def falls_csv(self) -> str:
        """The falls as CSV text."""
        rows = ["resident_id,date"] + [f"{rid},{d.isoformat()}" for rid in sorted(self.falls)
                                       for d in sorted(self.falls[rid])]
        return "\n".join(rows) + "\n"

    def sha256(self) -> str:
        """Hash of the data as CSV (what the model was trained on)."""
        h = hashlib.sha256(self.features_csv().encode())
        h.update(self.falls_csv().encode())
        return h.hexdigest()


@dataclass
class Samples:
    """Model inputs and labels, one row per scorable resident-day with a complete horizon."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    residents: list[str]
    days: list[date]

    @property
    def falls(self) -> int:
        """Positive rows."""
        return int(self.y.sum())


def samples(ds: Dataset, progress: Callable[[int], None] | None = None,
            baseline_days: int = BASELINE_DAYS) -> Samples:
    """Every resident-day with a baseline and a full 21-day horizon after it."""
    xs: list[list[float]] = []
    ys: list[int] = []
    groups: list[int] = []
    rids: list[str] = []
    days: list[date] = []
    for g, rid in enumerate(sorted(ds.days)):
        history = ds.days[rid]
        if not history:
            continue
        falls = sorted(ds.falls.get(rid, set()))
        last = history[-1].day
        by_day = {f.day: f for f in history}
        for f in history[RECENT_DAYS + baseline_days - 1:]:
            if f.day + timedelta(days=HORIZON_DAYS) > last:
                break
            inp = inputs(by_day, f.day, baseline_days)
            if not inp.scorable:
                continue
            xs.append(inp.vector())
            ys.append(int(any(f.day < d <= f.day + timedelta(days=HORIZON_DAYS)
                              for d in falls)))
            groups.append(g)
            rids.append(rid)
            days.append(f.day)
        if progress is not None:
            progress(1)
    x = np.array(xs, dtype=float).reshape(-1, len(INPUTS))
    return Samples(x, np.array(ys, dtype=int), np.array(groups, dtype=int), rids, days)


# --- CSV ---------------------------------------------------------------------------------


def _rows(path: Path, want: tuple[str, ...]) -> Iterable[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in want if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError([f"{path}: header: missing column(s) {', '.join(missing)}"])
    yield from enumerate(reader, start=2)


def read_csv(features: Path, falls: Path | None) -> Dataset:
    """A dataset from the two CSV files; every bad cell is reported with line and column."""
    ds = Dataset(source=f"csv:{features.name}" + (f"+{falls.name}" if falls else ""))
    problems: list[str] = []
    by_res: dict[str, dict[date, DayFeatures]] = defaultdict(dict)
    for line, row in _rows(features, ("resident_id", "date") + DAY_COLUMNS):
        rid = row["resident_id"].strip()
        try:
            day = date.fromisoformat(row["date"].strip())
        except ValueError:
            problems.append(f"{features}:{line}: date: value {row['date']!r}: not YYYY-MM-DD")
            continue
        f = DayFeatures(day)
        for col in DAY_COLUMNS:
            cell = (row.get(col) or "").strip()
            if cell == "":
                continue
            try:
                value = float(cell)
                if value < 0 or value != value:
                    raise ValueError
            except ValueError:
                problems.append(f"{features}:{line}: {col}: value {cell!r}: not a number >= 0")
                continue
            setattr(f, col, int(value) if col in INT_COLUMNS else value)
        if not rid:
            problems.append(f"{features}:{line}: resident_id: empty")
        elif day in by_res[rid]:
            problems.append(f"{features}:{line}: date: value {day}: repeated for {rid}")
        else:
            by_res[rid][day] = f
    if falls is not None:
        for line, row in _rows(falls, ("resident_id", "date")):
            try:
                ds.falls[row["resident_id"].strip()].add(date.fromisoformat(row["date"].strip()))
            except ValueError:
                problems.append(f"{falls}:{line}: date: value {row['date']!r}: not YYYY-MM-DD")
    if problems:
        raise ConfigError(problems[:50])
    for rid, found in by_res.items():
        first, last = min(found), max(found)
        # Fill gaps so the baseline windows count calendar days, not rows.
        ds.days[rid] = [found.get(first + timedelta(days=i), DayFeatures(first + timedelta(i)))
                        for i in range((last - first).days + 1)]
    return ds


# --- the simulated cohort ----------------------------------------------------------------


def simulated(n: int, days: int, seed: int, first: date | None = None,
              tz: ZoneInfo | None = None, progress: Callable[[int], None] | None = None,
              courses: list[str] | None = None, workers: int = 1, **cohort: Any
              ) -> tuple[Dataset, list[object]]:
    """The cohort simulator's residents straight through the feature extractor (no broker):
    daily features and true falls. Returns the dataset and the simulated people. Each
    resident is simulated on its own, so `workers` processes give the same result.
    `cohort`: variability, decline_cm_s, decline_days, onset (firmware_stubs.cohort)."""
    from firmware_stubs.cohort import make_cohort

    tz = tz or ZoneInfo("Europe/Stockholm")
    first = first or date(2026, 1, 1)
    people = make_cohort(n, seed, days, courses=courses, **cohort)
    extra = "".join(f" {k}={v}" for k, v in sorted(cohort.items()))
    ds = Dataset(source=f"simulated cohort n={n} days={days} seed={seed}{extra}")
    jobs = [(p, first, days, tz, seed) for p in people]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            results: Iterable[tuple[list[DayFeatures], set[date]]] = \
                pool.map(_simulate_one, jobs, chunksize=4)
            _collect(ds, people, results, progress)
    else:
        _collect(ds, people, map(_simulate_one, jobs), progress)
    return ds, list(people)


def _simulate_one(job: tuple[object, date, int, ZoneInfo, int]
                  ) -> tuple[list[DayFeatures], set[date]]:
    from firmware_stubs.cohort import Person, simulate

    p, first, days, tz, seed = job
    assert isinstance(p, Person)
    rows, truth = simulate(p, first, days, tz, seed)
    spec = cohort_spec(p.index, p.distances_m, tz)
    return daily(rows, spec, first, first + timedelta(days=days - 1)), \
        {t.day for t in truth if t.fell}


def _collect(ds: Dataset, people: list[Any], results: Iterable[tuple[list[DayFeatures],
                                                                     set[date]]],
             progress: Callable[[int], None] | None) -> None:
    for p, (feats, falls) in zip(people, results, strict=True):
        ds.days[p.id] = feats
        ds.falls[p.id] = falls
        if progress is not None:
            progress(1)


def cohort_spec(index: int, distances_m: dict[str, float], tz: ZoneInfo) -> HomeSpec:
    """The home of simulated resident `index` (firmware_stubs.cohort device names)."""
    from firmware_stubs.cohort import ROOMS

    rooms = {f"{r}-pir-{index}": r for r in ROOMS}
    rooms[f"bed-{index}"] = "bedroom"
    rooms[f"door-{index}"] = "entrance"
    return HomeSpec(rooms, frozenset({f"bed-{index}"}), frozenset({f"door-{index}"}),
                    HomeSpec.parse_distances(distances_m), tz, time(22), time(7))
