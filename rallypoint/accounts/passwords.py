"""Password rules beyond Django's: not guessable, and not built from the context of this installation.

No composition rules (ASVS 6.2.5): long passphrases of ordinary words pass; what fails is what an
attacker tries first — common passwords, keyboard walks, names with a year, and the like.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from zxcvbn import zxcvbn


class ContextPasswordValidator:
    """Refuse passwords that contain the product's name, the person's e-mail or one of their sites' names."""

    MIN_PART = 4

    def _words(self, user) -> set[str]:
        words = {"rallypoint"}
        if user is not None and getattr(user, "pk", None):
            local, _sep, domain = (user.email or "").lower().partition("@")
            words |= {local, domain.split(".")[0]}
            for membership in user.memberships.select_related("site__organization"):
                words |= {membership.site.name.lower(), membership.site.organization.name.lower()}
        parts = set()
        for word in words:
            parts |= {p for p in re.split(r"[\W_]+", word) if len(p) >= self.MIN_PART}
        return parts

    def validate(self, password: str, user=None) -> None:
        lowered = password.lower()
        if any(part in lowered for part in self._words(user)):
            raise ValidationError(
                _("The password must not contain your e-mail address, the name of your site or organisation, "
                  "or the name of this product."), code="password_in_context")

    def get_help_text(self) -> str:
        return _("Not built from your e-mail address, your site's name or the product's name.")


class GuessabilityPasswordValidator:
    """Refuse passwords that zxcvbn rates as guessable (score below 3 of 4).

    zxcvbn knows tens of thousands of common passwords, words and names, and patterns such as
    keyboard walks, repeats, dates and l33t substitutions; Django's own list alone holds fewer than
    200 common passwords of 12 or more characters.
    """

    MIN_SCORE = 3
    ANALYSED = 72  # zxcvbn's own limit; a longer password is at least as strong as its start

    def validate(self, password: str, user=None) -> None:
        hints = [user.email] if user is not None and getattr(user, "pk", None) else []
        if zxcvbn(password[: self.ANALYSED], user_inputs=hints)["score"] < self.MIN_SCORE:
            raise ValidationError(
                _("This password is too easy to guess: it is built from common passwords, words or patterns. "
                  "Several unrelated words make a strong passphrase that is easy to remember."),
                code="password_guessable")

    def get_help_text(self) -> str:
        return _("Not easy to guess: no common password, keyboard pattern or word with a year.")
