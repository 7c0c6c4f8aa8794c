"""Occupancy at a moment, for pages and summaries: planned absence, else the stored state.

"Unknown is never OK": where the state is unknown the answer says why (the home has no
exterior door sensor and no position alarm, or nothing has been seen since the start).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from detectors.model import ResidentSettings
from detectors.occupancy import OccupancyTracker
from gateway.occupancy.absences import AbsenceService
from gateway.occupancy.facts import FactStore

NO_DEVICES = "no exterior door sensor or position alarm: away cannot be told from asleep"
NO_EVIDENCE = "nothing seen yet that tells (no movement inside or door since the start)"


class OccupancyViews:
    """Reads occupancy as it was at a moment."""

    def __init__(self, facts: FactStore, absences: AbsenceService,
                 settings: dict[str, ResidentSettings]) -> None:
        self.facts = facts
        self.absences = absences
        self.can_tell = {rid: OccupancyTracker(s).can_tell for rid, s in settings.items()}

    def at(self, resident_id: str, ts: datetime) -> dict[str, Any]:
        """{state, source, since, reason} of a resident at ts."""
        planned = next((a for a in self.absences.planned(resident_id) if a.covers(ts)), None)
        if planned is not None:
            return {"state": "away", "source": "planned", "since": planned.start.isoformat(),
                    "until": planned.end.isoformat(), "reason": planned.reason}
        if not self.can_tell.get(resident_id, False):
            return {"state": "unknown", "source": None, "since": None, "reason": NO_DEVICES}
        changes = self.facts.occupancy_changes(resident_id, ts, ts)
        if not changes:
            return {"state": "unknown", "source": None, "since": None, "reason": NO_EVIDENCE}
        since, state, source = changes[-1]
        return {"state": state, "source": source, "since": since.isoformat(),
                "reason": NO_EVIDENCE if state == "unknown" else None}
