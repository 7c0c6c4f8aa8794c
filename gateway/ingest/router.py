"""Map an exact MQTT topic to the registered device and the decoder for it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the receiver process unpickles routes without the configuration models
    from gateway.config.registry import Device, Registry, Resident
    from gateway.profiles.loader import ProfileLibrary
    from gateway.profiles.model import Channel


@dataclass(frozen=True, slots=True)
class Route:
    """Everything ingest needs to know about one topic."""

    resident_id: str
    device_id: str
    room: str | None
    decoder: str
    options: Mapping[str, object]  # read-only, built once: no per-message copying
    place: tuple[str, str, str | None] = field(init=False, compare=False)  # built once too

    def __post_init__(self) -> None:
        object.__setattr__(self, "place", (self.resident_id, self.device_id, self.room))


class Router:
    """Exact-topic lookup table built from the registry (O(1) per message)."""

    def __init__(self, registry: Registry, library: ProfileLibrary) -> None:
        self._routes: dict[str, Route] = {}
        # Consent per resident as the registry gives it: the starting point of the writer's
        # copy (Pipeline.consent), which applies it, so a change takes effect for the next
        # message. Not pickled: the receiver process does not use it.
        self.consent = {res.id: consent_kinds(res.consent) for res in registry.residents}
        for resident, device in registry.devices():
            profile = library.get(device.profile)
            for channel in profile.channels:
                self._routes[device.source + channel.suffix] = _route(resident, device, channel)

    def __getstate__(self) -> dict[str, tuple[object, ...]]:
        # For the receiver process: MappingProxyType does not pickle, so send plain dicts.
        return {topic: (r.resident_id, r.device_id, r.room, r.decoder, dict(r.options))
                for topic, r in self._routes.items()}

    def __setstate__(self, state: dict[str, tuple[Any, ...]]) -> None:
        self._routes = {topic: Route(res, dev, room, decoder, MappingProxyType(options))
                        for topic, (res, dev, room, decoder, options) in state.items()}
        self.consent = {}

    def lookup(self, topic: str) -> Route | None:
        """Route for a topic, or None for a device not in the registry."""
        return self._routes.get(topic)

    def topics(self) -> list[str]:
        """Every topic to subscribe to."""
        return sorted(self._routes)

    def topics_by_device(self) -> dict[str, list[str]]:
        """Each device's topics, in its profile's channel order (for the broker ACL)."""
        out: dict[str, list[str]] = {}
        for topic, route in self._routes.items():
            out.setdefault(route.device_id, []).append(topic)
        return out

    def __len__(self) -> int:
        return len(self._routes)


def _route(resident: Resident, device: Device, channel: Channel) -> Route:
    return Route(resident.id, device.id, device.room, channel.decoder,
                 MappingProxyType(dict(channel.options)))


def consent_kinds(kinds: Iterable[str]) -> frozenset[str]:
    """The observation kinds a consent list allows (a geofence transition is derived from
    position, so consent to position covers it)."""
    allowed = set(kinds)
    if "position" in allowed:
        allowed.add("geofence")
    return frozenset(allowed)
