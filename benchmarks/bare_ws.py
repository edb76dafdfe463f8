"""The baseline of the ``fanout`` benchmark: a bare ``websockets`` broadcast server.

``python benchmarks/bare_ws.py PORT`` serves, on 127.0.0.1:PORT, plain ws:// with
the same client protocol as the product's ``/ws/stream`` at its simplest: the client
sends a hello, the server answers ``{"type":"ready"}`` and from then on the socket
gets every broadcast. ``GET /broadcast?frame=TEXT`` (plain HTTP on the same port) sends
the text frame TEXT (``?bytes=B``: a padded JSON frame of exactly B bytes) to every ready socket with
:func:`websockets.broadcast` (one encoded message written to each connection, as
the product's design promises) and answers with the number of sockets.
Compression and keep-alive pings are as in the product's server: none and every 20 s.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import websockets
from websockets.asyncio.server import ServerConnection, serve

READY = json.dumps({"type": "ready"})
ready: set[ServerConnection] = set()


def alarm_frame(size: int) -> str:
    """An ``alarm.raised`` frame of exactly ``size`` bytes (ASCII), padded."""
    head = '{"type":"alarm.raised","pad":"'
    return head + "x" * max(0, size - len(head) - 2) + '"}'


async def handler(connection: ServerConnection) -> None:
    try:
        await connection.recv()  # the hello
        await connection.send(READY)
        ready.add(connection)
        await connection.wait_closed()
    except websockets.ConnectionClosed:
        pass
    finally:
        ready.discard(connection)


def process_request(connection: ServerConnection, request):
    url = urlsplit(request.path)
    if url.path != "/broadcast":
        return None  # a WebSocket handshake
    query = parse_qs(url.query)
    frame = query["frame"][0] if "frame" in query else alarm_frame(int(query.get("bytes", ["600"])[0]))
    targets = list(ready)
    websockets.broadcast(targets, frame)
    return connection.respond(HTTPStatus.OK, f"{len(targets)}\n")


async def main(port: int) -> None:
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with serve(handler, "127.0.0.1", port, process_request=process_request, compression=None,
                     max_size=16384, backlog=2048):
        print("ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
