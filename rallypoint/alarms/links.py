"""One-tap answer links for e-mail and SMS: signed, short-lived, single-use.

The token (in the path, never in a query string) is
``<recipient id>.<expiry>.<signature>``; the signature covers the recipient's
``link_nonce``, which is emptied when the link is used, so a used link fails.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

from django.conf import settings
from django.urls import reverse

from rallypoint.alarms.models import AlarmRecipient


def _key() -> bytes:
    return hashlib.sha256(b"rallypoint-answer-link:" + settings.SECRET_KEY.encode()).digest()


def _signature(recipient_id: int, expires: int, nonce: str) -> str:
    message = f"{recipient_id}.{expires}.{nonce}".encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()[:32]


def make_token(recipient: AlarmRecipient, now: float | None = None) -> str:
    expires = int((now or time.time()) + settings.ANSWER_LINK_MINUTES * 60)
    return f"{recipient.pk}.{expires}.{_signature(recipient.pk, expires, recipient.link_nonce)}"


def answer_url(recipient: AlarmRecipient) -> str:
    return settings.BASE_URL + reverse("alarms:answer_link", args=[make_token(recipient)])


#: ``<recipient id>.<expiry>.<signature>``: ASCII digits of database size (``str.isdigit`` also takes "²",
#: and ``int`` refuses more than 4,300 digits; neither may reach the database or ``int``) and 32 hex digits.
_TOKEN = re.compile(r"([0-9]{1,18})\.([0-9]{1,12})\.([0-9a-f]{32})")


def parse_token(token: str) -> tuple[int, int, str] | None:
    """``(recipient id, expiry, signature)`` of a well-formed token; None for anything else."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), match.group(3)


def check_token(token: str, now: float | None = None) -> AlarmRecipient | None:
    """The recipient the token was made for, if it is genuine, unexpired and unused; else None."""
    parsed = parse_token(token)
    if parsed is None:
        return None
    recipient_id, expires, signature = parsed
    if expires < (now or time.time()):
        return None
    recipient = AlarmRecipient.objects.filter(pk=recipient_id).select_related("alarm", "membership").first()
    if recipient is None or not recipient.link_nonce:
        return None
    expected = _signature(recipient_id, expires, recipient.link_nonce)
    return recipient if hmac.compare_digest(expected, signature) else None


def use_token(recipient: AlarmRecipient) -> bool:
    """Spend the link; False if another request spent it first."""
    return AlarmRecipient.objects.filter(pk=recipient.pk, link_nonce=recipient.link_nonce).exclude(
        link_nonce="").update(link_nonce="") == 1
