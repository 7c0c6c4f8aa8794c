"""What the MQTT client needs of the configuration, as plain values.

The receiver process is given this rather than the pydantic `MqttConfig`: unpickling the
model would import pydantic and the whole configuration package in the child, which was
about 0.3 s of the receiver's start-up (measured with `python -X importtime`), time in
which a restarted gateway takes no messages. The secret is resolved here, in the gateway
process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config.gateway import MqttConfig


@dataclass(frozen=True)
class ClientSettings:
    """The broker connection of one MQTT client."""

    host: str
    port: int
    client_id: str
    username: str | None
    password: str | None = field(repr=False)
    tls: bool
    ca_file: str | None
    keepalive: int
    protocol: str  # "3.1.1" | "5"
    session_expiry_seconds: int
    receive_maximum: int
    shared_group: str | None

    @classmethod
    def of(cls, cfg: MqttConfig) -> ClientSettings:
        """From the validated configuration section."""
        return cls(cfg.host, cfg.port, cfg.client_id, cfg.username,
                   None if cfg.password is None else cfg.password.get_secret_value(),
                   cfg.tls, cfg.ca_file, cfg.keepalive, cfg.protocol,
                   cfg.session_expiry_seconds, cfg.receive_maximum, cfg.shared_group)
