"""SMS and voice providers. Rallypoint speaks one small HTTP protocol (docs/channels.md);
an operator puts an adapter for their carrier behind it.

A provider takes an :class:`Outgoing` message and returns the provider's id for
it, or raises :class:`TransportError`. Error texts name the HTTP status or the
kind of network failure, never the number or the message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Protocol

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError
from urllib3.exceptions import TimeoutError as GatewayTimeout

from rallypoint.notify.channels.base import TransportError

#: Seconds to connect and to wait for the gateway's answer. A slow gateway holds one sending thread;
#: a timed-out message is retried and the idempotency key keeps it from arriving twice.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0
_ERROR_CODE = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9_.-]{1,40}")


@dataclass(frozen=True)
class Outgoing:
    kind: str  # "sms" or "voice"
    to: str  # normalised phone number
    text: str
    key: str  # the delivery's idempotency key
    priority: int = 1
    drill: bool = False
    language: str = "en"


class Provider(Protocol):
    def send(self, outgoing: Outgoing) -> str: ...

    def close(self) -> None: ...


class HttpGateway:
    """POSTs JSON to one URL over a kept-alive connection (one pool per sending thread)."""

    def __init__(self, url: str, token: str = "", *, name: str = "SMS gateway",  # nosec B107 - no token
                 timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT)) -> None:
        self.url = url
        self.name = name
        self._headers = {"Content-Type": "application/json", "Accept": "application/json",
                         "User-Agent": "Rallypoint"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=1, retries=False,
                                         timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]))

    def send(self, outgoing: Outgoing) -> str:
        body = json.dumps({
            "kind": outgoing.kind, "to": outgoing.to, "text": outgoing.text, "idempotency_key": outgoing.key,
            "priority": outgoing.priority, "drill": outgoing.drill, "language": outgoing.language,
        }).encode()
        headers = {**self._headers, "Idempotency-Key": outgoing.key}
        try:
            response = self._post(body, headers)
        except NewConnectionError:  # a subclass of the time-out error in urllib3 2
            raise TransportError(f"{self.name} unreachable (connection failed)") from None
        except GatewayTimeout:
            raise TransportError(f"{self.name} did not answer in time") from None
        except HTTPError as exc:  # the text names the URL: report the kind of failure only
            raise TransportError(f"{self.name} unreachable ({type(exc).__name__})") from None
        return self._result(response.status, response.data)

    def close(self) -> None:
        self._pool.clear()

    def _post(self, body: bytes, headers: dict[str, str]):
        try:
            return self._pool.request("POST", self.url, body=body, headers=headers, redirect=False)
        except ProtocolError:
            # A kept-alive connection the gateway had closed: once more on a new one (same idempotency key).
            return self._pool.request("POST", self.url, body=body, headers=headers, redirect=False)

    def _result(self, status: int, data: bytes) -> str:
        reply = _json(data)
        if 200 <= status < 300:
            provider_id = reply.get("id")
            return str(provider_id) if isinstance(provider_id, str | int) else ""
        code = reply.get("error")
        detail = f" {code}" if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else ""
        if status in (408, 429) or status >= 500:
            raise TransportError(f"{self.name} answered HTTP {status}{detail}")
        raise TransportError(f"{self.name} refused the message (HTTP {status}{detail})", permanent=400 <= status < 500)


def _json(data: bytes) -> dict:
    try:
        reply = json.loads(data) if data else {}
    except ValueError:
        return {}
    return reply if isinstance(reply, dict) else {}
