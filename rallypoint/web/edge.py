"""The first thing every request meets: sizes are checked before anything else looks at it.

An ASGI wrapper around the whole application (``rallypoint/asgi.py``). It refuses, before Django,
the stream, logging or the database see anything of the request:

- a request target (path and query) longer than :data:`MAX_TARGET_BYTES`: ``414``;
- a header longer than :data:`MAX_HEADER_BYTES`, headers longer than :data:`MAX_HEADERS_BYTES` in
  all, or more than :data:`MAX_HEADER_COUNT` of them: ``431`` (a WebSocket upgrade is refused);
- a body larger than its limit: ``413``. The limit is :data:`MAX_API_BODY_BYTES` for the JSON API,
  ``RP``'s upload limit for ``multipart/form-data`` and ``DATA_UPLOAD_MAX_MEMORY_SIZE`` otherwise. A
  declared ``Content-Length`` is refused before a byte of the body is read; a chunked body is counted
  while Django reads it, and Django is told the client went away as soon as it exceeds the limit.

Why here: a 30,000-byte ``Host`` header used to reach Django, which logged it, and the log filter's
pattern took seconds over it while holding the whole process, alarms included. Whatever an
unauthenticated client sends now costs a bounded, small amount of work.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy as _

MAX_TARGET_BYTES = 8 * 1024
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADERS_BYTES = 32 * 1024
MAX_HEADER_COUNT = 100
MAX_API_BODY_BYTES = 1024 * 1024
#: A refused body up to this size is read (and thrown away) before the answer, so that the client, which
#: may still be sending it, gets to read the answer instead of a reset connection.
DRAIN_BYTES = 64 * 1024 * 1024


class Refusal:
    def __init__(self, status: int, text: str):
        self.status, self.text = status, text


def _language(headers: list[tuple[bytes, bytes]]) -> str:
    for key, value in headers:
        if key.lower() == b"accept-language":
            accepted = value[:200].decode("latin-1").lower()
            return "de" if accepted.startswith("de") else "en" if accepted.startswith("en") else ""
    return ""


def check_head(scope) -> Refusal | None:
    """The request line and headers, by size only."""
    target = len(scope.get("raw_path") or scope.get("path", "").encode()) + len(scope.get("query_string", b""))
    if target > MAX_TARGET_BYTES:
        return Refusal(414, _("The address is too long."))
    headers = scope.get("headers", [])
    total = 0
    for key, value in headers:
        size = len(key) + len(value)
        if size > MAX_HEADER_BYTES:
            return Refusal(431, _("A header of the request is too long."))
        total += size
    if total > MAX_HEADERS_BYTES or len(headers) > MAX_HEADER_COUNT:
        return Refusal(431, _("The headers of the request are too long."))
    return None


def body_limit(scope) -> int:
    if scope.get("path", "").startswith("/api/"):
        return MAX_API_BODY_BYTES
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-type" and value.lower().startswith(b"multipart/form-data"):
            return settings.MAX_UPLOAD_REQUEST_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def declared_length(scope) -> int | None:
    """The Content-Length, -1 if it is not a number, None if there is none (a chunked body)."""
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-length":
            return int(value) if value.isdigit() and len(value) <= 18 else -1
    return None


async def refuse(scope, send, refusal: Refusal) -> None:
    with translation.override(_language(scope.get("headers", [])) or settings.LANGUAGE_CODE):
        text = str(refusal.text)
    if scope.get("path", "").startswith("/api/"):
        body, kind = json.dumps({"detail": text}).encode(), b"application/json"
    else:
        body, kind = (text + "\n").encode(), b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": refusal.status,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


def _too_large() -> Refusal:
    return Refusal(413, _("The request is too large."))


async def _drain(receive, already: int, limit: int) -> None:
    """Read what the client still sends of a refused body, up to ``limit`` bytes in all."""
    while already <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        already += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class EdgeGuard:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = check_head(scope)
        if refusal is not None:
            if kind == "websocket":
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": 1009})  # before accept: HTTP 403
            else:
                await refuse(scope, send, refusal)
            return
        if kind == "websocket":
            await self.app(scope, receive, send)
            return
        await self._http(scope, receive, send)

    async def _http(self, scope, receive, send) -> None:
        limit, declared = body_limit(scope), declared_length(scope)
        if declared == -1:
            await refuse(scope, send, Refusal(400, _("The request's Content-Length is not a number.")))
            return
        if declared is not None and declared > limit:
            if declared <= DRAIN_BYTES:
                await _drain(receive, 0, declared)
            await refuse(scope, send, _too_large())
            return
        received = 0
        overflow = False
        started = False

        async def counting_receive():
            nonlocal received, overflow
            if overflow:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflow = True
                    if message.get("more_body", False):
                        await _drain(receive, received, DRAIN_BYTES)
                    return {"type": "http.disconnect"}  # Django stops reading and answers nothing
            return message

        async def watching_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, watching_send)
        if overflow and not started:
            await refuse(scope, send, _too_large())
