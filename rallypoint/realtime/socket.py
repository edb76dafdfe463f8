"""The WebSocket endpoint ``/ws/stream``: a raw ASGI app in front of Django (see ``rallypoint/asgi.py``).

Handshake: the Host must be in ``RP_ALLOWED_HOSTS`` and the Origin our own
(the Host's, ``RP_BASE_URL`` or ``RP_CSRF_TRUSTED_ORIGINS``), the session cookie must belong to a signed-in
person who may work at the site chosen in the session; otherwise the upgrade
is refused (HTTP 403). Nothing is read from the URL.

Protocol (JSON text messages):

- client → ``{"type": "hello", "last_seq": N | null, "site": S | null}`` first, within 10 s;
  then ``{"type": "ping"}`` (answered ``{"type": "pong"}``),
  ``{"type": "seen", "alarm": id}`` (the page showed the alarm: in-app receipt),
  ``{"type": "answer", "ref": r, "alarm": id, "answer": "accepted" | "declined"}`` and
  ``{"type": "status", "ref": r, "alarm": id, "status": …, "person"?: membership id,
  "assembly_point"?: id, "zone"?: id, "note"?: text, "at"?: ISO time, "key"?: client key}``, each answered
  ``{"type": "ack", "ref": r, …}`` or ``{"type": "refused", "ref": r, "reason": code, "detail"?: text}``
  (see :data:`rallypoint.realtime.access.REQUESTS`).
- server → the missed events of the site (seq > N) the person may see, then
  ``{"type": "ready", "site": S, "seq": M, "complete": bool}``, then live events
  in seq order, without gaps or duplicates, and every 15 s (the sockets spread over those seconds)
  ``{"type": "heartbeat", "seq": M}`` (every event up to M has been sent or is
  not for this person). ``complete: false``: more was missed than is replayed
  (or the number is unknown here) — reload the page's data.
- An event frame is :func:`rallypoint.realtime.events.as_frame`.

Fan-out: one hub subscription per process (:class:`Fanout`); per site one
:class:`SiteFeed` puts the site's events in seq order (a missing number is
read from the database) and encodes each event ONCE; the same text goes to
every local socket allowed to see it: written at once through the server's
``rallypoint.send_now`` extension (:mod:`rallypoint.realtime.wsprotocol`) when
the socket has nothing waiting and its client keeps up, otherwise into the
socket's bounded outbox, which its writer task sends in order. A socket whose
outbox overflows (a slow client) is closed; it reconnects and replays.
Every few seconds all sockets of the process are re-checked in one batch
(session still there, not expired, user and membership active, same site and
role) and each site's last number is compared with the database, so events
committed by another process without a shared hub arrive as well. The re-check
lets an alarm's fan-out go first: it waits up to a second after an alarm event
went out to its recipients, never longer per round.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from django.conf import settings
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

from rallypoint.lib.dbpool import before_work, give_back
from rallypoint.lib.groupcommit import group_here
from rallypoint.realtime import access, events, hub
from rallypoint.realtime.access import Viewer
from rallypoint.realtime.gcpolicy import GcPolicy
from rallypoint.realtime.wsprotocol import SEND_NOW
from rallypoint.tenants.roles import permissions_for

log = logging.getLogger("rallypoint.realtime")

PATH = "/ws/stream"
HEARTBEAT_SECONDS = 15  # each socket's heartbeat goes out in "its" second of the interval
#: Session re-check, for all sockets of the process at once; without a shared hub (no Redis, or
#: Redis down) also the comparison of each site's last number with the database.
RECHECK_SECONDS = 2.0
#: After an alarm's event went out to its recipients, the session re-check waits this long before its
#: next batch, so that the fan-out and the phones' first answers have the machine first (a re-check of
#: 10,000 sockets is ~0.2 s of CPU); at most this long per round in all, so a sign-out still closes the
#: socket within RECHECK_SECONDS + RECHECK_YIELD_SECONDS + the re-check's own time.
RECHECK_YIELD_SECONDS = 1.0
#: With the Redis hub up, the comparison with the database runs this often (pub/sub may lose a
#: message), and at once after the subscription was lost and is back.
SAFETY_CATCH_UP_SECONDS = 30.0
HELLO_SECONDS = 10.0
#: Messages waiting for one socket; more means the client does not keep up: it is closed.
OUTBOX_LIMIT = 200
#: A client that missed more events than this gets ``complete: false`` instead of a replay.
REPLAY_LIMIT = 1000
#: How long a feed waits for a frame that is out of order before reading it from the database.
GAP_WAIT_SECONDS = 0.2
MESSAGE_LIMIT = 1024
#: Answers and reports one socket may have under way at once.
REQUESTS_IN_FLIGHT = 8
DB_THREADS = 4
RECHECK_BATCH = 1000

# Close codes (4000–4999 are the application's): (code, reason).
PROTOCOL_ERROR = (4000, "protocol_error")
SIGNED_OUT = (4001, access.SIGNED_OUT)
NO_ACCESS = (4003, access.NO_ACCESS)
TOO_SLOW = (4008, "too_slow")
CHANGED = (4009, access.CHANGED)
UNAVAILABLE = (1011, "unavailable")
CLOSE_FOR = {access.SIGNED_OUT: SIGNED_OUT, access.NO_ACCESS: NO_ACCESS, access.CHANGED: CHANGED}

_slots = itertools.count()
_executor = ThreadPoolExecutor(DB_THREADS, thread_name_prefix="stream-db")
#: Answers and reports wait in their thread until their group is written (rallypoint.lib.groupcommit):
#: many threads, mostly waiting, kept apart from the handshakes' and re-checks' ones.
REQUEST_THREADS = 32
_request_executor = ThreadPoolExecutor(REQUEST_THREADS, thread_name_prefix="stream-req", initializer=group_here)


def encode(frame: dict) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


PONG = encode({"type": "pong"})


def _in_thread(fn, *args):
    before_work()
    try:
        return fn(*args)
    finally:
        give_back()  # PostgreSQL: the pool's connection is free for requests while this thread idles


async def run_db(fn, *args, executor: ThreadPoolExecutor = _executor):
    """Run ORM code in the endpoint's thread pool (never in the event loop)."""
    return await asyncio.get_running_loop().run_in_executor(executor, _in_thread, fn, *args)


# ---------------------------------------------------------------- handshake


def hide_client_address(record: logging.LogRecord) -> bool:
    """Logging filter for ``uvicorn.error``: its handshake lines name the client's address (personal data)."""
    if isinstance(record.msg, str) and record.msg.startswith('%s - "WebSocket') and record.args:
        record.args = ("client", *tuple(record.args)[1:])
    return True


def _origin(url: str) -> str:
    """``scheme://host[:port]`` in lower case, without the scheme's default port."""
    parts = urlsplit(url.strip().lower())
    netloc = parts.netloc.rsplit("@", 1)[-1]
    default = {"https": ":443", "http": ":80"}.get(parts.scheme, "")
    if default and netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return f"{parts.scheme}://{netloc}"


def origin_allowed(origin: str, own: str = "") -> bool:
    """The page that opens the socket must be our own, as Django's CSRF check treats origins: the
    request's own origin ``own`` (its Host, already checked against ALLOWED_HOSTS), ``RP_BASE_URL``
    and ``RP_CSRF_TRUSTED_ORIGINS`` (which may use ``https://*.example.com``)."""
    if not origin or origin == "null":
        return False
    candidate = _origin(origin)
    scheme, _, netloc = candidate.partition("://")
    for allowed in [own, settings.BASE_URL, *settings.CSRF_TRUSTED_ORIGINS]:
        if not allowed:
            continue
        expected = _origin(allowed)
        if "*" not in expected:
            if candidate == expected:
                return True
            continue
        allowed_scheme, _, pattern = expected.partition("://")
        if allowed_scheme == scheme and pattern.startswith("*.") and is_same_domain(netloc, pattern[1:]):
            return True
    return False


def _header(scope, name: bytes) -> str:
    values = [value.decode("latin-1") for key, value in scope.get("headers", []) if key.lower() == name]
    return "; ".join(values) if name == b"cookie" else (values[0] if values else "")


def handshake_allowed(scope) -> bool:
    host = _header(scope, b"host")
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    return origin_allowed(_header(scope, b"origin"), f"{scheme}://{host}")


def session_key(scope) -> str:
    return parse_cookie(_header(scope, b"cookie")).get(settings.SESSION_COOKIE_NAME, "")


async def application(scope, receive, send) -> None:
    """The ASGI app for ``scope["type"] == "websocket"``."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    viewer = None
    if scope.get("path") == PATH and handshake_allowed(scope) and (key := session_key(scope)):
        try:
            viewer = await run_db(access.viewer_for_session, key)
        except Exception:
            log.exception("stream handshake failed")
    if viewer is None:
        await send({"type": "websocket.close"})  # before accept: the upgrade is answered with 403
        return
    await send({"type": "websocket.accept"})
    fanout = Fanout.current()
    connection = Connection(fanout, viewer, receive, send, scope.get("extensions", {}).get(SEND_NOW))
    fanout.connections.add(connection)
    try:
        await connection.run()
    finally:
        fanout.connections.discard(connection)


# ---------------------------------------------------------------- one socket


#: Numbers a client sends (a sequence number, an alarm id) are database integers: 0 ≤ n < 2⁶³.
MAX_NUMBER = 2**63 - 1


def _number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_NUMBER


class BadHello(ValueError):
    pass


def _hello_position(hello: dict, site_id: int) -> int | None:
    """The client's last seq if it is one of this site's numbers; None for a fresh start (no number, or a
    number of another site). :class:`BadHello` when a number is there but unreadable (-1, 1.5, "5", true):
    treating it as a fresh start would tell a faulty client it missed nothing."""
    last, site = hello.get("last_seq"), hello.get("site")
    if (last is not None and not _number(last)) or (site is not None and not _number(site)):
        raise BadHello
    if last is None or (site is not None and site != site_id):
        return None
    return last


class Connection:
    """One socket: its viewer, its outbox, and the reader and writer of the connection."""

    def __init__(self, fanout: Fanout, viewer: Viewer, receive, send, send_now=None):
        self.fanout, self.viewer, self._receive, self._send = fanout, viewer, receive, send
        self._send_now = send_now  # the server's SEND_NOW extension, if it has it
        self.sending = False  # an ASGI send of this socket is under way (it may be waiting for the client)
        self.feed: SiteFeed | None = None
        self.live = False
        self.upto = 0  # once live: every event up to here has been sent or is not for this socket
        self.buffer: list[tuple[int, str]] = []  # live frames that came during the replay
        self.outbox: deque[str] = deque()
        self.wake = asyncio.Event()
        self.closing: tuple[int, str] | None = None
        self.gone = False  # the client has disconnected
        self.seen: set[int] = set()
        self.in_flight = 0  # requests (answers, reports) of this socket being written
        self.slot = next(_slots) % HEARTBEAT_SECONDS  # the second of the heartbeat interval that is this socket's

    # Called by the fan-out, in the event loop, in seq order; never blocks.
    def offer(self, seq: int, text: str, data: bytes | None = None) -> None:
        if not self.live:
            if self.closing is None:
                self.buffer.append((seq, text))
                if len(self.buffer) > OUTBOX_LIMIT + REPLAY_LIMIT:
                    self.close(*TOO_SLOW)
            return
        # A feed that was behind the database (events of another process not read yet) brings
        # what this socket's replay has already sent.
        if seq > self.upto:
            self.upto = seq
            self.push(text, data)

    def push(self, text: str, data: bytes | None = None) -> bool:
        """Send ``text`` after everything before it; True if it was written at once (``data``: its UTF-8)."""
        if self.closing is not None:
            return False
        # Nothing waiting and no send under way: write it now, without waking the writer task
        # (the server refuses while the client is slow; then it waits in the outbox like the rest).
        if not self.outbox and not self.sending and self._send_now is not None \
                and self._send_now(text.encode() if data is None else data):
            return True
        if len(self.outbox) >= OUTBOX_LIMIT:
            self.close(*TOO_SLOW)
            return False
        self.outbox.append(text)
        self.wake.set()
        return False

    def go_live(self, upto: int) -> None:
        """After the replay up to ``upto``: send what came meanwhile, then every new event."""
        buffered, self.buffer = self.buffer, []
        self.live, self.upto = True, upto
        for seq, text in buffered:
            self.offer(seq, text)

    def close(self, code: int, reason: str) -> None:
        """Close with this code: nothing more reaches the client."""
        if self.closing is None:
            self.closing = (code, reason)
            self.fanout.leave(self)
            self.outbox.clear()
            self.buffer.clear()
            self.wake.set()

    async def run(self) -> None:
        try:
            hello = await asyncio.wait_for(self._read_hello(), HELLO_SECONDS)
        except TimeoutError:
            hello = None
        if self.gone:
            return
        position = None
        if hello is None:
            self.close(*PROTOCOL_ERROR)
        else:
            try:
                position = _hello_position(hello, self.viewer.site_id)
            except BadHello:
                self.close(*PROTOCOL_ERROR)
        reader = asyncio.create_task(self._read())
        try:
            if self.closing is None:
                await self._join(position)
            await self._write()
        except OSError:  # the client went away while we were sending (uvicorn's ClientDisconnected)
            self.gone = True
        finally:
            reader.cancel()
            self.fanout.leave(self)

    async def _join(self, after: int | None) -> None:
        try:
            await self.fanout.join(self, after)
        except OSError:
            raise
        except Exception:  # the database is unreachable: the client tries again later
            log.exception("stream replay failed", extra={"site_id": self.viewer.site_id})
            self.close(*UNAVAILABLE)

    async def send_text(self, text: str) -> None:
        self.sending = True
        try:
            await self._send({"type": "websocket.send", "text": text})
        finally:
            self.sending = False

    async def _write(self) -> None:
        while True:
            while not self.outbox and self.closing is None and not self.gone:
                self.wake.clear()
                await self.wake.wait()
            if self.gone:
                return
            if self.closing is not None:
                code, reason = self.closing
                await self._send({"type": "websocket.close", "code": code, "reason": reason})
                return
            await self.send_text(self.outbox.popleft())

    async def _next_message(self) -> dict | None:
        """The client's next message as a dict; None when it has gone or sent something that is not one."""
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                self.gone = True
                self.wake.set()
                return None
            if message["type"] != "websocket.receive":
                continue
            text = message.get("text")
            if text is None or len(text) > MESSAGE_LIMIT:
                return None
            try:
                data = json.loads(text)
            except ValueError:
                return None
            return data if isinstance(data, dict) else None

    async def _read_hello(self) -> dict | None:
        data = await self._next_message()
        return data if data is not None and data.get("type") == "hello" else None

    async def _read(self) -> None:
        while True:
            data = await self._next_message()
            if data is None:
                if not self.gone:
                    self.close(*PROTOCOL_ERROR)
                return
            kind = data.get("type")
            if kind == "ping":
                self.push(PONG)
            elif kind == "seen":
                self._seen(data.get("alarm"))
            elif kind in access.REQUESTS:
                self._request(kind, data)
            # "hello" again, or a type of a later version: ignored

    def _request(self, kind: str, data: dict) -> None:
        """An answer or a status report sent over the socket (the app has it open anyway: no request, no
        sign-in per answer). Answered ``ack`` or ``refused`` with the client's ``ref``; at most
        REQUESTS_IN_FLIGHT at a time per socket (more are refused ``busy``)."""
        ref = data.get("ref")
        if not (isinstance(ref, str) and 0 < len(ref) <= 64) or self.closing is not None:
            return
        if self.in_flight >= REQUESTS_IN_FLIGHT:
            self.push(encode({"type": "refused", "ref": ref, "reason": "busy"}))
            return
        self.in_flight += 1
        self.fanout.spawn(self._answer_request(kind, data, ref))

    async def _answer_request(self, kind: str, data: dict, ref: str) -> None:
        try:
            reply = await run_db(access.REQUESTS[kind], self.viewer, data, executor=_request_executor)
        except Exception:
            log.exception("stream request failed", extra={"type": kind})
            reply = {"type": "refused", "reason": "unavailable"}
        finally:
            self.in_flight -= 1
        self.push(encode({**reply, "ref": ref}))

    def _seen(self, alarm_id) -> None:
        if not _number(alarm_id) or alarm_id in self.seen:
            return
        if len(self.seen) < 1000 and self.closing is None:
            self.seen.add(alarm_id)
            self.fanout.spawn(run_db(access.mark_seen, self.viewer, alarm_id))


# ---------------------------------------------------------------- one site's events


class FeedUnavailable(Exception):
    pass


class SiteFeed:
    """The events of one site for this process: in seq order, without gaps, each encoded once."""

    def __init__(self, fanout: Fanout, site_id: int):
        self.fanout, self.site_id = fanout, site_id
        self.sockets: set[Connection] = set()
        self.by_role: dict[str, set[Connection]] = {}  # the same sockets by their viewer's role (fixed per socket)
        self.last = 0  # every event up to here has been offered to the sockets
        self.pending: dict[int, dict] = {}
        self.inbox: asyncio.Queue[dict] = asyncio.Queue()
        self.ready = asyncio.Event()
        self.failed = False
        self.task = fanout.spawn(self._run())

    def add(self, conn: Connection) -> None:
        self.sockets.add(conn)
        self.by_role.setdefault(conn.viewer.role, set()).add(conn)

    def discard(self, conn: Connection) -> None:
        self.sockets.discard(conn)
        same_role = self.by_role.get(conn.viewer.role)
        if same_role is not None:
            same_role.discard(conn)
            if not same_role:
                del self.by_role[conn.viewer.role]

    def holders_of(self, perm: str) -> list[Connection]:
        """The sockets whose role holds ``perm`` (an event for a permission's holders, such as the roll call's
        live marks, must not cost a look at every socket of the site: there may be many per second)."""
        return [conn for role, conns in self.by_role.items() if perm in permissions_for(role) for conn in conns]

    async def _run(self) -> None:
        try:
            self.last = await run_db(access.last_seq, self.site_id)
        except Exception:
            log.exception("stream feed could not start", extra={"site_id": self.site_id})
            self.failed = True
            self.fanout.drop_feed(self)
            return
        finally:
            self.ready.set()
        while True:
            self.hold(await self.inbox.get())
            try:
                await self._release()
            except Exception:  # a bug must not silence the site's stream for good
                log.exception("stream feed failed on an event", extra={"site_id": self.site_id})
                self.pending.clear()

    def hold(self, frame: dict) -> None:
        seq = frame.get("seq")
        if isinstance(seq, int) and seq > self.last:
            self.pending[seq] = frame

    async def _release(self) -> None:
        loop = asyncio.get_running_loop()
        gap_since = None
        while self.pending:
            frame = self.pending.pop(self.last + 1, None)
            if frame is not None:
                members = await self.fanout.audience_members(self, frame)
                self.last = frame["seq"]
                self.fanout.offer(self, frame, members)
                gap_since = None
                await asyncio.sleep(0)  # let the writers send it: a burst must not fill every outbox
                continue
            now = loop.time()
            gap_since = gap_since or now
            remaining = GAP_WAIT_SECONDS - (now - gap_since)
            if remaining > 0:  # the missing frame may still be on its way over the hub
                try:
                    self.hold(await asyncio.wait_for(self.inbox.get(), remaining))
                except TimeoutError:
                    pass
                continue
            await self._fill()
            gap_since = None

    async def _fill(self) -> None:
        upto = min(self.pending) - 1
        try:
            frames = await run_db(access.frames_between, self.site_id, self.last, upto)
        except Exception:
            log.exception("stream feed could not read missed events", extra={"site_id": self.site_id})
            await asyncio.sleep(1.0)
            return
        for frame in frames:
            self.hold(frame)
        if self.last + 1 not in self.pending:  # gone from the database too (pruned): nothing to wait for
            log.warning("stream events missing in the database were skipped",
                        extra={"site_id": self.site_id, "count": upto - self.last})
            self.last = upto


# ---------------------------------------------------------------- the process's fan-out


class Fanout:
    """All sockets of this process's event loop, with the one hub subscription they share."""

    _current: Fanout | None = None

    @classmethod
    def current(cls) -> Fanout:
        loop = asyncio.get_running_loop()
        if cls._current is None or cls._current.loop is not loop:
            if cls._current is not None:
                cls._current.stop()
            cls._current = cls(loop)
        return cls._current

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.feeds: dict[int, SiteFeed] = {}
        self.connections: set[Connection] = set()
        self.recipients: dict[int, tuple[int, frozenset[int]]] = {}  # alarm id → (site id, membership ids)
        self.alarm_sent_at = float("-inf")  # loop time of the last event for an alarm's recipients
        self.tasks: set[asyncio.Task] = set()
        self.gc = GcPolicy()
        self._unsubscribe = hub.subscribe(self._from_hub)
        # Feeds start from the database after this point, so nothing before it needs catching up.
        self._hub_generation = hub.state().generation
        self._caught_up_at = loop.time()
        self.spawn(self._maintain())
        self.spawn(self._heartbeats())

    def stop(self) -> None:
        self._unsubscribe()
        if not self.loop.is_closed():
            for task in list(self.tasks):
                self.loop.call_soon_threadsafe(task.cancel)

    def spawn(self, coro) -> asyncio.Task:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("stream task failed", exc_info=task.exception())

    # The hub calls this from any thread: hand the frame to the event loop.
    def _from_hub(self, frame: dict) -> None:
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self._receive, frame)
        except RuntimeError:  # the loop closed meanwhile (server shutting down)
            pass

    def _receive(self, frame: dict) -> None:
        if frame.get("type") == events.SESSIONS_ENDED:
            self._sessions_ended(frame)
            return
        feed = self.feeds.get(frame.get("site"))
        if feed is not None:
            feed.inbox.put_nowait(frame)

    def _sessions_ended(self, frame: dict) -> None:
        """Sessions were deleted (signed out): their sockets close now, before any later event."""
        ended, code = set(frame.get("sessions") or ()), CHANGED if frame.get("moved") else SIGNED_OUT
        for conn in list(self.connections):
            if conn.viewer.session_digest in ended:
                conn.close(*code)

    async def feed(self, site_id: int) -> SiteFeed:
        while True:
            feed = self.feeds.get(site_id)
            if feed is None:
                feed = self.feeds[site_id] = SiteFeed(self, site_id)
            await feed.ready.wait()
            if feed.failed:
                raise FeedUnavailable
            if self.feeds.get(site_id) is feed:
                return feed

    def drop_feed(self, feed: SiteFeed) -> None:
        if self.feeds.get(feed.site_id) is feed:
            del self.feeds[feed.site_id]
            self.loop.call_soon(feed.task.cancel)  # also when called from the feed's own task
            # Changes of this site's alarms are not watched any more: forget what we knew.
            for alarm_id in [a for a, (site, _m) in self.recipients.items() if site == feed.site_id]:
                del self.recipients[alarm_id]

    async def join(self, conn: Connection, after: int | None) -> None:
        """Replay what the socket missed after ``after``, then make it live (no gap, no duplicate)."""
        try:
            feed = await self.feed(conn.viewer.site_id)
        except FeedUnavailable:
            conn.close(*UNAVAILABLE)
            return
        if conn.closing is not None:
            return
        feed.add(conn)  # from now on live frames collect in conn.buffer
        conn.feed = feed
        if after is None:
            replay = access.Replay([], feed.last, True)
        else:
            replay = await run_db(access.replay, conn.viewer, after, REPLAY_LIMIT)
        for frame in replay.frames:
            if conn.closing is not None:
                return
            await conn.send_text(encode(frame))
        if conn.closing is None:
            await conn.send_text(encode({"type": "ready", "site": feed.site_id, "seq": replay.upto,
                                         "complete": replay.complete}))
            conn.go_live(replay.upto)

    def leave(self, conn: Connection) -> None:
        feed, conn.feed = conn.feed, None
        if feed is None:
            return
        feed.discard(conn)
        if not feed.sockets:
            self.drop_feed(feed)

    async def audience_members(self, feed: SiteFeed, frame: dict) -> frozenset[int] | None:
        """For an event of named people: they (the frame carries them); for an alarm's event: its
        recipients (cached per alarm until an ``alarm.changed``)."""
        if frame.get("audience") == access.Audience.PEOPLE:
            return frozenset(frame.get(events.MEMBERS) or ())
        alarm_id = frame.get("alarm")
        if alarm_id is None:
            return None
        if frame.get("type") == "alarm.changed":
            self.recipients.pop(alarm_id, None)
        if frame.get("audience") != access.Audience.ALARM:
            return None
        carried = frame.get(events.MEMBERS)
        if isinstance(carried, list):  # the alarm's own event brings them: no database read
            self._remember(alarm_id, feed.site_id, frozenset(carried))
            return self.recipients[alarm_id][1]
        cached = self.recipients.get(alarm_id)
        if cached is not None:
            return cached[1]
        try:
            members = await run_db(access.recipients, feed.site_id, alarm_id)
        except Exception:
            log.exception("stream could not read an alarm's recipients", extra={"site_id": feed.site_id})
            return frozenset()
        self._remember(alarm_id, feed.site_id, members)
        return members

    def _remember(self, alarm_id: int, site_id: int, members: frozenset[int]) -> None:
        if len(self.recipients) >= 10_000 and alarm_id not in self.recipients:
            self.recipients.pop(next(iter(self.recipients)))
        self.recipients[alarm_id] = (site_id, members)

    def offer(self, feed: SiteFeed, frame: dict, members: frozenset[int] | None) -> None:
        if frame.get("alarm") is not None:
            self.gc.busy()
        if events.MEMBERS in frame:  # for the endpoints only, never for a client
            frame = {key: value for key, value in frame.items() if key != events.MEMBERS}
        text = encode(frame)  # once per event and process
        data = text.encode()
        audience, seq, perm = frame.get("audience"), frame["seq"], frame.get("perm", "")
        if audience == access.Audience.ALARM:
            self.alarm_sent_at = self.loop.time()
        for conn in feed.holders_of(perm) if audience == access.Audience.PERM else list(feed.sockets):
            if conn.viewer.may_see(audience, members, perm):
                conn.offer(seq, text, data)

    async def _heartbeats(self) -> None:
        """Each socket gets a heartbeat every HEARTBEAT_SECONDS; the sockets are spread over the seconds
        of that interval, so that 10,000 of them do not all get theirs in the same moment (an alarm
        arriving then would queue behind 10,000 heartbeats)."""
        tick = 0
        while True:
            await asyncio.sleep(1.0)
            tick = (tick + 1) % HEARTBEAT_SECONDS
            for feed in list(self.feeds.values()):
                texts: dict[int, str] = {}
                for conn in list(feed.sockets):
                    if conn.live and conn.slot == tick:
                        conn.upto = max(conn.upto, feed.last)
                        if conn.upto not in texts:
                            texts[conn.upto] = encode({"type": "heartbeat", "seq": conn.upto})
                        conn.push(texts[conn.upto])

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(RECHECK_SECONDS)
            self.gc.tick()
            try:
                await self._recheck()
                if self._catch_up_due():
                    await self._catch_up()
            except Exception:
                log.exception("stream maintenance failed")

    async def _recheck(self) -> None:
        """Close every socket whose session ended, expired or changed, or whose access was revoked."""
        conns = [c for c in self.connections if c.closing is None and not c.gone]
        viewers = list({c.viewer for c in conns})
        invalid: dict[Viewer, str] = {}
        latest = self.loop.time() + RECHECK_YIELD_SECONDS
        for start in range(0, len(viewers), RECHECK_BATCH):
            await self._after_alarm(latest)
            invalid.update(await run_db(access.recheck, viewers[start:start + RECHECK_BATCH]))
        for conn in conns:
            reason = invalid.get(conn.viewer)
            if reason is not None:
                conn.close(*CLOSE_FOR[reason])

    async def _after_alarm(self, latest: float) -> None:
        """Wait until RECHECK_YIELD_SECONDS have passed since the last alarm event went out, or until
        ``latest`` (loop time), whichever comes first."""
        while (wait := min(self.alarm_sent_at + RECHECK_YIELD_SECONDS, latest) - self.loop.time()) > 0:
            await asyncio.sleep(wait)

    def _catch_up_due(self) -> bool:
        state, now = hub.state(), self.loop.time()
        due = (not state.shared or state.generation != self._hub_generation
               or now - self._caught_up_at >= SAFETY_CATCH_UP_SECONDS)
        if due:
            self._hub_generation, self._caught_up_at = state.generation, now
        return due

    async def _catch_up(self) -> None:
        """Events committed where our hub does not reach (another process, Redis down): read them."""
        feeds = [f for f in self.feeds.values() if f.ready.is_set()]
        if not feeds:
            return
        seqs = await run_db(access.last_seqs, [f.site_id for f in feeds])
        lagging = [(f, seqs[f.site_id]) for f in feeds if seqs.get(f.site_id, 0) > f.last]
        if not lagging:
            return
        await asyncio.sleep(GAP_WAIT_SECONDS)  # what is on its way over the hub is no gap
        for feed, upto in lagging:
            if feed.last < upto and self.feeds.get(feed.site_id) is feed:
                for frame in await run_db(access.frames_between, feed.site_id, feed.last, upto):
                    feed.inbox.put_nowait(frame)
