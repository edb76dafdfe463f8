"""Password rules beyond Django's: no password built from the context of this installation."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


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
