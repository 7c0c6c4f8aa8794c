"""Security headers on every response.

- Pages and static files: a Content-Security-Policy with no inline script (`script-src
  'self'`), no framing (`frame-ancestors 'none'`, and X-Frame-Options for old browsers),
  no plugins, no base-tag tricks. Inline styles stay allowed: the printable reports carry
  their stylesheet inline and are shown in a srcdoc frame, which inherits the page's policy
  (so no script inside a report can run either).
- The API: `default-src 'none'` (JSON needs nothing) and `Cache-Control: no-store`: health
  data and tokens must not stay in browser or proxy caches.
- Everywhere: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`.
- The API documentation (/docs, /redoc) is served offline by the gateway (api/docs.py)
  under the same rule (no inline script); Swagger UI and ReDoc set inline styles and ReDoc
  runs its search in a blob: worker, which its policy allows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; worker-src 'self'; "
            "manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
COMMON = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
          (b"x-frame-options", b"DENY")]


def policy_for(path: str) -> tuple[bytes, bool]:
    """(Content-Security-Policy, no-store) of a path."""
    if path in ("/docs", "/redoc") or path.startswith("/docs-assets/"):
        return DOCS_CSP.encode(), False
    if path.startswith("/api/") or path in ("/healthz", "/metrics", "/openapi.json"):
        return API_CSP.encode(), True
    return PAGE_CSP.encode(), path in ("/", "/resident", "/reports")  # and /sw.js: cached


class SecurityHeaders:
    """ASGI middleware adding the headers above (never overriding a route's own)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp, no_store = policy_for(scope["path"])

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                extra = [*COMMON, (b"content-security-policy", csp)]
                if no_store:
                    extra.append((b"cache-control", b"no-store"))
                headers += [(k, v) for k, v in extra if k not in have]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
