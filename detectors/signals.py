"""What one observation says about the person (pure): a move inside, a passage through the
exterior door, a bed change, or nothing new.

Every binary kind (bed, contact, motion, lock) is judged on *transitions*: zigbee2mqtt,
ChirpStack and most lock converters repeat the cached state in every periodic report, so
a repeated `closed`, `false` or `locked` is a check-in, not something the person did.
A motion sensor's repeated `true` is the exception: each is a new detection (an Aqara PIR
re-reports occupancy while someone keeps moving), so it counts as movement, but it is not a
new *entry* into the room (`Signal.changed` is False).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detectors.model import DeviceInfo, Observation

BINARY_KINDS = frozenset({"bed", "contact", "motion", "lock"})
_UNSET = object()


@dataclass(frozen=True, slots=True)
class Signal:
    """An observation, classified.

    - `changed`: the value differs from the device's previous one of this kind (the first
      reading of a device counts as a change: at start nothing is known);
    - `inside`: the person did something inside the home (movement, an indoor door or
      cupboard, getting into or out of bed);
    - `passage`: someone went through the exterior door (the door's contact changed, the
      motion sensor at the door saw movement, the door lock was operated); a device's first
      reading is no passage (it may be a periodic report of a state held for hours);
    - `room`: where it happened (None: unknown).
    """

    changed: bool
    inside: bool
    passage: bool
    room: str | None


class Transitions:
    """The last value per device and kind, to tell a change from a repeat."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], Any] = {}
        self.first = False  # the last update was the device's first value of its kind

    def update(self, obs: Observation) -> bool:
        """Remember the value; True if it is a change (or the first value)."""
        if obs.kind not in BINARY_KINDS:
            self.first = False
            return True
        key = (obs.device_id, obs.kind)
        value = _state(obs)
        before = self.last.get(key, _UNSET)
        self.last[key] = value
        self.first = before is _UNSET
        return before is _UNSET or before != value


def _state(obs: Observation) -> Any:
    """The part of a value that is the state (a lock's value also names who operated it)."""
    if obs.kind == "lock" and isinstance(obs.value, dict):
        return obs.value.get("state")
    return obs.value


def classify(obs: Observation, dev: DeviceInfo | None, changed: bool,
             first: bool = False) -> Signal:
    """What the observation says (see Signal); `first`: the device's first reading."""
    room = obs.room if obs.room is not None else (dev.room if dev is not None else None)
    if dev is None:
        return Signal(changed, False, False, room)
    kind = obs.kind
    if kind == "motion":
        if obs.value is not True:
            return Signal(changed, False, False, room)
        if dev.exterior:  # a motion sensor at the front door
            return Signal(changed, False, True, room)
        return Signal(changed, True, False, room)
    if kind == "contact":
        if not changed:
            return Signal(False, False, False, room)
        return Signal(True, not dev.exterior, dev.exterior and not first, room)
    if kind == "bed":
        return Signal(changed, changed, False, room)
    if kind == "lock":
        return Signal(changed, False, changed and not first, room)
    return Signal(changed, False, False, room)
