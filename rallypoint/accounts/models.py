"""Users: a login identity (e-mail, password, language) and nothing more.

All other personal data (name, phone, department) and the role live on
:class:`rallypoint.people.models.Membership`: each site keeps its own, so an
administrator who adds an existing e-mail to their site learns nothing that
another site stored about that person.
"""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rallypoint.lib.crypto import blind_index
from rallypoint.people.personal_data import declare
from rallypoint.tenants.encryption import EncryptedTextField, new_row_key, ring


def normalize_email(email: str) -> str:
    return email.strip().lower()


def email_index(email: str) -> str:
    """The blind index by which an (encrypted) e-mail address is found."""
    return blind_index(ring(), normalize_email(email), purpose="user.email")


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
        return self.get(email_index=email_index(username))

    def by_email(self, email: str):
        return self.filter(email_index=email_index(email))


class User(AbstractBaseUser):
    row_key = models.CharField(max_length=32, default=new_row_key, editable=False)
    #: The handle of this account's data key in the key store (crypto-shredding; see tenants.encryption).
    data_key = models.CharField(max_length=32, default=new_row_key, editable=False)
    email = EncryptedTextField(_("e-mail"), owner="self")
    email_index = models.CharField(max_length=64, unique=True, editable=False)
    language = models.CharField(
        _("language"), max_length=8, blank=True, choices=[("", _("Browser setting")), ("de", "Deutsch"),
                                                          ("en", "English")]
    )
    is_active = models.BooleanField(_("active"), default=True)
    is_support = models.BooleanField(_("support account"), default=False)
    # Changes whenever a password link is issued, so a newer link voids every older one.
    link_nonce = models.CharField(max_length=32, blank=True, editable=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    # The unique sign-in key is the blind index: the e-mail itself is encrypted. get_by_natural_key()
    # takes the e-mail address as typed and turns it into the index.
    USERNAME_FIELD = "email_index"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def save(self, *args, **kwargs):
        self.email = normalize_email(self.email)
        self.email_index = email_index(self.email)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "email" in update_fields:
            kwargs["update_fields"] = {*update_fields, "email_index"}
        super().save(*args, **kwargs)

    def __str__(self) -> str:  # no personal data: may end up in logs
        return f"User #{self.pk}"


class SignInThrottle(models.Model):
    """Failed sign-ins per (account, address) and per address, for growing waits.

    Not tenant data and no personal data: the key is a keyed hash of the e-mail
    and/or the client address, never the values themselves.
    """

    key = models.CharField(max_length=80, primary_key=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(default=timezone.now)
    blocked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"throttle {self.key[:12]}"


class UsedProofOfWork(models.Model):
    """A solved proof-of-work challenge, kept until it expires so it is accepted only once."""

    signature = models.CharField(max_length=128, primary_key=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"pow {self.signature[:12]}"


class UserSession(AbstractBaseSession):
    """A server-side session, with who it belongs to and which device, so it can be listed and ended.

    The cookie holds only the random session key. ``handle`` names the session on
    the sessions page and in URLs; it cannot be used to authenticate.
    """

    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="sessions")
    handle = models.CharField(max_length=32, blank=True, db_index=True)
    device = models.CharField(_("device"), max_length=120, blank=True)
    signed_in_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(default=timezone.now)

    @classmethod
    def get_session_store_class(cls):
        from rallypoint.accounts.sessions import SessionStore  # the store imports this model

        return SessionStore

    def __str__(self) -> str:
        return f"session {self.handle}"


class AppToken(models.Model):
    """A sign-in for the mobile/PWA client on one device, in one site.

    Opaque: the client holds ``rp_<random>``; only its SHA-256 is stored. It stops
    working when revoked, when unused for ``RP_APP_TOKEN_IDLE_DAYS``, and when its
    user loses access to the site.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="app_tokens")
    site = models.ForeignKey("tenants.Site", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("device name"), max_length=80)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"app token #{self.pk}"


from rallypoint.accounts.mfa_models import OrganizationSecurity, Passkey, RecoveryCode, TotpDevice  # noqa: E402,F401

# --- Personal data: what these models hold about people, how long (rallypoint.people.personal_data) ---

declare(User, fields=("email", "email_index", "password", "last_login"),
        why=_("as long as the account gives access to a site"),
        erased=_("deleted with the account; deactivated people keep theirs until they are deleted"))
declare(UserSession, fields=("session_data",), person=("user",), kept="SESSION_MAX_AGE_HOURS", unit="hours",
        why=_("a sign-in lasts at most this long (and ends earlier when idle)"),
        erased=_("deleted once expired"), purge="rallypoint.accounts.sessions.purge_expired",
        forget="delete")
declare(AppToken, fields=("name",), person=("user",), kept="APP_TOKEN_IDLE_DAYS",
        why=_("a device's sign-in ends when unused this long"),
        erased=_("deleted when revoked or unused this long, and with the account"),
        purge="rallypoint.accounts.apptokens.purge_unused",
        forget="delete")
declare(SignInThrottle, fields=("key",), why=_("a keyed hash of an address and an e-mail, until its wait is over"),
        erased=_("deleted when stale (after a day at most)"), purge="rallypoint.accounts.throttle.purge_stale")
