"""The gateway's MQTT transport, in one place.

Subscribe side (device messages in): `wire_client.WireSession`, Tillsyn's own MQTT 3.1.1
client on one socket (the default, in the receiver process), and
`paho_session.MqttSession`, paho-mqtt for MQTT 5 and for the in-process receiver. Both
keep a persistent session, subscribe to the device topics at QoS 1, acknowledge a message
only when the gateway says it is committed, and report their connection through the same
states and reasons (`reasons.py`). `wire.py` encodes and parses the packets.

Publish side (alerts and liveness out): `outbound.Outbound`, with the retained status
topic and the last will that says `offline` for a gateway that died or hangs.

The ingest service sees the subscribe side only through `Subscriber` (the receivers in
`gateway/ingest/receiver.py` implement it) and alerting sees the publish side only
through `Publisher`, so either client can be swapped or tested on its own (the wire client
against a scripted peer in tests/test_wire_client.py, without a broker).
"""

from __future__ import annotations

from typing import Any, Protocol


class Subscriber(Protocol):
    """Receives device messages for the ingest service (deliver/connected callbacks)."""

    def start(self) -> None:
        """Connect in the background and keep reconnecting."""

    def stop(self) -> None:
        """Disconnect; the broker keeps whatever was not acknowledged."""

    def ack(self, generation: int, mids: list[int]) -> None:
        """Acknowledge committed messages of that connection."""


class Publisher(Protocol):
    """Publishes alert transitions and the gateway's status."""

    def start(self) -> None:
        """Connect in the background; status `online` once connected."""

    def stop(self) -> None:
        """Status `offline`, then disconnect."""

    def __call__(self, unit: str, body: dict[str, Any]) -> None:
        """Queue one alert message for a unit's topic (QoS 1)."""
