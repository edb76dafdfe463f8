"""A session that is deleted (sign-out, "sign out everywhere", a new password, an administrator ending
it, expiry clean-up) closes its sockets at once, in every process (see ``events.sessions_ended``)."""

from __future__ import annotations

from django.db.models.signals import post_delete
from django.dispatch import receiver

from rallypoint.accounts.models import UserSession
from rallypoint.accounts.sessions import moving
from rallypoint.realtime import events


@receiver(post_delete, sender=UserSession, dispatch_uid="rallypoint-stream-session-ended")
def session_deleted(sender, instance: UserSession, **kwargs) -> None:
    # A session moved to a new key (another site chosen) did not end: its socket reconnects for the new view.
    events.sessions_ended([instance.session_key], moved=moving.get())
