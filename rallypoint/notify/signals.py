"""Signing out on purpose ends alarm notifications: this browser's on sign-out, every browser's when
all sessions are ended (see ``actions.forget_signed_out`` and ``actions.forget_every_device``)."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from rallypoint.accounts.sessions import HANDLE, sessions_ended
from rallypoint.notify import actions


@receiver(user_logged_out, dispatch_uid="rallypoint-push-sign-out")
def signed_out(sender, request, user, **kwargs) -> None:
    session = getattr(request, "session", None)
    if session is not None:
        actions.forget_signed_out(session.get(HANDLE, ""))


@receiver(sessions_ended, dispatch_uid="rallypoint-push-sessions-ended")
def sessions_were_ended(sender, user, keep_handle="", **kwargs) -> None:
    actions.forget_every_device(user, keep_handle=keep_handle)
