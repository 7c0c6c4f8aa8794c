"""Staff password hashing (scrypt from the standard library) and the password rule."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

N, R, P = 2**14, 8, 1  # 16 MiB of memory per hash: slow for an attacker, ~50 ms here
MIN_LENGTH = 10


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$salt$digest` (base64) for a password."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return (f"scrypt${N}${R}${P}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def verify_password(stored: str | None, password: str) -> bool:
    """Whether a password matches a stored hash. A missing hash still costs one scrypt, so
    the answer takes as long for an unknown staff id as for a wrong password."""
    parts = (stored or "").split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        hashlib.scrypt(password.encode(), salt=b"0" * 16, n=N, r=R, p=P, dklen=32)
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, expected = base64.b64decode(parts[4]), base64.b64decode(parts[5])
        digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p,
                                dklen=len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(digest, expected)


def password_problem(password: str) -> str | None:
    """Why a new password is not acceptable, or None."""
    if len(password) < MIN_LENGTH:
        return f"too short: at least {MIN_LENGTH} characters"
    if len(password) > 256:
        return "too long: at most 256 characters"
    if len(set(password)) < 4:
        return "too few different characters"
    return None
