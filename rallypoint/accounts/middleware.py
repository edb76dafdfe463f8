from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from rallypoint.accounts.sessions import SIGNED_IN_AT, forget_on_device


class SessionLifetimeMiddleware:
    """End a session after its absolute lifetime (default 12 h), however active it is.

    The idle timeout needs no code here: the session row expires
    ``SESSION_COOKIE_AGE`` after the last request and is then no longer loaded.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            started = request.session.get(SIGNED_IN_AT, 0)
            if time.time() - started > settings.SESSION_MAX_AGE_HOURS * 3600:
                logout(request)
                messages.info(request, _("Your session has ended. Please sign in again."))
                return forget_on_device(redirect(settings.LOGIN_URL))
        return self.get_response(request)
