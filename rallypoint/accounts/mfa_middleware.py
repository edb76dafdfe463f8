"""The enrolment gate: whoever the policy requires to have a second factor sets one up first."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _

from rallypoint.accounts import mfa

# (namespace, url name) of the pages that stay reachable before enrolment.
OPEN_ROUTES = frozenset({("mfa", "setup"), ("mfa", "totp"), ("mfa", "passkey_options"), ("mfa", "passkey_add"),
                         ("mfa", "recovery_codes"), ("mfa", "confirm"), ("mfa", "verify"),
                         ("mfa", "verify_passkey_options"), ("accounts", "logout"), ("web", "set_language"),
                         ("", "healthz"), ("", "readyz"), ("alarms", "answer_link"),
                         ("notify", "service_worker"), ("notify", "push_key")})


def _is_open(request) -> bool:
    if request.path_info.startswith(settings.STATIC_URL):
        return True
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    return (match.namespace, match.url_name) in OPEN_ROUTES


class SecondFactorEnrollmentMiddleware:
    """A signed-in person whom the policy requires to have a second factor, and who has none, is sent
    to the set-up page from every page but those needed to set one up, sign out or switch the
    language; the API answers 403. Goes after AuthenticationMiddleware and MessageMiddleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        # The pages still open to such a person do not connect to the live stream (it refuses them).
        request.second_factor_pending = False
        if user is not None and user.is_authenticated and _is_open(request):
            request.second_factor_pending = mfa.needs_second_step(user) or mfa.must_enroll(user)
        if (user is not None and user.is_authenticated and not _is_open(request)
                and not mfa.needs_second_step(user) and mfa.must_enroll(user)):
            if request.path_info.startswith("/api/"):
                text = _("Your organisation requires a second factor. Please set one up to continue.")
                return JsonResponse({"detail": text}, status=403)
            return redirect("mfa:setup")  # the set-up page says why (once: no message as well)
        return self.get_response(request)
