"""Local servers that stand in for the outside world: a mail server and an HTTP gateway.

Both speak the real protocol on 127.0.0.1 and a free port, run in a thread of
the test (or benchmark) process, start in milliseconds and are used as context
managers::

    with SmtpSink() as smtp, HttpSink() as gateway:
        settings.EMAIL_PORT = smtp.port
        settings.SMS_GATEWAY_URL = gateway.url("/sms")
        ...
        smtp.wait_for(3)

They can be told to fail: ``smtp.refuse("a@example.org", "550 5.1.1 unknown")``,
``smtp.fail_next("MAIL", "451 4.3.0 try later")``, ``smtp.drop_connections()``;
``gateway.script(500, 200)`` answers the next requests with these statuses.
With ``keep=False`` they only count, for benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import itertools
import json
import logging
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from tests.server import free_port

HOST = "127.0.0.1"
# aiosmtpd logs every command at INFO (with addresses): far too slow and too chatty for a sink.
logging.getLogger("mail.log").setLevel(logging.WARNING)


class _Counter:
    """A count that others can wait for."""

    def __init__(self) -> None:
        self.value = 0
        self._changed = threading.Condition()

    def add(self, n: int = 1) -> None:
        with self._changed:
            self.value += n
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.value >= count, timeout)


# --------------------------------------------------------------------------- SMTP


@dataclass
class Mail:
    """One message as the server received it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=policy.default)

    def body(self, subtype: str = "plain") -> str:
        """The decoded text or HTML part, with the line ends of a text file (SMTP sends CRLF)."""
        part = self.message.get_body(preferencelist=(subtype,))
        return part.get_content().replace("\r\n", "\n") if part is not None else ""


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802 - aiosmtpd hook
        reply = self.sink._scripted("MAIL")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd hook
        reply = self.sink._refusal(address) or self.sink._scripted("RCPT")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook
        reply = self.sink._scripted("DATA")
        if reply:
            return reply
        if self.sink.keep:
            with self.sink._lock:
                self.sink.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        self.sink._received.add()
        if self.sink.delay:  # a slow server: the message is in, the sender still waits for the answer
            await asyncio.sleep(self.sink.delay)
        return "250 Message accepted for delivery"


class _Controller(Controller):
    def __init__(self, sink: SmtpSink, **kwargs) -> None:
        super().__init__(_Handler(sink), hostname=HOST, port=sink.port, **kwargs)
        self.sink = sink

    def factory(self):
        """One protocol object per connection: count them, and keep them so that they can be cut."""
        smtpd = SMTP(self.handler, **self.SMTP_kwargs)
        self.sink._sessions.append(smtpd)
        self.sink._connections.add()
        return smtpd


class SmtpSink:
    """An SMTP server (aiosmtpd) that stores what it receives."""

    def __init__(self, *, keep: bool = True) -> None:
        self.keep = keep
        self.delay = 0.0  # seconds between taking in a message and answering 250 (may be changed any time)
        self.port = 0
        self.mails: list[Mail] = []
        self._lock = threading.Lock()
        self._refused: dict[str, list] = {}
        self._script: dict[str, deque[str]] = {}
        self._sessions: list[SMTP] = []
        self._received = _Counter()
        self._connections = _Counter()
        self._controller: _Controller | None = None

    # lifecycle
    def start(self) -> SmtpSink:
        for _attempt in range(5):  # another process may take the free port before we bind it
            self.port = free_port()
            self._controller = _Controller(self, ready_timeout=10)
            try:
                self._controller.start()
                break
            except OSError:
                self._controller = None
        if self._controller is None:
            raise RuntimeError("no free port for the SMTP sink")
        self._connections.value = 0  # the controller's own start-up probe is not a client
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # what arrived
    @property
    def received(self) -> int:
        return self._received.value

    @property
    def connections(self) -> int:
        """How many client connections were opened since start."""
        return self._connections.value

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Mail]:
        if not self._received.wait_for(count, timeout):
            raise AssertionError(f"the SMTP sink received {self.received} of {count} messages in {timeout} s")
        return self.mails

    def to(self, address: str) -> list[Mail]:
        with self._lock:
            return [m for m in self.mails if address in m.rcpt_tos]

    # how it misbehaves
    def refuse(self, address: str, reply: str = "550 5.1.1 Recipient unknown", *, times: int | None = None) -> None:
        """Answer RCPT TO for this address with ``reply`` (``times`` times, or always)."""
        with self._lock:
            self._refused[address.lower()] = [reply, times]

    def _refusal(self, address: str) -> str | None:
        with self._lock:
            entry = self._refused.get(address.lower())
            if entry is None:
                return None
            reply, times = entry
            if times is not None:
                if times <= 0:
                    return None
                entry[1] = times - 1
            return reply

    def fail_next(self, command: str, *replies: str) -> None:
        """Answer the next ``MAIL``, ``RCPT`` or ``DATA`` commands (of any client) with these replies."""
        self._script.setdefault(command, deque()).extend(replies)

    def _scripted(self, command: str) -> str | None:
        queue = self._script.get(command)
        try:
            return queue.popleft() if queue else None
        except IndexError:  # another session took the last one
            return None

    def drop_connections(self) -> None:
        """Cut every open client connection, as a server restart or an idle time-out does."""
        assert self._controller is not None
        done = threading.Event()

        def cut() -> None:
            for session in self._sessions:
                if session.transport is not None:
                    session.transport.abort()
            self._sessions.clear()
            done.set()

        self._controller.loop.call_soon_threadsafe(cut)
        done.wait(5)


# --------------------------------------------------------------------------- HTTP


@dataclass
class Request:
    """One request as the gateway received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: object = None


@dataclass
class Reply:
    status: int = 200
    body: dict | None = None
    delay: float = 0.0


@dataclass
class _State:
    keep: bool
    keep_alive: bool = True
    requests: list[Request] = field(default_factory=list)
    script: deque[Reply] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    received: _Counter = field(default_factory=_Counter)
    connections: _Counter = field(default_factory=_Counter)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    sockets: set = field(default_factory=set)


class _GatewayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as gateways do
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stalls
    state: _State  # set on the per-sink subclass

    def setup(self) -> None:
        super().setup()
        with self.state.lock:
            self.state.sockets.add(self.connection)
        self.state.connections.add()

    def finish(self) -> None:
        with self.state.lock:
            self.state.sockets.discard(self.connection)
        super().finish()

    def log_message(self, format, *args) -> None:  # noqa: A002 - the signature of http.server
        """Quiet: a test's output is not the place for request lines."""

    def do_POST(self) -> None:  # noqa: N802 - http.server hook
        self._handle()

    def do_PUT(self) -> None:  # noqa: N802 - http.server hook
        self._handle()

    def do_GET(self) -> None:  # noqa: N802 - http.server hook
        self._handle()

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        state = self.state
        with state.lock:
            reply = state.script.popleft() if state.script else Reply()
            number = next(state.ids)
        if state.keep:
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            with state.lock:
                state.requests.append(Request(self.command, self.path, dict(self.headers.items()), body, parsed))
        if reply.delay:
            time.sleep(reply.delay)
        answer = reply.body if reply.body is not None else (
            {"id": f"msg-{number}"} if 200 <= reply.status < 300 else {"error": "scripted"})
        data = json.dumps(answer).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if not state.keep_alive:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)
        state.received.add()


class HttpSink:
    """An HTTP server that records JSON requests and answers 200 ``{"id": "msg-N"}`` unless scripted."""

    def __init__(self, *, keep: bool = True, keep_alive: bool = True) -> None:
        self._state = _State(keep=keep, keep_alive=keep_alive)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self) -> HttpSink:
        handler = type("Handler", (_GatewayHandler,), {"state": self._state})
        self._server = ThreadingHTTPServer((HOST, 0), handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"http-sink-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self.drop_connections()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> HttpSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def drop_connections(self) -> None:
        """Cut every open client connection (kept-alive ones would otherwise outlive the server)."""
        with self._state.lock:
            sockets = list(self._state.sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"

    @property
    def requests(self) -> list[Request]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def received(self) -> int:
        return self._state.received.value

    @property
    def connections(self) -> int:
        return self._state.connections.value

    @property
    def keep_alive(self) -> bool:
        return self._state.keep_alive

    @keep_alive.setter
    def keep_alive(self, value: bool) -> None:
        self._state.keep_alive = value

    def script(self, *replies: int | Reply) -> None:
        """Answer the next requests with these statuses (or :class:`Reply` objects), then 200 again."""
        with self._state.lock:
            self._state.script.extend(r if isinstance(r, Reply) else Reply(r) for r in replies)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Request]:
        if not self._state.received.wait_for(count, timeout):
            raise AssertionError(f"the HTTP sink answered {self.received} of {count} requests in {timeout} s")
        return self.requests


@contextlib.contextmanager
def sinks():
    """Both sinks at once (the dispatch benchmark's set-up)."""
    with SmtpSink() as smtp, HttpSink() as http:
        yield smtp, http




# --------------------------------------------------------------------------- the worker around them


def stop_worker(worker) -> None:
    """Close the worker's sending threads and their kept connections (SMTP, HTTP, database)."""
    worker.close()


def main() -> None:
    """``python -m tests.sinks``: both sinks (counting only) for a benchmark that runs the product in
    another process. Prints ``{"smtp": port, "http": port}``, then the counts for every line read from
    stdin; stops at end of input."""
    with SmtpSink(keep=False) as smtp, HttpSink(keep=False) as http:
        print(json.dumps({"smtp": smtp.port, "http": http.port}), flush=True)
        for _line in sys.stdin:
            print(json.dumps({"smtp": smtp.received, "http": http.received}), flush=True)


if __name__ == "__main__":
    main()
