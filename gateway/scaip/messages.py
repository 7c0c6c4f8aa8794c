"""SCAIP messages: the request Tillsyn sends (`<mrq>`) and the centre's response (`<mrs>`).

Element names and code values follow the standard's published element list (SS 91100:2014,
CLC/TS 50134-9:2018); `scaip.xsd` next to this module is the schema the tests validate
every sent body against. Pure functions, no I/O.
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass

CONTENT_TYPE = "application/scaip+xml"
VERSION = "01.00"
MAX_RESPONSE_BYTES = 16_384
TEXT_MAX = 64

# snu of a response: what the centre did with the request.
SNU_TEXT = {
    0: "accepted", 1: "message too long", 2: "invalid format", 3: "wrong data content",
    4: "hold", 5: "not treated", 6: "busy", 7: "mandatory tag missing",
}
SNU_TEXT_SV = {
    0: "mottaget", 1: "för långt meddelande", 2: "ogiltigt format", 3: "fel datainnehåll",
    4: "vänta", 5: "inte behandlat", 6: "upptagen", 7: "obligatoriskt fält saknas",
}
SNU_ACCEPTED = 0
SNU_BUSY = frozenset({4, 5, 6})  # the centre could not take it now: try again


def new_reference() -> str:
    """A unique message reference (16 hex digits, 64 random bits)."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Request:
    """One `<mrq>`: ids are pseudonymous; texts are short and in the site's language."""

    cid: str            # controller (caller) id: the resident's alarm-centre id or the gateway's
    dty: str            # device type, 4 digits
    mty: str            # ME message, RE reset, IN information, PI heartbeat
    ref: str
    stc: str | None = None   # status code, 4 digits
    stt: str | None = None   # status text
    did: str | None = None   # device id
    dte: str | None = None   # device text
    lco: str | None = None   # location code, 3 digits
    lte: str | None = None   # location text
    pri: int | None = None   # priority, 1 highest
    ite: str | None = None   # information text
    crd: str = "no-voice:"   # no voice call: Tillsyn has no speech path to the home

    def xml(self) -> bytes:
        """The request as UTF-8 XML, elements in the standard's order."""
        root = ET.Element("mrq")
        fields: list[tuple[str, str | None]] = [
            ("ver", VERSION), ("cid", self.cid), ("dty", self.dty), ("sco", "0"),
            ("cha", "0"), ("mty", self.mty), ("did", self.did), ("dte", _short(self.dte)),
            ("crd", self.crd), ("stc", self.stc), ("stt", _short(self.stt)),
            ("pri", None if self.pri is None else str(self.pri)), ("lco", self.lco),
            ("lte", _short(self.lte)), ("ite", _short(self.ite)), ("ref", self.ref),
        ]
        for name, value in fields:
            if value is not None and value != "":
                ET.SubElement(root, name).text = value
        out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        return out


@dataclass(frozen=True)
class Response:
    """One `<mrs>`."""

    ref: str
    snu: int
    ste: str = ""
    hbi: str | None = None  # heartbeat interval the centre asks for

    @property
    def accepted(self) -> bool:
        """The centre took the request."""
        return self.snu == SNU_ACCEPTED

    @property
    def meaning(self) -> str:
        """snu in words (English, for logs and the stored reason)."""
        return SNU_TEXT.get(self.snu, f"status {self.snu}")

    @property
    def meaning_sv(self) -> str:
        """snu in Swedish (what the board shows)."""
        return SNU_TEXT_SV.get(self.snu, f"status {self.snu}")


class BadResponse(ValueError):
    """A body that is not a SCAIP response."""


def parse_response(body: bytes | str) -> Response:
    """Read an `<mrs>`; BadResponse with the reason if it is not one."""
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_RESPONSE_BYTES:
        raise BadResponse(f"response of {len(raw)} bytes (more than {MAX_RESPONSE_BYTES})")
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise BadResponse("response with a DTD or entities")
    try:
        root = ET.fromstring(raw)  # noqa: S314 - size-limited, no DTD (checked above)
    except ET.ParseError as exc:
        raise BadResponse(f"not XML: {exc}") from exc
    if root.tag != "mrs":
        raise BadResponse(f"root element <{root.tag[:20]}>, want <mrs>")
    ref = (root.findtext("ref") or "").strip()
    snu_text = (root.findtext("snu") or "").strip()
    if not ref:
        raise BadResponse("no <ref>")
    if not snu_text.isdigit():
        raise BadResponse(f"<snu> {snu_text[:10]!r} is not a number")
    return Response(ref=ref, snu=int(snu_text), ste=(root.findtext("ste") or "").strip(),
                    hbi=(root.findtext("hbi") or "").strip() or None)


def find_mrs(message: str) -> str | None:
    """The `<mrs>...</mrs>` part of a whole SIP message (the body of a 200 OK or of a
    MESSAGE the centre sends back), or None."""
    start = message.find("<mrs")
    end = message.find("</mrs>", start)
    if start < 0 or end < 0:
        return None
    return message[start:end + len("</mrs>")]


def _short(text: str | None) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= TEXT_MAX else text[:TEXT_MAX - 1] + "…"
