"""The ASGI entry point: WebSockets go to the real-time stream, everything else to Django."""

from __future__ import annotations

import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rallypoint.settings")
django_application = get_asgi_application()

# Imported after get_asgi_application(): the stream's modules use models, which need django.setup().
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
