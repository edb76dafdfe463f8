"""The WebSocket protocol of ``rallypoint run``: uvicorn's sans-I/O one, plus one ASGI extension.

An alarm goes to every socket of the process at once. Through plain ASGI each
socket needs its own writer task to be woken, switched to and run for every
frame: measured at 2,000 sockets, that added about 7 µs per socket to the
roughly 12 µs of framing and writing. So this protocol offers, in
``scope["extensions"]``, the extension
:data:`SEND_NOW`: a function that writes one text frame to the socket at once,
in the caller's own turn of the event loop, and returns ``True``. It refuses
(returns ``False``, nothing written) whenever the ordinary ASGI ``send`` would
have to wait or fail: before the handshake is done, after a close, and while the
transport's buffer is over its high-water mark (a slow client). The caller then
uses ``send`` as usual, which waits for the client.

An application that finds no such extension (another ASGI server) uses ``send``
for everything; the extension changes the speed, not what is sent.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.protocol import State

#: The key in ``scope["extensions"]``; its value is ``send_now(data: bytes) -> bool`` (UTF-8 text).
SEND_NOW = "rallypoint.send_now"


#: uvicorn's own attributes that :meth:`StreamProtocol.send_now` reads (not a public API of uvicorn).
_NEEDED = ("handshake_complete", "close_sent", "disconnected", "writable", "conn", "transport")


class StreamProtocol(WebSocketsSansIOProtocol):
    async def run_asgi(self) -> None:
        # A later uvicorn that renamed what send_now reads gets no extension: everything goes through
        # the ordinary ASGI send, slower but correct.
        if all(hasattr(self, name) for name in _NEEDED) and isinstance(self.writable, asyncio.Event):
            self.scope["extensions"][SEND_NOW] = self.send_now
        await super().run_asgi()

    def send_now(self, data: bytes) -> bool:
        """Write ``data`` (UTF-8) as one text frame now, if the connection takes it without waiting."""
        if (not self.handshake_complete or self.close_sent or self.disconnected or not self.writable.is_set()
                or self.conn.state is not State.OPEN or self.transport.is_closing()):
            return False
        try:
            self.conn.send_text(data)
        except InvalidState:
            return False
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True
