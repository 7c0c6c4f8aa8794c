"""The publish side: alerts and the gateway's own liveness.

One paho client in the gateway process publishes alert transitions to
`tillsyn/v1/<site>/alerts/<unit>` (QoS 1, JSON; paho queues them while disconnected) and
the gateway's status to `tillsyn/v1/<site>/status`: `online` (retained) on every connect,
`offline` (retained) as the connection's last will, so the broker says it for the gateway
when the process dies or hangs (after 1.5 keep-alive intervals), and on a clean stop.
Any monitor, and the board, watch that one topic.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config.gateway import MqttConfig
from gateway.config.loader import secret

log = logging.getLogger(__name__)
ONLINE = "online"
OFFLINE = "offline"


def status_topic(site: str) -> str:
    """The gateway's liveness topic."""
    return f"tillsyn/v1/{site}/status"


class Outbound:
    """The gateway's outgoing MQTT connection (client id `<mqtt.client_id>-alerts`)."""

    def __init__(self, cfg: MqttConfig, site: str) -> None:
        self.site = site
        self.cfg = cfg
        self.status = status_topic(site)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"{cfg.client_id}-alerts"[:64],
                                  protocol=mqtt.MQTTv311)
        if cfg.username:
            self.client.username_pw_set(cfg.username, secret(cfg.password))
        if cfg.tls:
            self.client.tls_set(ca_certs=cfg.ca_file)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 30)
        self.client.will_set(self.status, OFFLINE, qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.connected = threading.Event()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any,
                    _p: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.error("alert publisher: connection refused (%s)", reason)
            return
        client.publish(self.status, ONLINE, qos=1, retain=True)
        self.connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any,
                       _p: Any) -> None:
        self.connected.clear()

    def start(self) -> None:
        """Connect in the background (the status goes `online` once connected)."""
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive)
        self.client.loop_start()

    def stop(self) -> None:
        """Say `offline`, then disconnect (a clean DISCONNECT suppresses the will)."""
        if self.connected.is_set():
            info = self.client.publish(self.status, OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(3)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def topic(self, unit: str) -> str:
        """The alert topic of a unit."""
        return f"tillsyn/v1/{self.site}/alerts/{unit}"

    def __call__(self, unit: str, body: dict[str, Any]) -> None:
        """Queue one alert message (QoS 1)."""
        self.client.publish(self.topic(unit), json.dumps(body, separators=(",", ":")), qos=1)
