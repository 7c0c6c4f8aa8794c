"""Signed bearer tokens (HMAC-SHA256): `tillsyn token create` and the API share the key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from gateway.errors import AuthError


@dataclass(frozen=True)
class Claims:
    """Who a token speaks for, until when, and what for."""

    staff_id: str
    expires: int
    use: str = "api"  # "api": a bearer token; "stream": an event-stream ticket only


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(secret: str, staff_id: str, ttl_seconds: int, use: str = "api"
                ) -> tuple[str, int]:
    """A token for a staff member, valid for ttl_seconds, and its expiry (epoch seconds).
    `use` other than "api" makes a single-purpose token (a stream ticket)."""
    expires = int(time.time()) + ttl_seconds
    payload: dict[str, object] = {"sub": staff_id, "exp": expires}
    if use != "api":
        payload["use"] = use
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    sig = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
    return f"{body}.{sig}", expires


def create_token(secret: str, staff_id: str, ttl_seconds: int) -> str:
    """Make a token for a staff member, valid for ttl_seconds."""
    return issue_token(secret, staff_id, ttl_seconds)[0]


def verify_token(secret: str, token: str, use: str = "api") -> Claims:
    """Check signature, expiry and purpose (a stream ticket is no bearer token, and the
    other way round).

    Raises:
        AuthError: malformed, forged, expired or for another use.
    """
    if len(token) > 2048 or token.count(".") != 1:
        raise AuthError("malformed token")
    body, sig = token.split(".")
    expected = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(sig, expected):
        raise AuthError("invalid token signature")
    try:
        claims = json.loads(_unb64(body))
        staff_id, expires = str(claims["sub"]), int(claims["exp"])
        token_use = str(claims.get("use", "api"))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise AuthError("malformed token") from None
    if expires < time.time():
        raise AuthError("token expired")
    if token_use != use:
        raise AuthError(f"this token is for {token_use}, not {use}")
    return Claims(staff_id, expires, token_use)
