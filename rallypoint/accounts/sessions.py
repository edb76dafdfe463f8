"""The session engine: Django's database sessions in :class:`UserSession` rows.

Each row knows its user, a display handle, the device and when it signed in,
so a person can list and end their sessions and an administrator can end all
of someone's sessions at once.
"""

from __future__ import annotations

import contextvars
from datetime import UTC, datetime

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.dispatch import Signal
from django.utils import timezone

from rallypoint.accounts.models import UserSession

SIGNED_IN_AT = "rp_signed_in_at"
HANDLE = "rp_handle"
DEVICE = "rp_device"


#: True while a session's data moves to a new key (sign-in, another site chosen): the old row is deleted,
#: but the person did not sign out (see ``rallypoint.realtime.signals``).
moving = contextvars.ContextVar("rallypoint_session_moving", default=False)


class SessionStore(DatabaseSessionStore):
    @classmethod
    def get_model_class(cls):
        return UserSession

    def cycle_key(self):
        token = moving.set(True)
        try:
            super().cycle_key()
        finally:
            moving.reset(token)

    def create_model_instance(self, data):
        row = super().create_model_instance(data)
        user_id = data.get("_auth_user_id")
        row.user_id = int(user_id) if user_id else None
        row.handle = data.get(HANDLE, "")
        row.device = data.get(DEVICE, "")[:120]
        signed_in = data.get(SIGNED_IN_AT)
        row.signed_in_at = datetime.fromtimestamp(signed_in, tz=UTC) if signed_in else None
        row.last_seen_at = timezone.now()
        return row


#: Sent when all of a user's sessions were ended on purpose (sign-out everywhere, a new password,
#: deactivation), with ``keep_handle``: the handle of the session that stays, if one does.
sessions_ended = Signal()


#: What a signed-out browser is told to forget: its HTTP cache and everything the pages stored (local and
#: session storage, IndexedDB, Cache Storage, the service worker and with it its push subscription, which
#: sign-out ends on the server anyway). Cookies stay: the language and the CSRF cookie hold nothing personal.
CLEAR_SITE_DATA = '"cache", "storage"'


def forget_on_device(response):
    """Mark a response that ends the browser's session: nothing of it stays on the device."""
    response["Clear-Site-Data"] = CLEAR_SITE_DATA
    return response


def end_sessions(user, *, except_key: str | None = None) -> int:
    """End every session of ``user`` (but ``except_key``); their next request is signed out."""
    sessions = UserSession.objects.filter(user=user)
    keep_handle = ""
    if except_key:
        keep_handle = UserSession.objects.filter(session_key=except_key).values_list("handle", flat=True).first() or ""
        sessions = sessions.exclude(session_key=except_key)
    deleted, _ = sessions.delete()
    sessions_ended.send(sender=UserSession, user=user, keep_handle=keep_handle)
    return deleted


def purge_expired(now=None) -> int:
    """Delete the rows of sessions that expired (idle too long; Django leaves them in the table)."""
    deleted, _ = UserSession.objects.filter(expire_date__lt=now or timezone.now()).delete()
    return deleted


def active_sessions(user):
    return UserSession.objects.filter(user=user, expire_date__gt=timezone.now()).order_by("-last_seen_at")
