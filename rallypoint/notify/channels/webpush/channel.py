"""Web Push: the alarm as an encrypted message (RFC 8291, aes128gcm) to each browser a person subscribed.

One POST per subscription to its push service (RFC 8030) with a VAPID token
(RFC 8292). The message reaching any one of the person's browsers counts as
sent. A push service that answers 404 or 410 has forgotten the subscription:
its row is deleted. Endpoints are personal data: they never reach a log, an
error message or an exception text.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from urllib.parse import urlsplit

import certifi
import urllib3
from django.utils import timezone
from pywebpush import WebPusher, WebPushException
from requests import utils as requests_utils
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError
from urllib3.exceptions import TimeoutError as PushTimeout

from rallypoint.notify.channels.base import Address, Channel, Message, TransportError
from rallypoint.notify.channels.webpush import subscriptions, vapid
from rallypoint.notify.models import PushSubscription

log = logging.getLogger("rallypoint.notify.webpush")

#: How long a push service keeps a message for a browser that is offline.
TTL_SECONDS = 4 * 3600
#: (connect, read) seconds.
TIMEOUT = urllib3.Timeout(connect=5, read=10)
#: The push service takes at most 4096 bytes of ciphertext; plaintext stays well below.
MAX_BODY_CHARS = 1000
MAX_TITLE_CHARS = 200
SUCCESS_NOTE_INTERVAL = timedelta(hours=1)


class Result(Enum):
    SENT = "sent"
    GONE = "gone"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Outcome:
    result: Result
    error: str = ""


def _body(message: Message) -> str:
    """The notification's text: the short text without the answer link (a tap opens the app instead)."""
    body = message.extra.get("body") or ""
    if not body:
        body = message.short.replace(message.answer_url, "").strip() if message.answer_url else message.short
        rest = body.removeprefix(message.subject).strip(" ·")
        body = rest or body
    return body[:MAX_BODY_CHARS]


def payload(message: Message) -> bytes:
    """What the service worker receives (sw.js shows it as a notification)."""
    return json.dumps({
        "alarm": message.alarm_id,
        "title": message.subject[:MAX_TITLE_CHARS],
        "body": _body(message),
        "url": message.url,
        "drill": message.is_drill,
        "silent": message.silent,
        "priority": message.priority,
        "tag": f"alarm-{message.alarm_id}",
        "event": message.event,
        "lang": message.language,
        # The buttons answer with the recipient's one-time link (the payload is encrypted to their browser).
        "answer": message.answer_url or "",
        "actions": message.extra.get("actions", []) if message.answer_url else [],
    }, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _classify(status: int) -> Outcome:
    if status in (200, 201, 202):
        return Outcome(Result.SENT)
    if status in (404, 410):
        return Outcome(Result.GONE)
    if status == 429 or status >= 500:
        return Outcome(Result.TRANSIENT, f"push service answered {status}")
    if status == 413:
        return Outcome(Result.PERMANENT, "push message too large (413)")
    if 300 <= status < 400:
        return Outcome(Result.PERMANENT, f"push service redirected ({status}); not followed")
    return Outcome(Result.PERMANENT, f"push service refused the message ({status})")


_worked_lock = threading.Lock()
_worked: set[int] = set()  # subscriptions that took a message and whose "last worked" is due


def _note_success(sub: PushSubscription) -> None:
    """Remember that the subscription worked, to be written once per batch (:meth:`WebPushChannel.after_batch`):
    a write per message would make every sending thread queue for the database."""
    if sub.last_success_at is None or timezone.now() - sub.last_success_at > SUCCESS_NOTE_INTERVAL:
        with _worked_lock:
            _worked.add(sub.pk)


def _trust_options() -> dict:
    """Where push services' certificates are checked against: the file or directory in
    ``REQUESTS_CA_BUNDLE`` (or ``CURL_CA_BUNDLE``) when set, as other Python HTTP clients do, else the
    certifi bundle."""
    path = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    return {"cert_reqs": "CERT_REQUIRED", **({"ca_cert_dir": path} if os.path.isdir(path) else {"ca_certs": path})}


class PushHttp:
    """HTTPS to the push services over kept-alive connections (one per push service and sending
    thread), through the proxy the environment names for it (``HTTPS_PROXY`` or ``ALL_PROXY``, with or
    without ``http://`` and credentials; hosts and networks in ``NO_PROXY`` are reached directly).

    Built on urllib3 directly: the general-purpose client it replaced looked up proxies, netrc and CA
    files again for every message, a sixth of a worker's Python time in an alarm to thousands. The
    environment is read the same way (with requests' helpers), once per push service."""

    def __init__(self) -> None:
        self._routes: dict[str, urllib3.PoolManager] = {}  # per endpoint origin

    @staticmethod
    def _options() -> dict:
        return {"num_pools": 1, "maxsize": 1, "retries": False, "timeout": TIMEOUT, **_trust_options()}

    def route(self, origin: str, url: str) -> urllib3.PoolManager:
        """The pool manager for the push service at ``origin`` (``url``'s scheme://host[:port]): direct, or
        through the proxy (decided once)."""
        manager = self._routes.get(origin)
        if manager is None:
            proxy = requests_utils.select_proxy(url, requests_utils.get_environ_proxies(url))
            if proxy:
                proxy = proxy if "://" in proxy else f"http://{proxy}"  # "host:port", "user:pw@host:port"
                user, password = requests_utils.get_auth_from_url(proxy)
                headers = urllib3.make_headers(proxy_basic_auth=f"{user}:{password}") if user else None
                manager = urllib3.ProxyManager(proxy, proxy_headers=headers, **self._options())
            else:
                manager = urllib3.PoolManager(**self._options())
            self._routes[origin] = manager
        return manager

    def post(self, origin: str, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST to ``url`` (at ``origin``) and return the status; raises urllib3's errors. A kept-alive
        connection the push service had closed is tried once more on a new one. (Should the first try
        have arrived after all, the browser shows one notification: both carry the alarm's tag.)"""
        manager = self.route(origin, url)
        try:
            response = manager.request("POST", url, body=body, headers=headers, redirect=False)
        except ProtocolError:
            response = manager.request("POST", url, body=body, headers=headers, redirect=False)
        return response.status

    def close(self) -> None:
        for manager in self._routes.values():
            manager.clear()
        self._routes.clear()


class WebPushChannel(Channel):
    kind = "push"

    def __init__(self) -> None:
        # The registry keeps one channel per thread: kept-alive connections per thread.
        self.http = PushHttp()

    def close(self) -> None:
        self.http.close()

    @classmethod
    def after_batch(cls) -> None:
        """When each subscription that took a message last worked: one UPDATE (at most one an hour each)."""
        with _worked_lock:
            ids = sorted(_worked)
            _worked.clear()
        now = timezone.now()
        for start in range(0, len(ids), 1000):
            PushSubscription.objects.filter(pk__in=ids[start:start + 1000]).update(last_success_at=now)

    def send(self, message: Message, address: Address) -> str:
        if not address.push:
            raise TransportError("no push subscription", permanent=True)
        data = payload(message)
        outcomes = [self._send_to(sub, data, f"alarm-{message.alarm_id}") for sub in address.push]
        if any(o.result is Result.SENT for o in outcomes):
            return ""
        if all(o.result is Result.GONE for o in outcomes):
            raise TransportError("no push subscription left (the browser's subscription expired)", permanent=True)
        transient = [o for o in outcomes if o.result is Result.TRANSIENT]
        if transient:
            raise TransportError(transient[0].error)
        raise TransportError(next(o.error for o in outcomes if o.result is Result.PERMANENT), permanent=True)

    def _send_to(self, sub: PushSubscription, data: bytes, topic: str) -> Outcome:
        endpoint = sub.endpoint
        if not subscriptions.endpoint_allowed(endpoint):
            return Outcome(Result.PERMANENT, "push service not allowed (RP_PUSH_SERVICE_HOSTS)")
        try:
            pusher = WebPusher({"endpoint": endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}})
            body = pusher.encode(data, "aes128gcm")["body"]
        except (WebPushException, ValueError, TypeError):
            return Outcome(Result.PERMANENT, "the subscription's keys cannot encrypt a message")
        parts = urlsplit(endpoint)
        origin = f"{parts.scheme}://{parts.netloc}"
        headers = {
            "Authorization": vapid.authorization(origin),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(TTL_SECONDS),
            "Urgency": "high",
            "Topic": topic,  # a newer message about the same alarm replaces one still waiting
            "User-Agent": "Rallypoint",
        }
        try:
            status = self.http.post(origin, endpoint, body, headers)
        except NewConnectionError:  # a subclass of the time-out error in urllib3 2
            return Outcome(Result.TRANSIENT, "push service unreachable")
        except PushTimeout:
            return Outcome(Result.TRANSIENT, "push service timed out")
        except HTTPError:  # its text names the endpoint: report the kind of failure only
            return Outcome(Result.TRANSIENT, "push service unreachable")
        outcome = _classify(status)
        if outcome.result is Result.SENT:
            _note_success(sub)
        elif outcome.result is Result.GONE:
            # Housekeeping, not a person's change (like an expired session): no audit entry.
            PushSubscription.objects.filter(pk=sub.pk).delete()
            log.info("push subscription expired and was removed", extra={"event": "push.expired", "object_id": sub.pk})
        return outcome
