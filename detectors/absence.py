"""Time out of the home from the position alarm's geofence and the exterior door (pure).

Shared by the IBIC indicators (`time_out_of_home`, `walks_returned_home`) and the daily
movement features of the fall-risk model.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

HOME_REGION = "home"
# Door-based absence: after an exterior door opened, no movement inside (ignoring the first
# minute, the person walking out) until the door's next opening, with movement inside right
# after it. Anything else (a staff visit, someone asleep after the door closed) is no
# absence: the door alone cannot tell.
DOOR_SETTLE_MS = 60_000
MIN_OUT_MS = 5 * 60_000
RETURN_MOTION_MS = 5 * 60_000


@dataclass(frozen=True)
class OutFact:
    """Time out of the home: from leaving until back (end None: not back yet)."""

    start_ms: int
    end_ms: int | None
    source: str  # "geofence" or "door"


def out_of_home(rows: list[tuple[Any, ...]], exterior: set[str], end_ms: int
                ) -> list[OutFact]:
    """Absences from the position alarm's home geofence (leave -> enter) and from the
    exterior door (see DOOR_SETTLE_MS); overlapping ones are one absence."""
    geo: list[OutFact] = []
    left: int | None = None
    openings: list[int] = []
    motion: list[int] = []
    last_door: dict[str, Any] = {}
    for ts, kind, device, value in rows:
        if kind == "geofence" and isinstance(value, dict) \
                and value.get("region") in (HOME_REGION, None):
            if value.get("event") == "leave" and left is None:
                left = ts
            elif value.get("event") == "enter" and left is not None:
                geo.append(OutFact(left, ts, "geofence"))
                left = None
        elif kind == "contact" and device in exterior:
            if value == "open" and last_door.get(device) != "open":
                openings.append(ts)
            last_door[device] = value
        elif kind == "motion" and value is True:
            motion.append(ts)
    if left is not None:
        geo.append(OutFact(left, None, "geofence"))
    # Without movement data the door alone says nothing about who is home.
    door = _door_absences(openings, motion, end_ms) if motion else []
    return _merge(sorted(geo + door, key=lambda o: o.start_ms))


def _door_absences(openings: list[int], motion: list[int], end_ms: int) -> list[OutFact]:
    out: list[OutFact] = []
    busy_until = -1
    for d1 in openings:
        if d1 <= busy_until:
            continue
        i = bisect.bisect_right(motion, d1 + DOOR_SETTLE_MS)
        nxt = motion[i] if i < len(motion) else None
        if nxt is None:
            if end_ms - d1 >= MIN_OUT_MS:
                out.append(OutFact(d1, None, "door"))
                busy_until = end_ms
            continue
        if nxt - d1 < MIN_OUT_MS:
            continue
        # Back: the next opening of the door, with movement inside right after it.
        j = bisect.bisect_right(openings, d1)
        back = openings[j] if j < len(openings) else None
        if back is not None and back <= nxt and nxt - back <= RETURN_MOTION_MS:
            out.append(OutFact(d1, back, "door"))
            busy_until = back
    return out


def _merge(items: list[OutFact]) -> list[OutFact]:
    merged: list[OutFact] = []
    for o in items:
        prev = merged[-1] if merged else None
        if prev is not None and (prev.end_ms is None or o.start_ms <= prev.end_ms):
            end = None if prev.end_ms is None or o.end_ms is None \
                else max(prev.end_ms, o.end_ms)
            source = "geofence" if "geofence" in (prev.source, o.source) else "door"
            merged[-1] = OutFact(prev.start_ms, end, source)
        else:
            merged.append(o)
    return merged
