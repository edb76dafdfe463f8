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
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from urllib.parse import urlsplit

import certifi
import urllib3
from django.utils import timezone
from pywebpush import WebPusher, WebPushException
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


def trusted_certificates() -> str:
    """The CA file push services' certificates are checked against: ``REQUESTS_CA_BUNDLE`` (or
    ``CURL_CA_BUNDLE``) when set, as for other Python HTTP clients, else the certifi bundle."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()


class PushHttp:
    """HTTPS to the push services over kept-alive connections (one per push service and sending
    thread), through the proxy the environment names (``HTTPS_PROXY``, except for hosts in ``NO_PROXY``).

    Built on urllib3 directly: the general-purpose client it replaced looked up proxies, netrc and CA
    files again for every message, a sixth of a worker's Python time in an alarm to thousands."""

    def __init__(self) -> None:
        self._direct: urllib3.PoolManager | None = None
        self._proxied: dict[str, urllib3.ProxyManager] = {}
        self._routes: dict[str, urllib3.PoolManager] = {}

    def _options(self) -> dict:
        return {"num_pools": 4, "maxsize": 1, "retries": False, "timeout": TIMEOUT,
                "cert_reqs": "CERT_REQUIRED", "ca_certs": trusted_certificates()}

    def route(self, host: str) -> urllib3.PoolManager:
        """The pool for ``host``: direct, or through the environment's HTTPS proxy (decided once per host)."""
        manager = self._routes.get(host)
        if manager is None:
            proxy = urllib.request.getproxies().get("https")
            if proxy and not urllib.request.proxy_bypass(host):
                manager = self._proxied.get(proxy) or self._proxied.setdefault(
                    proxy, urllib3.ProxyManager(proxy, **self._options()))
            else:
                manager = self._direct = self._direct or urllib3.PoolManager(**self._options())
            self._routes[host] = manager
        return manager

    def post(self, url: str, host: str, body: bytes, headers: dict[str, str]) -> int:
        """POST and return the status; raises urllib3's errors. A kept-alive connection the push
        service had closed is tried once more on a new one."""
        manager = self.route(host)
        try:
            response = manager.request("POST", url, body=body, headers=headers, redirect=False)
        except ProtocolError:
            response = manager.request("POST", url, body=body, headers=headers, redirect=False)
        return response.status

    def close(self) -> None:
        for manager in [self._direct, *self._proxied.values()]:
            if manager is not None:
                manager.clear()
        self._direct = None
        self._proxied.clear()
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
        headers = {
            "Authorization": vapid.authorization(f"{parts.scheme}://{parts.netloc}"),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(TTL_SECONDS),
            "Urgency": "high",
            "Topic": topic,  # a newer message about the same alarm replaces one still waiting
            "User-Agent": "Rallypoint",
        }
        try:
            status = self.http.post(endpoint, parts.hostname or "", body, headers)
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
