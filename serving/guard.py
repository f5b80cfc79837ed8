"""The service's front door, an ASGI middleware in front of BentoML's handlers.

- Authentication before anything is read: a POST to an API endpoint without a valid key of the
  right role is answered 401/403 before a byte of its body is read; repeated failures from one
  address are slowed down (`serving.auth.FailedAuth`).
- A body size limit (`CREDITGUARD_MAX_BODY_BYTES`, default 1 MiB): a larger declared length is
  refused with 413 before reading; a body that streams past it is cut off with 413 too.
- Security headers on every response (`nosniff`, `DENY` framing, no referrer), and a strict
  Content-Security-Policy on the officer's page: it loads only what the service itself ships.
- No third-party page on the service's origin: BentoML's Swagger UI at `/` (which loads Google
  Tag Manager and other outside scripts) and its assets are not served; `/` redirects to the
  officer's page. The OpenAPI document stays at `/docs.json`.
- Request metrics with a bounded label set: every path the service does not serve is counted
  as `other`, so random paths cannot grow `/metrics` (BentoML's own metrics, labelled by the raw
  path, are switched off in the service's configuration).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.auth import FailedAuth, KeyRing

MAX_BODY_BYTES = 1 << 20
# Every response; the page's CSP names nothing but the service itself
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
PAGE_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    b"frame-ancestors 'none'"
)
HIDDEN = ("/static_content", "/assets", "/schema.json")  # BentoML's Swagger UI and its assets


def max_body_bytes() -> int:
    return int(os.environ.get("CREDITGUARD_MAX_BODY_BYTES", MAX_BODY_BYTES))


async def _answer(
    send: Send, status: int, body: dict[str, Any], headers: list[Any] | None = None
) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                *HEADERS,
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


class Guard:
    """See the module's docstring. `actions` maps an API path to the action its role must allow;
    `known` lists every path the service serves (anything else is 'other' in the metrics)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyRing,
        actions: dict[str, str],
        known: tuple[str, ...],
        failures: FailedAuth | None = None,
        metrics: Callable[[str, int, float], None] | None = None,
        exposition: Callable[[], tuple[bytes, str]] | None = None,
    ) -> None:
        self.app = app
        self.keys = keys
        self.actions = actions
        self.known = known
        self.failures = failures or FailedAuth()
        self.metrics = metrics
        self.exposition = exposition  # the /metrics page

    def endpoint(self, path: str) -> str:
        """The metrics label of a path: itself when the service serves it, else 'other'."""
        if path in self.known or path in self.actions or path.startswith("/ui/"):
            return "/ui/" if path.startswith("/ui/") else path
        return "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, start = str(scope.get("path", "")), time.perf_counter()
        status = 0

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                extra = list(HEADERS)
                if path.startswith("/ui"):
                    extra.append((b"content-security-policy", PAGE_CSP))
                names = {k.lower() for k, _ in message.get("headers", [])}
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        *(h for h in extra if h[0] not in names),
                    ],
                }
            await send(message)

        try:
            await self._handle(scope, receive, sent, path)
        finally:
            if self.metrics is not None and path != "/metrics":
                self.metrics(self.endpoint(path), status, time.perf_counter() - start)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        method = scope.get("method", "GET")
        if path == "/" and method in ("GET", "HEAD"):
            await send(
                {
                    "type": "http.response.start",
                    "status": 302,
                    "headers": [(b"location", b"/ui/"), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        if path == "/metrics" and method in ("GET", "HEAD") and self.exposition is not None:
            body, kind = self.exposition()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", kind.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body if method == "GET" else b""})
            return
        if path.startswith(HIDDEN) or path == "/":
            await _answer(send, 404, {"error": f"not found: {path}"})
            return
        if method == "POST" and path in self.actions:
            headers = dict(scope.get("headers", []))
            authorization = headers.get(b"authorization")
            code, detail = self.keys.check(
                authorization.decode("latin-1") if authorization is not None else None,
                self.actions[path],
            )
            address = (scope.get("client") or ("unknown", 0))[0]
            if code:
                wait = self.failures.penalty(address)
                if wait:
                    await asyncio.sleep(wait)
                await _answer(send, code, {"error": detail})
                return
            # a success does not clear the address's failures: a valid key between wrong ones
            # must not reset the count (they age out of the window instead)
            declared = headers.get(b"content-length")
            limit = max_body_bytes()
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await _answer(send, 413, {"error": f"request body over {limit:,} bytes"})
                return
            read = await _read_body(receive, limit)
            if read is None:
                await _answer(send, 413, {"error": f"request body over {limit:,} bytes"})
                return
            await self.app(scope, _replay(read), send)
            return
        await self.app(scope, receive, send)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes `limit` bytes."""
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _replay(body: bytes) -> Receive:
    """A `receive` that hands the app the body already read, then waits for a disconnect."""
    done = False

    async def receive() -> Message:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the app asked again: the client will disconnect
        return {"type": "http.disconnect"}

    return receive
