"""Play simulated events onto a broker through the device stubs, at X times real time."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_stubs.devices import Stub, stub_for
from firmware_stubs.home import SimEvent
from gateway.config.registry import Registry


class Player:
    """Publishes device messages (QoS 1) the way the real devices would."""

    def __init__(self, broker_url: str, registry: Registry, client_id: str = "tillsyn-sim"
                 ) -> None:
        rest = broker_url.split("://", 1)[1]
        host, _, port = rest.rpartition(":")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(500)
        self.client.max_queued_messages_set(0)
        self.client.connect(host or rest, int(port) if host else 1883)
        self.client.loop_start()
        self.stubs: dict[str, Stub] = {}
        for res in registry.residents:
            for dev in res.devices:
                try:
                    self.stubs[dev.id] = stub_for(dev.profile, dev.source)
                except KeyError:
                    continue
        self.published = 0

    def message(self, ev: SimEvent) -> tuple[str, bytes]:
        """Topic and payload for one event."""
        return self.stubs[ev.device_id].event(ev.ts_ms, ev.kind, ev.value)

    def play(self, events: Sequence[SimEvent], speed: float,
             on_progress: Callable[[int], None] | None = None,
             stop: Callable[[], bool] | None = None) -> int:
        """Publish events, keeping their spacing divided by `speed` (0 = as fast as possible)."""
        if not events:
            return 0
        t0_sim = events[0].ts_ms
        t0 = time.monotonic()
        infos = []
        for i, ev in enumerate(events):
            if stop is not None and stop():
                break
            if speed > 0:
                due = t0 + (ev.ts_ms - t0_sim) / 1000 / speed
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            if ev.device_id not in self.stubs:
                continue
            topic, payload = self.message(ev)
            infos.append(self.client.publish(topic, payload, qos=1))
            self.published += 1
            if on_progress is not None and i % 50 == 0:
                on_progress(i + 1)
            if len(infos) > 2000:
                for info in infos:
                    info.wait_for_publish(30)
                infos.clear()
        for info in infos:
            info.wait_for_publish(30)
        if on_progress is not None:
            on_progress(len(events))
        return self.published

    def close(self) -> None:
        """Disconnect cleanly."""
        self.client.disconnect()
        self.client.loop_stop()
