"""The registry file: units, staff, residents and their devices (docs/configuration.md)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from gateway.config.base import StrictModel
from gateway.config.gateway import HHMM, NightWindow
from gateway.kinds import OBSERVATION_KINDS as OBSERVATION_KINDS
from gateway.kinds import TECHNICAL_KINDS as TECHNICAL_KINDS
from gateway.kinds import ObservationKind as ObservationKind

ConsentKind = Literal["motion", "contact", "bed", "lock", "position", "geofence", "sos", "fall"]
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class Unit(StrictModel):
    """A care unit (e.g. one corridor of a care home, or a home-care district)."""

    id: str = Field(..., pattern=ID_PATTERN)
    name: str = Field(..., min_length=1)
    escalation_unit: str | None = Field(None, description="Unit whose topic gets escalations")
    provider: str | None = Field(None, max_length=200,
                                 description="Care provider running the unit (unit report)")


class Staff(StrictModel):
    """A staff member; lock credentials identify staff visits."""

    id: str = Field(..., pattern=ID_PATTERN)
    name: str = Field(..., min_length=1)
    unit: str | None = None
    role: Literal["night_staff", "assessor", "manager", "admin"] = "night_staff"
    lock_credentials: list[str] = Field(default_factory=list,
                                        description='e.g. "keypad:2" (method:user)')


class AlertOverrides(StrictModel):
    """Per-resident overrides of the site alert defaults (`site.alerts`; the meaning of each
    key is described there). Unset keys take the site's value."""

    bed_exit_no_return_minutes: int | None = Field(None, ge=1, le=600)
    bed_exit_moving_minutes: int | None = Field(None, ge=1, le=120)
    bed_exit_still_minutes: int | None = Field(None, ge=2, le=600)
    bed_exit_when_moving: Literal["notify", "none"] | None = None
    rise_time: str | None = Field(None, pattern=HHMM)
    inactivity_hours: float | None = Field(None, gt=0, le=48)
    bathroom_long_minutes: int | None = Field(None, ge=1, le=600)
    escalation_seconds: int | None = Field(None, ge=10, le=3600)
    away_after_minutes: int | None = Field(None, ge=2, le=240)
    not_home_minutes_after_night_start: int | None = Field(None, ge=0, le=600)


class Absence(StrictModel):
    """A planned absence (hospital stay, family visit, short-term care): the resident is
    away, checks say so and raise nothing, and `not_home_at_night` is not raised."""

    start: datetime = Field(..., description="From (RFC 3339 with offset, or local time)")
    end: datetime = Field(..., description="Until (exclusive)")
    reason: str = Field("", max_length=200, description="e.g. sjukhusvistelse, korttidsboende")

    @model_validator(mode="after")
    def _order(self) -> Absence:
        if self.end <= self.start:
            raise ValueError(f"end {self.end.isoformat()} must be after start "
                             f"{self.start.isoformat()}")
        if self.end - self.start > timedelta(days=366):
            raise ValueError("a planned absence is at most a year long")
        return self


Criterion = Literal["in_bed", "in_apartment", "door_closed", "sensors_online",
                    "not_in_bathroom_long"]
# The observation kinds a criterion reads, for the consent check (any one of them suffices
# for `in_apartment`; `sensors_online` reads only technical data).
CRITERION_CONSENT: dict[str, tuple[str, ...]] = {
    "in_bed": ("bed",), "door_closed": ("contact",), "not_in_bathroom_long": ("motion",),
    "in_apartment": ("motion", "contact", "geofence"), "sensors_online": (),
}


class Supervision(StrictModel):
    """Digital night supervision plan (docs/supervision.md)."""

    checks: list[str] = Field(default_factory=list, max_length=24,
                              description='Local check times, "HH:MM"')
    all_well: list[Criterion] = Field(default_factory=list,
                                      description="What must hold for a check to be ok")
    replaces_physical_visits: bool = Field(
        False, description="The digital checks replace planned physical look-ins")
    recheck_minutes: int = Field(15, ge=1, le=60,
                                 description="Re-check delay after an unknown check")
    bathroom_long_minutes: int | None = Field(
        None, ge=1, le=600, description="`not_in_bathroom_long` limit (default: the "
                                        "resident's bathroom_long alert limit)")
    consent_reference: str | None = Field(
        None, max_length=200, description="The documented consent that covers the checks, "
                                          'e.g. "samtycke 2026-03-02, dnr SN 2026/114"')

    @field_validator("checks")
    @classmethod
    def _times(cls, value: list[str]) -> list[str]:
        import re

        for item in value:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", item):
                raise ValueError(f"check time {item!r} is not HH:MM")
        if len(set(value)) != len(value):
            raise ValueError("check times must not repeat")
        return sorted(value, key=lambda t: (t < "12:00", t))  # evening first

    @model_validator(mode="after")
    def _complete(self) -> Supervision:
        if self.checks and not self.all_well:
            raise ValueError("all_well: a plan with check times must say what all well means")
        return self


class Indicator(StrictModel):
    """A measured indicator attached to a goal (ids: gateway/ibic/indicators.py)."""

    id: str = Field(..., pattern=ID_PATTERN)
    target: float
    direction: Literal["at_least", "at_most"] = "at_least"
    kind: str | None = Field(None, description="Only alerts of this kind (for the alert "
                                               "indicators)")

    @model_validator(mode="after")
    def _known(self) -> Indicator:
        from gateway.ibic.indicators import DEFINITIONS

        d = DEFINITIONS.get(self.id)
        if d is None:
            raise ValueError(f"indicator {self.id!r} is not one of: {', '.join(DEFINITIONS)}")
        if d.unit == "share" and not 0 <= self.target <= 1:
            raise ValueError(f"target {self.target} of {self.id}: a share is between 0 and 1")
        if self.target < 0:
            raise ValueError(f"target {self.target} of {self.id} must not be negative")
        if self.kind is not None and self.id not in (
                "alerts_per_night", "night_alerts_per_week", "response_time"):
            raise ValueError(f"kind applies only to the alert indicators, not {self.id}")
        return self


def _icf_problems(life_area: str, codes: list[str]) -> None:
    from gateway.ibic.catalogue import catalogue

    problems = catalogue().problems(life_area, codes)
    if problems:
        raise ValueError("; ".join(problems))


class Goal(StrictModel):
    """An IBIC goal, set with the person."""

    id: str = Field(..., pattern=ID_PATTERN)
    text: str = Field(..., min_length=1, max_length=1000)
    life_area: str = Field(..., pattern=r"^(d[1-9]|trygghet)$")
    icf: str | None = Field(None, pattern=r"^[bdes]\d{1,5}$")
    start: date
    follow_up: date
    indicators: list[Indicator] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _consistent(self) -> Goal:
        if self.follow_up <= self.start:
            raise ValueError(f"follow_up {self.follow_up} must be after start {self.start}")
        _icf_problems(self.life_area, [self.icf] if self.icf else [])
        return self


class Need(StrictModel):
    """An assessed need in one life area, with the ICF codes that describe it."""

    life_area: str = Field(..., pattern=r"^(d[1-9]|trygghet)$")
    icf: list[str] = Field(default_factory=list, max_length=20)
    text: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _codes(self) -> Need:
        _icf_problems(self.life_area, self.icf)
        return self


class Device(StrictModel):
    """A device installed in a resident's home."""

    id: str = Field(..., pattern=ID_PATTERN)
    profile: str = Field(..., min_length=1)
    source: str = Field(..., min_length=1, max_length=512,
                        description="Topic without channel; for LoRaWAN the DevEUI")
    room: str | None = None
    exterior: bool = Field(False, description="On the exterior door: a contact on the front "
                                              "door, or a motion sensor at it")
    bed: bool = Field(False, description="A motion sensor mounted over the bed, used as the "
                                         "bed sensor (movement there = in bed)")

    @field_validator("source")
    @classmethod
    def _no_wildcards(cls, value: str) -> str:
        if "+" in value or "#" in value:
            raise ValueError("must not contain MQTT wildcards + or #")
        return value


class Resident(StrictModel):
    """A person whose home is monitored. `id` is pseudonymous; `name` never leaves the API."""

    id: str = Field(..., pattern=ID_PATTERN)
    name: str = Field(..., min_length=1)
    unit: str
    consent: list[ConsentKind] = Field(default_factory=list)
    night: NightWindow | None = None
    alerts: AlertOverrides = Field(default_factory=AlertOverrides)
    action_plan: str = ""
    supervision: Supervision = Field(default_factory=Supervision)
    needs: list[Need] = Field(default_factory=list)
    goals: list[Goal] = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)
    sensor_distances_m: dict[str, float] = Field(
        default_factory=dict, description='Walking distance between rooms, "hall-bedroom": 3.2')
    absences: list[Absence] = Field(default_factory=list, max_length=100,
                                    description="Planned absences (also kept through the API)")
    alarm_centre_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._:-]{1,64}$",
        description="The id the alarm receiving centre knows this person by (SCAIP cid); "
                    "default: the resident id. Pseudonymous: never a name or personnummer")

    @model_validator(mode="after")
    def _distances(self) -> Resident:
        rooms = {d.room for d in self.devices if d.room}
        problems = []
        for pair, metres in self.sensor_distances_m.items():
            a, sep, b = pair.partition("-")
            if not sep or not a or not b or a == b:
                problems.append(f"sensor_distances_m.{pair}: want two different rooms "
                                '"room-room"')
            elif not 0.5 <= metres <= 30:
                problems.append(f"sensor_distances_m.{pair}: value {metres}: metres between "
                                "0.5 and 30")
            else:
                problems += [f"sensor_distances_m.{pair}: room {r!r} has no device"
                             for r in (a, b) if r not in rooms]
        if problems:
            raise ValueError("; ".join(problems))
        return self


class RoomName(StrictModel):
    """A room's display name in both languages (the standard rooms have theirs already:
    bedroom, bathroom, kitchen...; see the message catalogue)."""

    id: str = Field(..., pattern=ID_PATTERN)
    sv: str = Field(..., min_length=1, max_length=60)
    en: str = Field(..., min_length=1, max_length=60)


class Registry(StrictModel):
    """Root of the registry file."""

    rooms: list[RoomName] = Field(default_factory=list, description="Names of the rooms "
                                  "the device entries use, where they are not standard")
    units: list[Unit] = Field(default_factory=list)
    staff: list[Staff] = Field(default_factory=list)
    residents: list[Resident] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Registry:
        problems: list[str] = []
        unit_ids = _unique("units", [u.id for u in self.units], problems)
        _unique("staff", [s.id for s in self.staff], problems)
        _unique("residents", [r.id for r in self.residents], problems)
        for i, staff in enumerate(self.staff):
            if staff.unit is not None and staff.unit not in unit_ids:
                problems.append(f"staff.{i}.unit: value {staff.unit!r}: no such unit")
        creds: dict[str, str] = {}
        for i, staff in enumerate(self.staff):
            for j, cred in enumerate(staff.lock_credentials):
                if cred in creds:
                    problems.append(f"staff.{i}.lock_credentials.{j}: value {cred!r}: "
                                    f"already used by staff {creds[cred]}")
                creds[cred] = staff.id
        device_ids: set[str] = set()
        sources: set[str] = set()
        for i, res in enumerate(self.residents):
            if res.unit not in unit_ids:
                problems.append(f"residents.{i}.unit: value {res.unit!r}: no such unit")
            problems.extend(supervision_consent_problems(res, f"residents.{i}"))
            _unique(f"residents.{i}.goals", [g.id for g in res.goals], problems)
            for j, dev in enumerate(res.devices):
                if dev.id in device_ids:
                    problems.append(f"residents.{i}.devices.{j}.id: value {dev.id!r}: duplicate")
                device_ids.add(dev.id)
                if dev.source in sources:
                    problems.append(
                        f"residents.{i}.devices.{j}.source: value {dev.source!r}: duplicate")
                sources.add(dev.source)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def room_names(self) -> dict[str, dict[str, str]]:
        """Room id -> {"sv": ..., "en": ...} of the registry's own room names."""
        return {r.id: {"sv": r.sv, "en": r.en} for r in self.rooms}

    def devices(self) -> list[tuple[Resident, Device]]:
        """Every (resident, device) pair."""
        return [(r, d) for r in self.residents for d in r.devices]

    def resident(self, resident_id: str) -> Resident | None:
        """A registered resident, or None."""
        return next((r for r in self.residents if r.id == resident_id), None)

    def staff_member(self, staff_id: str) -> Staff | None:
        """A registered staff member, or None."""
        return next((s for s in self.staff if s.id == staff_id), None)


def supervision_consent_problems(res: Resident, path: str) -> list[str]:
    """Criteria of a supervision plan that read data the resident has not consented to."""
    problems: list[str] = []
    if not res.supervision.checks:
        return problems
    for j, criterion in enumerate(res.supervision.all_well):
        needs = CRITERION_CONSENT[criterion]
        if needs and not set(needs) & set(res.consent):
            problems.append(f"{path}.supervision.all_well.{j}: value {criterion!r}: needs "
                            f"consent to {' or '.join(needs)}")
    return problems


def _unique(section: str, ids: list[str], problems: list[str]) -> set[str]:
    seen: set[str] = set()
    for i, item in enumerate(ids):
        if item in seen:
            problems.append(f"{section}.{i}.id: value {item!r}: duplicate")
        seen.add(item)
    return seen
