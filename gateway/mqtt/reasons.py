"""What the subscribe side reports about its connection, as the ingest service counts it
(`tillsyn_mqtt_disconnects{reason}`, /healthz). Shared by both clients (wire and paho)."""

from __future__ import annotations

# Why a connection went down, as the ingest service counts it (tillsyn_mqtt_disconnects).
SESSION_TAKEN_OVER = "session_taken_over"  # MQTT 5 reason 0x8E: another client, our id
CLOSED_BY_BROKER = "closed_by_broker"  # the broker closed it (3.1.1 says no more)
TIMEOUT = "keepalive_timeout"
ERROR = "error"
# Reported as the reason of an "up" state: the broker refused N topic subscriptions
# (SUBACK failure codes: usually the ACL). Device data on them would never arrive.
SUBSCRIBE_REFUSED = "subscribe_refused"


def refused_reason(n: int) -> str:
    """The state reason that says the broker refused n subscriptions."""
    return f"{SUBSCRIBE_REFUSED}:{n}"
