"""The subscribe side with paho-mqtt (MQTT 5, and the in-process receiver): a persistent
session, manual acknowledgement (a PUBACK only when the gateway has committed the
message) and the device topics, with the reasons a connection went down."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.ingest.settings import ClientSettings
from gateway.mqtt import wire
from gateway.mqtt.reasons import CLOSED_BY_BROKER, SESSION_TAKEN_OVER, TIMEOUT, refused_reason

log = logging.getLogger(__name__)

# generation, up, session present, why it went down ("" when up)
Connected = Callable[[int, bool, bool, str], None]
RawTuple = tuple[str, bytes, int, int, bool, int]


class MqttSession:
    """A paho client with a persistent session, manual acknowledgement and our topics."""

    def __init__(self, cfg: ClientSettings, topics: list[str],
                 on_message: Callable[[int, RawTuple], None],
                 on_state: Connected) -> None:
        self.cfg = cfg
        self.topics = topics
        self.generation = 0
        self._on_message_cb = on_message
        self._on_state = on_state
        v5 = cfg.protocol == "5"
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                             protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                             clean_session=None if v5 else False, manual_ack=True)
        if cfg.username:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls:
            client.tls_set(ca_certs=cfg.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self.client = client
        self.stopping = False

    def start(self) -> None:
        """Connect in the background (retrying) and run paho's network thread."""
        if self.cfg.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.cfg.session_expiry_seconds
            props.ReceiveMaximum = self.cfg.receive_maximum
            self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive,
                                      clean_start=False, properties=props)
        else:
            self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect cleanly; the broker keeps whatever was not acknowledged."""
        self.stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    def ack(self, generation: int, mids: list[int]) -> None:
        """Acknowledge committed messages of the current connection only."""
        if generation != self.generation:
            return  # the broker redelivers them on the new connection
        for mid in mids:
            self.client.ack(mid, 1)

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any,
                    _p: Any) -> None:
        if reason.is_failure:
            log.error("MQTT connection refused by %s:%s: %s", self.cfg.host, self.cfg.port,
                      reason)
            return
        self.generation += 1
        present = bool(flags.session_present)
        log.info("MQTT connected to %s:%s (session present: %s)", self.cfg.host, self.cfg.port,
                 present)
        self._on_state(self.generation, True, present, "")
        opts: Any = SubscribeOptions(qos=1) if self.cfg.protocol == "5" else 1
        for chunk in wire.subscription_chunks(self.topics, self.cfg.shared_group):
            client.subscribe([(t, opts) for t in chunk])
        log.info("subscribed to %d device topics", len(self.topics))

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, codes: Any, _p: Any) -> None:
        refused = sum(1 for rc in codes if getattr(rc, "is_failure", False))
        if refused:
            log.error("the broker refused %d topic subscriptions (SUBACK %d): check the ACL "
                      "for client %s", refused, mid, self.cfg.client_id)
            self._on_state(self.generation, True, True, refused_reason(refused))

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        value = getattr(reason, "value", reason)
        why = SESSION_TAKEN_OVER if value == 142 else \
            TIMEOUT if value == 141 else CLOSED_BY_BROKER
        self._on_state(self.generation, False, False, "" if self.stopping else why)
        if not self.stopping:
            log.warning("MQTT connection lost (%s); reconnecting with back-off 1-30 s", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        # Hot path: one tuple, one call.
        self._on_message_cb(self.generation, (msg.topic, msg.payload, msg.mid, msg.qos,
                                              bool(msg.dup), int(time.time() * 1000)))
