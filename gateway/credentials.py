"""Per-device MQTT credentials, a Mosquitto password file and an ACL, made from the registry.

Least privilege, by topic:
- a device account may publish only to its own topics (its `source` plus the suffixes of its
  profile's channels) and read nothing;
- a bridge account (a zigbee2mqtt instance or a LoRaWAN network server publishing for many
  devices) may publish to the topics of the registered devices under its prefix, nothing else;
- the gateway account reads every device topic and publishes alerts and its own status
  (`tillsyn/v1/<site>/status`, also its last will);
- a staff account reads only its unit's alert topic (staff without a unit: every unit's)
  and the gateway's status.

Two listeners, two pairs of files (deploy/mosquitto/mosquitto.conf): devices, bridges and
staff connect to the device listener (`passwd`, `acl`), where `use_username_as_clientid`
makes every client's id its user name, so no account there can take the gateway's client id
and with it the gateway's persistent session; the gateway (and its scale-out workers)
connects to the gateway listener (`passwd-gateway`, `acl-gateway`), which knows only the
gateway account.

Passwords are random (24 bytes, URL-safe) and kept across runs, so re-running after a
registry change gives new devices accounts without re-provisioning the old ones. The password
file uses Mosquitto 2's PBKDF2-SHA512 format (`$7$`), the same as `mosquitto_passwd` writes.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config.registry import Registry
from gateway.errors import ConfigError
from gateway.ingest.router import Router
from gateway.profiles.loader import ProfileLibrary

GATEWAY_USER = "tillsyn-gateway"
ITERATIONS = 101  # mosquitto_passwd's default for $7$


@dataclass
class Account:
    """One MQTT user and what it may do."""

    username: str
    role: str  # device | bridge | gateway | staff
    write: list[str] = field(default_factory=list)
    read: list[str] = field(default_factory=list)
    password: str = ""


def parse_bridges(specs: Iterable[str]) -> dict[str, str]:
    """`NAME=PREFIX` options into {name: prefix}, or ConfigError naming the bad one."""
    bridges: dict[str, str] = {}
    for spec in specs:
        name, sep, prefix = spec.partition("=")
        if not sep or not name or not prefix or "+" in prefix or "#" in prefix:
            raise ConfigError([f"--bridge: value {spec!r}: expected NAME=TOPIC_PREFIX "
                               "without wildcards, e.g. z2m-home-1=zigbee2mqtt/"])
        bridges[name] = prefix
    return bridges


def plan_accounts(registry: Registry, library: ProfileLibrary, site: str,
                  bridges: dict[str, str] | None = None,
                  gateway_client_id: str = GATEWAY_USER) -> list[Account]:
    """Every account with its permissions (passwords not yet filled in). No device, bridge
    or staff account may be named like the gateway's client ids (`<id>` and `<id>-<n>`):
    on the device listener a client's id is its user name."""
    per_device = Router(registry, library).topics_by_device()  # the topics ingest reads
    reserved = [u for u in [*per_device, *(bridges or {}), *(s.id for s in registry.staff)]
                if u in (gateway_client_id, GATEWAY_USER)
                or u.startswith(f"{gateway_client_id}-")]
    if reserved:
        raise ConfigError([f"account {u!r}: the name is the gateway's client id (or one of "
                           "its scale-out sessions'); rename the device or staff member"
                           for u in reserved])
    every = sorted(t for ts in per_device.values() for t in ts)
    accounts = [Account(dev, "device", write=ts) for dev, ts in per_device.items()]
    taken = set(per_device)
    for name, prefix in sorted((bridges or {}).items()):
        if name in taken:
            raise ConfigError([f"--bridge: name {name!r} is already a device or account id"])
        covered = [t for t in every if t.startswith(prefix)]
        if not covered:
            raise ConfigError([f"--bridge: prefix {prefix!r} of {name!r} matches no "
                               "registered device topic"])
        accounts.append(Account(name, "bridge", write=covered))
        taken.add(name)
    alerts = f"tillsyn/v1/{site}/alerts"
    status = f"tillsyn/v1/{site}/status"
    accounts.append(Account(GATEWAY_USER, "gateway", read=every,
                            write=[f"{alerts}/#", status]))
    for staff in registry.staff:
        if staff.id in taken or staff.id == GATEWAY_USER:
            raise ConfigError([f"staff id {staff.id!r} is also a device id: MQTT user names "
                               "must be unique"])
        scope = f"{alerts}/{staff.unit}" if staff.unit else f"{alerts}/+"
        accounts.append(Account(staff.id, "staff", read=[scope, status]))
    return accounts


def password_hash(password: str, salt: bytes | None = None,
                  iterations: int = ITERATIONS) -> str:
    """Mosquitto 2 password-file hash: `$7$<iterations>$<salt>$<pbkdf2-sha512>`."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return (f"$7${iterations}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def hash_matches(stored: str, password: str) -> bool:
    """Whether a `$7$` hash is of this password."""
    parts = stored.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    try:
        salt = base64.b64decode(parts[3])
        expected = password_hash(password, salt, int(parts[2]))
    except ValueError:
        return False
    return hmac.compare_digest(expected, stored)


def acl_text(accounts: list[Account]) -> str:
    """Mosquitto ACL: one `user` block per account; anything not granted is denied."""
    lines = ["# Made by `tillsyn devices credentials` from the registry: do not edit by hand.",
             "# Anything not granted here is denied."]
    for acc in accounts:
        lines += ["", f"# {acc.role}", f"user {acc.username}"]
        lines += [f"topic write {t}" for t in acc.write]
        lines += [f"topic read {t}" for t in acc.read]
    return "\n".join(lines) + "\n"


def _read_previous(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    passwords: dict[str, str] = {}
    hashes: dict[str, str] = {}
    creds = folder / "credentials.csv"
    if creds.exists():
        with creds.open(newline="") as f:
            for row in csv.DictReader(f):
                passwords[row["username"]] = row["password"]
    for name in ("passwd", "passwd-gateway"):
        pw = folder / name
        if pw.exists():
            for line in pw.read_text().splitlines():
                user, sep, stored = line.partition(":")
                if sep:
                    hashes[user] = stored
    return passwords, hashes


def _write(path: Path, text: str, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", newline="") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


@dataclass
class Written:
    """What a run produced."""

    accounts: list[Account]
    new: list[str]
    removed: list[str]
    files: list[Path]


def write_credentials(folder: Path, accounts: list[Account],
                      rotate: Iterable[str] = ()) -> Written:
    """Fill in passwords (kept from an earlier run unless rotated) and write `passwd` and
    `acl` (the device listener), `passwd-gateway` and `acl-gateway` (the gateway listener),
    and `credentials.csv` (mode 0600: it holds the clear passwords to hand to devices).
    The password files are 0600 and the ACLs 0644: give them to the broker's user
    (docs/deploy.md)."""
    folder.mkdir(parents=True, exist_ok=True)
    previous, hashes = _read_previous(folder)
    rotate = set(rotate)
    unknown = rotate - {a.username for a in accounts}
    if unknown:
        raise ConfigError([f"--rotate: {u!r} is not a device, bridge, staff or gateway account"
                           for u in sorted(unknown)])
    new: list[str] = []
    pw_lines: dict[bool, list[str]] = {True: [], False: []}  # gateway listener or not
    rows: list[list[str]] = []
    for acc in accounts:
        kept = previous.get(acc.username)
        if kept and acc.username not in rotate:
            acc.password = kept
        else:
            acc.password = secrets.token_urlsafe(24)
            new.append(acc.username)
        stored = hashes.get(acc.username, "")
        if acc.username in new or not hash_matches(stored, acc.password):
            stored = password_hash(acc.password)
        pw_lines[acc.role == "gateway"].append(f"{acc.username}:{stored}")
        rows.append([acc.username, acc.role, acc.password])
    removed = sorted(set(previous) - {a.username for a in accounts})
    paths = [folder / "passwd", folder / "acl", folder / "passwd-gateway",
             folder / "acl-gateway", folder / "credentials.csv"]
    _write(paths[0], "\n".join(pw_lines[False]) + "\n", 0o600)
    _write(paths[1], acl_text([a for a in accounts if a.role != "gateway"]), 0o644)
    _write(paths[2], "\n".join(pw_lines[True]) + "\n", 0o600)
    _write(paths[3], acl_text([a for a in accounts if a.role == "gateway"]), 0o644)
    csv_lines = ["username,role,password"] + [",".join(r) for r in rows]
    _write(paths[4], "\n".join(csv_lines) + "\n", 0o600)
    return Written(accounts, new, removed, paths)
