"""Server-sent event streams that wake on a Broadcast and resume from an event id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from gateway.alerting.service import Broadcast

KEEP_ALIVE_S = 10


class EventStreamResponse(StreamingResponse):
    """A server-sent event stream (so the OpenAPI schema documents text/event-stream)."""

    media_type = "text/event-stream"


# OpenAPI for the stream: each event has an id, a name and JSON text as data.
SSE_RESPONSES: dict[int | str, dict[str, Any]] = {200: {
    "description": "Server-sent events; `data` is one JSON object per event",
    "content": {"text/event-stream": {"schema": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "event": {"type": "string"},
                       "data": {"type": "string"}, "retry": {"type": "integer"}}}}}}}


async def resume_from(last_event_id: str | None, since: int | None,
                      newest: Callable[[], int]) -> int:
    """Where a stream starts: the browser's Last-Event-ID, else `?since=`, else now."""
    if last_event_id is not None and last_event_id.isdigit():
        return int(last_event_id)
    if since is not None:
        return since
    return await run_in_threadpool(newest)


def sse_response(request: Request, broadcast: Broadcast, start: int, event: str,
                 fetch: Callable[[int], list[dict[str, Any]]],
                 id_of: Callable[[dict[str, Any]], int],
                 shown: Callable[[list[str]], None] | None = None,
                 resident_of: Callable[[dict[str, Any]], Any] = lambda i: i.get("resident_id"),
                 ) -> EventStreamResponse:
    """Stream `fetch(last_id)` items as events named `event`, each with its id, woken by
    `broadcast` (and a keep-alive comment every few seconds). `shown` is told each
    resident the first time the stream sends one of theirs (for the audit log)."""

    async def events() -> AsyncIterator[str]:
        last = start
        seen: set[str] = set()
        wake = broadcast.listen()
        try:
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                wake.clear()
                items = await run_in_threadpool(fetch, last)
                for item in items:
                    last = id_of(item)
                    yield f"id: {last}\nevent: {event}\ndata: {json.dumps(item)}\n\n"
                # Audited right after sending (a write: it must not hold up an alarm).
                new = sorted({str(r) for r in map(resident_of, items) if r} - seen)
                if new and shown is not None:
                    seen.update(new)
                    await run_in_threadpool(shown, new)
                if not items:
                    try:
                        await asyncio.wait_for(wake.wait(), timeout=KEEP_ALIVE_S)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
        finally:
            broadcast.forget(wake)

    return EventStreamResponse(events(), headers={"Cache-Control": "no-store",
                                                  "X-Accel-Buffering": "no"})
