"""Every sign-in (the form, a password link, a test's force_login) starts a session the same way."""

from __future__ import annotations

import secrets
import time

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from rallypoint.accounts.sessions import DEVICE, HANDLE, SIGNED_IN_AT
from rallypoint.lib.useragent import describe


@receiver(user_logged_in, dispatch_uid="rallypoint-session-start")
def start_session(sender, request, user, **kwargs) -> None:
    if request is None or not hasattr(request, "session"):
        return
    request.session[SIGNED_IN_AT] = int(time.time())
    request.session[HANDLE] = secrets.token_hex(8)
    request.session[DEVICE] = describe(request.headers.get("user-agent", ""))
