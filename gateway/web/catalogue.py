"""The one message catalogue (static/messages.json), read on the server too: push
notifications, and room names, speak the same words as the pages."""

from __future__ import annotations

import json
from functools import cache
from typing import Literal

from gateway.config.registry import Registry
from gateway.web import STATIC

Lang = Literal["sv", "en"]


@cache
def _messages() -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads(
        (STATIC / "messages.json").read_text(encoding="utf-8"))
    return data


class Texts:
    """Texts of one language."""

    def __init__(self, lang: Lang = "sv") -> None:
        self.lang = lang
        self.messages = _messages()[lang]

    def get(self, key: str) -> str:
        """The text of a key (the key itself if the catalogue lacks it)."""
        return self.messages.get(key, key)

    def room(self, room: str | None, registry: Registry) -> str:
        """A room's name: the registry's own names first, then the catalogue of standard
        rooms, else the id as given."""
        if not room:
            return ""
        own = registry.room_names().get(room)
        if own is not None:
            return own[self.lang]
        return self.messages.get("room_" + room, room)
