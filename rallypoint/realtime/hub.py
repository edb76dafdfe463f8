"""The hub: carries committed stream events to every server process.

Interface: :func:`publish` (from any thread, never raises) and
:func:`subscribe` (``callback(frame)`` is called from a hub thread or the
publishing thread; it must be quick and must not block).

Embedded (no ``RP_REDIS_URL``): subscribers of this process are called
directly by the publishing thread.

With ``RP_REDIS_URL``: :func:`publish` hands the frame to one publisher thread
that sends it to one Redis pub/sub channel; each process holds ONE
subscription (a listener thread) that passes every frame to the local
subscribers. Pub/sub delivers at most once: when Redis is down or a message
is lost, nothing is lost for the clients, because every event is a row of the
stream first; the WebSocket endpoint reads what it missed from the database
(see :mod:`rallypoint.realtime.socket`). A failing publish is delivered to
this process's subscribers at least, and logged without its content.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.conf import settings

log = logging.getLogger("rallypoint.realtime")

#: Channel prefix; the channel names the database, so installations sharing a Redis never mix
#: (pub/sub channels are global in Redis, whatever the database number).
CHANNEL_PREFIX = "rallypoint:stream:"
#: Frames waiting for the publisher thread; beyond this they go to local subscribers only.
BACKLOG = 10_000
#: How long a process that exits waits for its last frames to reach Redis.
FLUSH_SECONDS = 3.0
#: How long the first subscriber waits for the Redis subscription to be up.
SUBSCRIBE_WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class HubState:
    shared: bool  # events of other processes reach this one (Redis subscription up)
    generation: int  # counts (re)subscriptions: a new one means messages may have been lost meanwhile

_subscribers: list[Callable[[dict], None]] = []
_lock = threading.Lock()
_redis_hub: RedisHub | None = None


def subscribe(callback: Callable[[dict], None]) -> Callable[[], None]:
    """Call ``callback(frame)`` for every published event (from any thread). Returns an unsubscribe."""
    with _lock:
        _subscribers.append(callback)
    remote = _remote()
    if remote is not None:
        remote.listen(wait=SUBSCRIBE_WAIT_SECONDS)

    def unsubscribe() -> None:
        with _lock:
            if callback in _subscribers:
                _subscribers.remove(callback)

    return unsubscribe


def publish(frame: dict) -> None:
    """Hand a committed event to every process. Never raises (it runs after the commit of an action)."""
    try:
        remote = _remote()
        if remote is None:
            deliver(frame)
        else:
            remote.publish(frame)
    except Exception:  # the action has committed; the clients catch up from the database
        log.exception("stream publish failed", extra={"event": frame.get("type")})


def deliver(frame: dict) -> None:
    """Call this process's subscribers."""
    with _lock:
        targets = list(_subscribers)
    for callback in targets:
        try:
            callback(frame)
        except Exception:  # one broken subscriber must not keep the event from the others
            log.exception("stream subscriber failed", extra={"event": frame.get("type")})


def state() -> HubState:
    remote = _remote()
    if remote is None:
        return HubState(shared=False, generation=0)
    return HubState(shared=remote.subscribed.is_set(), generation=remote.generation)


def channel_for(database: dict) -> str:
    """One channel per installation: named after the database all its processes share."""
    identity = "|".join(str(database.get(k, "")) for k in ("ENGINE", "HOST", "PORT", "NAME"))
    return CHANNEL_PREFIX + hashlib.sha256(identity.encode()).hexdigest()[:16]


def flush(timeout: float = FLUSH_SECONDS) -> bool:
    """Wait until frames handed to :func:`publish` have gone to Redis. True when none is left."""
    remote = _redis_hub
    return True if remote is None else remote.flush(timeout)


def _remote() -> RedisHub | None:
    global _redis_hub
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return None
    if _redis_hub is None or _redis_hub.url != url:
        with _lock:
            if _redis_hub is None or _redis_hub.url != url:
                _redis_hub = RedisHub(url)
    return _redis_hub


class RedisHub:
    """One publisher thread and (once anything subscribes) one listener thread per process."""

    def __init__(self, url: str):
        self.url = url
        self.channel = channel_for(settings.DATABASES["default"])
        self.subscribed = threading.Event()
        self.generation = 0
        self.client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5,
                                           health_check_interval=15)
        self.backlog: queue.Queue[str] = queue.Queue(BACKLOG)
        self._start = threading.Lock()
        self._publisher: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        atexit.register(self.flush)

    def publish(self, frame: dict) -> None:
        data = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        self._ensure_publisher()
        try:
            self.backlog.put_nowait(data)
        except queue.Full:
            log.warning("stream hub backlog full: event only for this process, the others read it from "
                        "the database", extra={"event": frame.get("type")})
            deliver(frame)

    def flush(self, timeout: float = FLUSH_SECONDS) -> bool:
        deadline = time.monotonic() + timeout
        while self.backlog.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self.backlog.unfinished_tasks

    def listen(self, wait: float = 0.0) -> None:
        """Start the process's one subscription; wait up to ``wait`` seconds for it to be up."""
        with self._start:
            if self._listener is None:
                self._listener = threading.Thread(target=self._listen_loop, name="stream-hub-listen", daemon=True)
                self._listener.start()
        self.subscribed.wait(wait)

    def _ensure_publisher(self) -> None:
        if self._publisher is None:
            with self._start:
                if self._publisher is None:
                    self._publisher = threading.Thread(target=self._publish_loop, name="stream-hub-publish",
                                                       daemon=True)
                    self._publisher.start()

    def _publish_loop(self) -> None:
        retry_at = 0.0  # while Redis is down, try again only once a second (a connect attempt blocks)
        while True:
            data = self.backlog.get()
            try:
                if time.monotonic() < retry_at:
                    deliver(json.loads(data))
                    continue
                self.client.publish(self.channel, data)
                if retry_at:
                    retry_at = 0.0
                    log.info("stream hub: publishing to Redis again")
            except redis.RedisError as exc:
                if not retry_at:
                    log.warning("stream hub: Redis unreachable, events go to this process only until it is "
                                "back; the other processes read them from the database (%s)", type(exc).__name__)
                retry_at = time.monotonic() + 1.0
                deliver(json.loads(data))
            finally:
                self.backlog.task_done()

    def _listen_loop(self) -> None:
        delay = 0.5
        down = False
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                pubsub.get_message(timeout=SUBSCRIBE_WAIT_SECONDS)  # the confirmation: now we are subscribed
                self.generation += 1
                self.subscribed.set()
                if down:
                    log.info("stream hub: subscribed to Redis again")
                    down, delay = False, 0.5
                while True:
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._receive(message["data"])
            except redis.RedisError as exc:
                self.subscribed.clear()
                if not down:
                    down = True
                    log.warning("stream hub: lost the Redis subscription, retrying (%s)", type(exc).__name__)
            finally:
                try:
                    pubsub.close()
                except redis.RedisError:
                    pass
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    @staticmethod
    def _receive(data: bytes | str) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            log.warning("stream hub: ignored a message that is not JSON")
            return
        if isinstance(frame, dict):
            deliver(frame)
