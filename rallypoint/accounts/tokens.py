"""Password links (invitation and reset): 24 hours, single use, only the newest one works.

Django's generator already binds a link to the password hash and the last
sign-in (so setting a password or signing in voids it) and to its age
(``PASSWORD_RESET_TIMEOUT`` = 24 h). Rallypoint adds a per-user nonce that
changes whenever a link is issued, so a newer link voids all older ones.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode


class PasswordLinkTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "rallypoint.accounts.tokens.PasswordLinkTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        return f"{super()._make_hash_value(user, timestamp)}{user.link_nonce}{user.is_active}"


password_links = PasswordLinkTokenGenerator()


def issue_password_link(user) -> str:
    """A new link for ``user``; every earlier link stops working."""
    user.link_nonce = secrets.token_hex(16)
    user.save(update_fields=["link_nonce"])
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return settings.BASE_URL + reverse("accounts:set_password", args=[uid, password_links.make_token(user)])
