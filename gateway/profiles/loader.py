"""Load device profiles from YAML and check them (shape of Z2M validateDefinition)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gateway.config.loader import read_yaml, validate
from gateway.config.registry import Registry, Resident
from gateway.errors import ConfigError
from gateway.profiles.decoders import DECODERS
from gateway.profiles.lorawan_codecs import CODECS
from gateway.profiles.model import DeviceProfile, ProfileFile

DEFAULT_DIR = Path(__file__).resolve().parent.parent.parent / "device_profiles"


@dataclass(frozen=True)
class ProfileLibrary:
    """All loaded profiles by id."""

    profiles: dict[str, DeviceProfile]

    def get(self, profile_id: str) -> DeviceProfile:
        """Return a profile or raise KeyError."""
        return self.profiles[profile_id]


def load_profiles(folder: Path | str | None = None) -> ProfileLibrary:
    """Load every *.yaml in the folder; any invalid profile refuses the whole start."""
    folder = Path(folder) if folder is not None else DEFAULT_DIR
    if not folder.is_dir():
        raise ConfigError([f"{folder}: device profile folder not found"])
    problems: list[str] = []
    profiles: dict[str, DeviceProfile] = {}
    origin: dict[str, Path] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            pf = validate(ProfileFile, read_yaml(path), path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        for i, prof in enumerate(pf.profiles):
            where = f"{path}: profiles.{i}"
            if prof.id in profiles:
                problems.append(f"{where}.id: value {prof.id!r}: already defined in "
                                f"{origin[prof.id]}")
            for j, ch in enumerate(prof.channels):
                if ch.decoder not in DECODERS:
                    problems.append(f"{where}.channels.{j}.decoder: value {ch.decoder!r}: "
                                    f"no such decoder (known: {', '.join(sorted(DECODERS))})")
                codec = ch.options.get("codec")
                if codec is not None and codec not in CODECS:
                    problems.append(f"{where}.channels.{j}.options.codec: value {codec!r}: "
                                    "no such codec")
            suffixes = [c.suffix for c in prof.channels]
            if len(set(suffixes)) != len(suffixes):
                problems.append(f"{where}.channels: two channels with the same suffix")
            if prof.source_pattern is not None:
                try:
                    re.compile(prof.source_pattern)
                except re.error as exc:
                    problems.append(f"{where}.source_pattern: value {prof.source_pattern!r}: "
                                    f"invalid regular expression: {exc}")
            profiles[prof.id] = prof
            origin[prof.id] = path
    if not profiles and not problems:
        problems.append(f"{folder}: no device profiles (*.yaml) found")
    if problems:
        raise ConfigError(problems)
    return ProfileLibrary(profiles)


def check_registry(registry: Registry, library: ProfileLibrary, path: Path | str) -> None:
    """Check that every device names a known profile and a source that fits it."""
    problems: list[str] = []
    for i, res in enumerate(registry.residents):
        for j, dev in enumerate(res.devices):
            where = f"{path}: residents.{i}.devices.{j}"
            prof = library.profiles.get(dev.profile)
            if prof is None:
                problems.append(f"{where}.profile: value {dev.profile!r}: unknown profile")
                continue
            if prof.source_pattern and not re.fullmatch(prof.source_pattern, dev.source):
                problems.append(f"{where}.source: value {dev.source!r}: does not fit profile "
                                f"{dev.profile} (expected {prof.source_pattern})")
            if dev.bed and "motion" not in prof.kinds:
                problems.append(f"{where}.bed: value True: only a motion sensor can be the "
                                f"bed sensor this way ({dev.profile} has no motion)")
            if dev.exterior and not set(prof.kinds) & {"contact", "motion", "lock"}:
                problems.append(f"{where}.exterior: value True: {dev.profile} senses no door "
                                "(contact, motion or lock)")
        problems.extend(f"{path}: residents.{i}.{p}" for p in plan_device_problems(res, library))
    if problems:
        raise ConfigError(problems)


def plan_device_problems(res: Resident, library: ProfileLibrary) -> list[str]:
    """Criteria of a supervision plan that no installed device can decide."""
    if not res.supervision.checks:
        return []

    def has(kind: str, *, exterior: bool | None = None, rooms: set[str] | None = None,
            bed: bool = False) -> bool:
        for dev in res.devices:
            prof = library.profiles.get(dev.profile)
            if prof is None or kind not in prof.kinds:
                continue
            if exterior is not None and dev.exterior != exterior:
                continue
            if rooms is not None and dev.room not in rooms:
                continue
            if bed and not dev.bed:
                continue
            return True
        return False

    door = has("contact", exterior=True) or has("motion", exterior=True)
    inside = any(has(k, exterior=False) for k in ("motion", "contact", "bed"))
    needs = {
        "in_bed": (has("bed") or has("motion", bed=True),
                   "a bed sensor (or a motion sensor over the bed, `bed: true`)"),
        "door_closed": (has("contact", exterior=True), "a contact sensor on an exterior door"),
        "not_in_bathroom_long": (has("motion", rooms={"bathroom", "toilet"}),
                                 "a motion sensor in the bathroom"),
        "in_apartment": ((door and inside) or has("geofence"),
                         "an exterior door sensor (contact, or motion at the door) and a "
                         "sensor inside, or a position alarm: without them away cannot be "
                         "told from asleep"),
        "sensors_online": (bool(res.devices), "at least one device"),
    }
    return [f"supervision.all_well.{j}: value {c!r}: needs {needs[c][1]}"
            for j, c in enumerate(res.supervision.all_well) if not needs[c][0]]
