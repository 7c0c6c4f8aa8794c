"""The gateway's VAPID key pair (RFC 8292), made once and kept in the database like the
token key, so every worker signs with the same key and phones stay subscribed across
restarts."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02

from gateway.storage.store import Store


def _new_private_pem() -> str:
    v = Vapid02()
    v.generate_keys()
    return str(v.private_pem().decode())


def vapid(store: Store) -> Vapid02:
    """The signing key (created on first use)."""
    pem = store.setting("vapid_private_key", _new_private_pem)
    assert pem is not None
    return Vapid02.from_pem(pem.encode())


def public_key(key: Vapid02) -> str:
    """The application server key a browser subscribes with: the uncompressed P-256 point,
    base64url without padding."""
    raw = key.public_key.public_bytes(serialization.Encoding.X962,
                                      serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
