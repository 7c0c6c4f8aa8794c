"""Staff visits from lock events: a staff credential unlocking starts one, locking ends it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from detectors.model import Observation


@dataclass
class Visit:
    """A staff member's presence in a resident's home."""

    resident_id: str
    staff_id: str
    device_id: str
    start: datetime
    end: datetime | None = None

    @property
    def seconds(self) -> float | None:
        """Duration, once ended."""
        return None if self.end is None else (self.end - self.start).total_seconds()


class VisitTracker:
    """Follows one resident's door lock. Only operations count: a lock repeats its state,
    and who last operated it, in every periodic report."""

    def __init__(self, staff_credentials: dict[str, str]) -> None:
        self.credentials = staff_credentials
        self.current: Visit | None = None
        self.state: dict[str, object] = {}  # last state per lock

    def observe(self, obs: Observation) -> Visit | None:
        """Feed a lock observation; returns a visit when one starts or ends."""
        if obs.kind != "lock" or not isinstance(obs.value, dict):
            return None
        state = obs.value.get("state")
        if self.state.get(obs.device_id) == state:
            return None
        self.state[obs.device_id] = state
        staff = self.credentials.get(str(obs.value.get("credential")))
        if state == "unlocked" and staff is not None and self.current is None:
            self.current = Visit(obs.resident_id, staff, obs.device_id, obs.ts)
            return self.current
        if state == "locked" and self.current is not None:
            ended, self.current = self.current, None
            ended.end = obs.ts
            return ended
        return None

    def in_progress(self) -> Visit | None:
        """The visit going on now, if any."""
        return self.current
