"""What a browser hands over when it subscribes (``PushSubscription.toJSON()``), checked.

The endpoint is a URL the server will POST to, named by the browser: it must
point to a known push service (settings.PUSH_SERVICE_HOSTS) over HTTPS, or the
server would become a tool for reaching hosts it should not (SSRF). The check
runs when a browser subscribes and again before every send.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

MAX_ENDPOINT_LENGTH = 2048
P256DH_BYTES = 65  # an uncompressed P-256 point: 0x04 ‖ x ‖ y
AUTH_BYTES = 16


@dataclass(frozen=True)
class SubscriptionData:
    endpoint: str
    p256dh: str
    auth: str


def endpoint_hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode("utf-8")).hexdigest()


def _host_matches(host: str, port: int, pattern: str) -> bool:
    """``pattern``: "name" (port 443 only), "name:port", or "*.domain" (any sub-domain, port 443)."""
    pattern = pattern.strip().lower()
    wanted_port = 443
    name, sep, maybe_port = pattern.rpartition(":")
    if sep and maybe_port.isdigit() and "]" not in maybe_port:
        pattern, wanted_port = name, int(maybe_port)
    if port != wanted_port:
        return False
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern.strip("[]")


def endpoint_allowed(endpoint: str) -> bool:
    """Is ``endpoint`` an HTTPS URL on one of the configured push services?"""
    if not isinstance(endpoint, str) or len(endpoint) > MAX_ENDPOINT_LENGTH:
        return False
    try:
        parts = urlsplit(endpoint)
        port = parts.port or 443
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host or parts.username is not None or parts.password is not None:
        return False
    if any(ch.isspace() for ch in endpoint):
        return False
    return any(_host_matches(host, port, pattern) for pattern in settings.PUSH_SERVICE_HOSTS)


def _decode(value: object, length: int) -> bytes | None:
    if not isinstance(value, str) or not value or len(value) > 200:
        return None
    if any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=" for c in value):
        return None
    try:
        raw = base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == length else None


def _valid_point(raw: bytes) -> bool:
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        return False
    return raw[0] == 4


def parse(data: object) -> SubscriptionData:
    """Check a subscription as sent by the browser; raises ValidationError with a message for people."""
    if not isinstance(data, dict):
        raise ValidationError(_("Send the browser's push subscription as a JSON object."))
    endpoint = data.get("endpoint")
    keys = data.get("keys") if isinstance(data.get("keys"), dict) else {}
    if not isinstance(endpoint, str) or not endpoint:
        raise ValidationError(_("The push subscription has no endpoint."))
    if not endpoint_allowed(endpoint):
        raise ValidationError(_("This browser's push service is not allowed on this server. "
                                "Ask your administrator to add it to RP_PUSH_SERVICE_HOSTS."))
    p256dh = _decode(keys.get("p256dh"), P256DH_BYTES)
    if p256dh is None or not _valid_point(p256dh):
        raise ValidationError(_("The push subscription's key (p256dh) is not a valid P-256 public key."))
    auth = _decode(keys.get("auth"), AUTH_BYTES)
    if auth is None:
        raise ValidationError(_("The push subscription's secret (auth) must be 16 bytes, base64url encoded."))
    return SubscriptionData(endpoint=endpoint, p256dh=_b64(p256dh), auth=_b64(auth))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
