"""Users: a login identity (e-mail, password, language) and nothing more.

All other personal data (name, phone, department) and the role live on
:class:`rallypoint.tenants.models.Membership`: each site keeps its own, so an
administrator who adds an existing e-mail to their site learns nothing that
another site stored about that person.
"""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def normalize_email(email: str) -> str:
    return email.strip().lower()


class UserManager(BaseUserManager):
    def create_user(self, email: str, password: str | None = None, **fields):
        user = self.model(email=normalize_email(email), **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, username):
        return self.get(email=normalize_email(username))


class User(AbstractBaseUser):
    email = models.EmailField(_("e-mail"), unique=True)
    language = models.CharField(
        _("language"), max_length=8, blank=True, choices=[("", _("Browser setting")), ("de", "Deutsch"),
                                                          ("en", "English")]
    )
    is_active = models.BooleanField(_("active"), default=True)
    is_support = models.BooleanField(_("support account"), default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:  # no personal data: may end up in logs
        return f"User #{self.pk}"
