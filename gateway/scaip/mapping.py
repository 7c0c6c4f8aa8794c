"""Tillsyn alert kinds, transitions and rooms to SCAIP codes: data in mapping.yaml,
validated here, turned into requests by `request_for`. No I/O beyond reading the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from gateway.config.base import StrictModel
from gateway.config.loader import read_yaml, validate
from gateway.scaip.messages import Request

SHIPPED = Path(__file__).with_name("mapping.yaml")
DIGITS4 = r"^[0-9]{4}$"
DIGITS3 = r"^[0-9]{3}$"
# What an alert's life sends: the alert itself (and its escalation) as a message, and what
# staff did as the matching status.
SENT_AS_MESSAGE = frozenset({"raised", "priority_raised", "escalated"})


class KindCodes(StrictModel):
    """One alert kind as the centre sees it."""

    dty: str = Field(..., pattern=DIGITS4, description="device type")
    stc: str = Field(..., pattern=DIGITS4, description="status code")
    text: str = Field(..., min_length=1, max_length=64, description="status text")


class TransitionCodes(StrictModel):
    """What staff did on the board, as a SCAIP message type and status."""

    mty: str = Field(..., pattern=r"^(ME|RE|IN)$")
    stc: str = Field(..., pattern=DIGITS4)


class HeartbeatCodes(StrictModel):
    """The periodic supervision message."""

    dty: str = Field(..., pattern=DIGITS4)
    stc: str = Field(..., pattern=DIGITS4)


class Mapping(StrictModel):
    """The whole mapping file."""

    kinds: dict[str, KindCodes]
    transitions: dict[str, TransitionCodes] = Field(default_factory=dict)
    rooms: dict[str, str] = Field(default_factory=dict)
    heartbeat: HeartbeatCodes

    def room(self, room: str | None) -> str | None:
        """The location code of a room, if the mapping has one."""
        return self.rooms.get(room) if room else None


def load_mapping(path: str | Path | None = None) -> Mapping:
    """Read and validate a mapping file (the shipped one by default)."""
    file = Path(path) if path else SHIPPED
    mapping = validate(Mapping, read_yaml(file), file)
    from gateway.errors import ConfigError  # noqa: PLC0415 - only on a bad file
    bad = [f"{file}: rooms.{k}: value {v!r}: want 3 digits" for k, v in mapping.rooms.items()
           if not (len(v) == 3 and v.isdigit())]
    bad += [f"{file}: transitions.{k}: unknown transition (acknowledged, resolved)"
            for k in mapping.transitions if k not in ("acknowledged", "resolved")]
    if bad:
        raise ConfigError(bad)
    return mapping


def request_for(mapping: Mapping, alert: dict[str, Any], transition: str, cid: str,
                ref: str, room_text: str | None = None) -> Request | None:
    """The SCAIP request for one alert transition, or None if it is not one to send.

    `alert` is the delivered (pseudonymous) alert; `cid` the resident's id at the centre.
    Sent: device type and status of the kind, priority, the room as a location code and
    its name, the device id. Nothing about the person beyond the pseudonymous cid."""
    codes = mapping.kinds.get(str(alert["kind"]))
    if codes is None:
        return None
    common: dict[str, Any] = {
        "cid": cid, "dty": codes.dty, "ref": ref, "did": alert.get("device_id"),
        "lco": mapping.room(alert.get("room")), "lte": room_text,
        "pri": int(alert["priority"]),
    }
    if transition in SENT_AS_MESSAGE:
        info = {"escalated": "Eskalerat", "priority_raised": "Högre prioritet"}.get(transition)
        return Request(mty="ME", stc=codes.stc, stt=codes.text, ite=info, **common)
    step = mapping.transitions.get(transition)
    if step is None:
        return None
    return Request(mty=step.mty, stc=step.stc, stt=codes.text, **common)


def heartbeat(mapping: Mapping, controller_id: str, ref: str) -> Request:
    """The periodic supervision message of the gateway itself."""
    return Request(cid=controller_id, dty=mapping.heartbeat.dty, mty="PI",
                   stc=mapping.heartbeat.stc, ref=ref)
