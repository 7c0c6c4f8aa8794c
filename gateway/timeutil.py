"""Timestamp parsing and the trust rule for device clocks (docs/devices.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.errors import DecodeError

MAX_AHEAD = timedelta(minutes=5)
MAX_BEHIND = timedelta(days=7)


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def parse_ts(value: object) -> datetime:
    """Parse epoch seconds, epoch milliseconds or an RFC 3339 string into UTC.

    Numbers above 1e11 are taken as milliseconds (1e11 s is the year 5138).

    Raises:
        DecodeError: the value is not a usable timestamp.
    """
    if isinstance(value, bool):
        raise DecodeError(f"timestamp must be a number or RFC 3339 string, got {value!r}")
    if isinstance(value, int | float):
        seconds = value / 1000.0 if abs(value) > 1e11 else float(value)
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise DecodeError(f"timestamp {value!r} out of range") from exc
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        # Python's fromisoformat accepts at most 6 fractional digits; LNSs send 9.
        if "." in text:
            head, _, rest = text.partition(".")
            digits = ""
            i = 0
            while i < len(rest) and rest[i].isdigit():
                digits += rest[i]
                i += 1
            text = f"{head}.{digits[:6].ljust(6, '0')}{rest[i:]}"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise DecodeError(f"timestamp {value!r} is not RFC 3339") from exc
        if parsed.tzinfo is None:
            raise DecodeError(f"timestamp {value!r} has no time zone offset")
        return parsed.astimezone(UTC)
    raise DecodeError(f"timestamp must be a number or RFC 3339 string, got {type(value).__name__}")


def trusted_ts(device_ts: datetime | None, received_at: datetime) -> tuple[datetime, bool]:
    """Return the timestamp to store and whether the device clock was overridden.

    A device time more than 5 minutes ahead of or 7 days behind the receive time is
    replaced by the receive time and flagged.
    """
    if device_ts is None:
        return received_at, False
    if device_ts - received_at > MAX_AHEAD or received_at - device_ts > MAX_BEHIND:
        return received_at, True
    return device_ts, False
