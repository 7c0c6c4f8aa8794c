"""A plain paho publisher for tests (QoS 1, waits for every PUBACK)."""

from __future__ import annotations

from collections.abc import Iterable

import paho.mqtt.client as mqtt


class Publisher:
    """Publish and wait until the broker has taken every message."""

    def __init__(self, url: str, client_id: str = "test-publisher",
                 username: str | None = None, password: str | None = None,
                 ca_file: str | None = None) -> None:
        host, port = url.split("://", 1)[1].rsplit(":", 1)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        if url.startswith("mqtts://"):
            self.client.tls_set(ca_certs=ca_file)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, int(port))
        self.client.loop_start()

    def publish_many(self, messages: Iterable[tuple[str, bytes | str]], qos: int = 1,
                     retain: bool = False) -> int:
        infos = [self.client.publish(t, p, qos=qos, retain=retain) for t, p in messages]
        for info in infos:
            info.wait_for_publish(timeout=60)
        return len(infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
