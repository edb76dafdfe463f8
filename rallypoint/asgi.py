"""The ASGI entry point: WebSockets go to the real-time stream, everything else to Django."""

from __future__ import annotations

import logging
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rallypoint.settings")
django.setup(set_prefix=False)

from rallypoint.web.asgi_handler import ThreadedASGIHandler  # noqa: E402

django_application = ThreadedASGIHandler()

# Imported after django.setup(): the stream's modules use models, which need django.setup().
from rallypoint.realtime import socket as stream_socket  # noqa: E402
from rallypoint.web.edge import EdgeGuard  # noqa: E402

# uvicorn logs every WebSocket handshake with the client's address; we log no addresses.
logging.getLogger("uvicorn.error").addFilter(stream_socket.hide_client_address)


async def route(scope, receive, send):
    if scope["type"] == "websocket":
        await stream_socket.application(scope, receive, send)
    else:
        await django_application(scope, receive, send)


#: Sizes are checked before anything else sees a request (see rallypoint/web/edge.py).
application = EdgeGuard(route)
