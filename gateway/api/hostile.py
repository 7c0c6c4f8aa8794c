"""Hostile input stopped at the edge, before any route, database or file system sees it.

- A path with a control character (a percent-encoded NUL such as `/static/%00index.html`)
  is 404: no route or file has such a name.
- A query value, JSON key or JSON string with a control character (U+0000-U+001F except tab,
  newline and carriage return, and U+007F) or a lone surrogate (`"\\ud800"`, which no UTF-8
  text holds) is 422 naming where it is. PostgreSQL cannot store a NUL in text; before this
  it answered 503 "database unavailable", also to the login.
- A JSON number that is not finite (`1e309` is infinity in IEEE doubles, `NaN`,
  `Infinity`) is 422: no field means it, and JSON columns cannot hold it.
- A body that is not valid UTF-8 JSON where JSON is declared is 422; a body larger than
  `MAX_BODY` bytes is 413.

Each refusal is counted on /metrics (`tillsyn_api_rejected_total{reason}`). The body, once
read and checked, is handed on unchanged.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
MAX_BODY = 1_000_000
_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|[\ud800-\udfff]")
_BAD_PATH = re.compile(rb"[\x00-\x1f\x7f]")


class Rejected(Exception):
    """A refusal with its status, reason (for the metric) and message."""

    def __init__(self, status: int, reason: str, loc: list[str | int], msg: str) -> None:
        super().__init__(msg)
        self.status, self.reason, self.loc, self.msg = status, reason, loc, msg


def bad_char(text: str) -> str | None:
    """A description of the first character no input may hold, or None."""
    m = _BAD.search(text)
    if m is None:
        return None
    ch = m.group(0)
    kind = "a lone surrogate" if 0xD800 <= ord(ch) <= 0xDFFF else "a control character"
    return f"contains {kind} (U+{ord(ch):04X})"


def _walk(value: Any, loc: list[str | int]) -> None:
    if isinstance(value, str):
        problem = bad_char(value)
        if problem:
            raise Rejected(422, "bad_character", loc, problem)
    elif isinstance(value, float) and not math.isfinite(value):
        raise Rejected(422, "non_finite_number", loc, "a number must be finite")
    elif isinstance(value, dict):
        for k, v in value.items():
            problem = bad_char(k)
            if problem:
                raise Rejected(422, "bad_character", [*loc, k], f"key {problem}")
            _walk(v, [*loc, k])
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _walk(v, [*loc, i])


def _non_finite(text: str) -> float:
    raise ValueError(f"{text} is not a finite number")


def check_body(body: bytes) -> None:
    """Raise Rejected for a JSON body no route should see."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(422, "bad_encoding", ["body"], "the body is not UTF-8") from None
    try:
        data = json.loads(text, parse_constant=_non_finite)
    except ValueError as exc:
        if "finite" in str(exc):
            raise Rejected(422, "non_finite_number", ["body"], str(exc)) from None
        return  # malformed JSON: FastAPI answers with its own 422 naming the position
    _walk(data, ["body"])


def check_query(raw: bytes) -> None:
    """Raise Rejected for a query parameter no route should see."""
    try:
        pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True,
                          errors="surrogateescape", encoding="utf-8")
    except ValueError:
        raise Rejected(422, "bad_query", ["query"], "the query string cannot be read") \
            from None
    for name, value in pairs:
        for text in (name, value):
            problem = bad_char(text)
            if problem:
                raise Rejected(422, "bad_character", ["query", bad_name(name)], problem)


def bad_name(name: str) -> str:
    """A parameter name fit to repeat in an answer."""
    return _BAD.sub("?", name)[:64]


class HostileInput:
    """ASGI middleware applying the checks above to every HTTP request."""

    def __init__(self, app: App, count: Callable[[str], None]) -> None:
        self.app = app
        self.count = count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            if _BAD_PATH.search(unquote_to_bytes(raw_path)) or \
                    _BAD_PATH.search(scope["path"].encode("utf-8", "surrogateescape")):
                raise Rejected(404, "bad_path", ["path"], "Not Found")
            check_query(scope.get("query_string", b""))
            body, receive = await self._body(scope, receive)
        except Rejected as exc:
            self.count(exc.reason)
            await _answer(send, exc)
            return
        await self.app(scope, receive, send)

    async def _body(self, scope: Scope, receive: Receive) -> tuple[bytes, Receive]:
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip()
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE") and \
                b"content-length" not in headers and b"transfer-encoding" not in headers:
            return b"", receive
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                raise Rejected(413, "too_large", ["body"],
                               f"the body is larger than {MAX_BODY} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and ctype in (b"application/json", b""):
            check_body(body)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return body, replay


async def _answer(send: Send, exc: Rejected) -> None:
    if exc.status == 404:
        payload: dict[str, Any] = {"detail": "Not Found"}
    elif exc.status == 413:
        payload = {"detail": exc.msg}
    else:
        payload = {"detail": [{"loc": exc.loc, "msg": exc.msg, "type": "value_error"}]}
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": exc.status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
