"""Password links: single use, only the newest one works, and short-lived.

Invitation and reset links last 24 hours; the link ``rallypoint setup`` prints for the first
Super-admin lasts one hour (it is shown on a terminal, not sent to a mailbox).

Django's generator already binds a link to the password hash and the last
sign-in (so setting a password or signing in voids it) and to its age
(``PASSWORD_RESET_TIMEOUT`` = 24 h). Rallypoint adds a per-user nonce that
changes whenever a link is issued, so a newer link voids all older ones, and
a shorter age for the setup link (which is signed under a salt of its own, so
it cannot pass for a 24-hour link).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import base36_to_int, urlsafe_base64_encode

#: How long the first Super-admin's link from ``rallypoint setup`` works.
SETUP_LINK_SECONDS = 3600


class PasswordLinkTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "rallypoint.accounts.tokens.PasswordLinkTokenGenerator"

    def __init__(self, *, key_salt: str | None = None, max_age: int | None = None):
        super().__init__()
        if key_salt:
            self.key_salt = key_salt
        self.max_age = max_age  # None: PASSWORD_RESET_TIMEOUT alone

    def _make_hash_value(self, user, timestamp):
        return f"{super()._make_hash_value(user, timestamp)}{user.link_nonce}{user.is_active}"

    def check_token(self, user, token) -> bool:
        if not super().check_token(user, token):  # signature, nonce, password, last sign-in, 24 hours
            return False
        if self.max_age is None:
            return True
        issued = base36_to_int(token.split("-")[0])  # the format was checked above
        return self._num_seconds(self._now()) - issued <= self.max_age


password_links = PasswordLinkTokenGenerator()
setup_links = PasswordLinkTokenGenerator(key_salt="rallypoint.accounts.tokens.SetupLink",
                                         max_age=SETUP_LINK_SECONDS)


class AnyPasswordLink:
    """What the set-password page accepts: an invitation or reset link, or the setup link."""

    def check_token(self, user, token) -> bool:
        return password_links.check_token(user, token) or setup_links.check_token(user, token)


def issue_password_link(user, generator: PasswordLinkTokenGenerator = password_links) -> str:
    """A new link for ``user``; every earlier link stops working."""
    user.link_nonce = secrets.token_hex(16)
    user.save(update_fields=["link_nonce"])
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return settings.BASE_URL + reverse("accounts:set_password", args=[uid, generator.make_token(user)])


def issue_setup_link(user) -> str:
    """The one-hour link with which the first Super-admin sets their password; earlier links stop working."""
    return issue_password_link(user, setup_links)
