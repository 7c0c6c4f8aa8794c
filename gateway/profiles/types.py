"""What a decoder returns: readings (future observations) plus device status and problems."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple


class Reading(NamedTuple):
    """One decoded fact: an observation kind, its canonical value and the device time.

    A named tuple: one is made for nearly every message, in half the time of a frozen
    dataclass, and it unpacks."""

    kind: str
    value: Any
    ts: datetime | None = None


@dataclass(slots=True)
class Decoded:
    """Result of decoding one message.

    `problems` lists fields that were present but wrong; the message still yields its
    good readings and is also recorded as a (partial) dead letter.
    """

    readings: list[Reading] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    ignored: str | None = None
    ts: datetime | None = None  # the message's own time, when it has one without readings
