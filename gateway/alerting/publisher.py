"""Publishes alert transitions to tillsyn/v1/<site>/alerts/<unit> (QoS 1, JSON)."""

from __future__ import annotations

import json
import logging
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config.gateway import MqttConfig
from gateway.config.loader import secret

log = logging.getLogger(__name__)


class AlertPublisher:
    """A separate paho client for outgoing alerts; paho queues while disconnected."""

    def __init__(self, cfg: MqttConfig, site: str) -> None:
        self.site = site
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"{cfg.client_id}-alerts"[:64],
                                  protocol=mqtt.MQTTv311)
        if cfg.username:
            self.client.username_pw_set(cfg.username, secret(cfg.password))
        if cfg.tls:
            self.client.tls_set(ca_certs=cfg.ca_file)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 30)
        self.cfg = cfg

    def start(self) -> None:
        """Connect in the background."""
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()

    def topic(self, unit: str) -> str:
        """The alert topic of a unit."""
        return f"tillsyn/v1/{self.site}/alerts/{unit}"

    def __call__(self, unit: str, body: dict[str, Any]) -> None:
        """Queue one alert message (QoS 1)."""
        self.client.publish(self.topic(unit), json.dumps(body, separators=(",", ":")), qos=1)
