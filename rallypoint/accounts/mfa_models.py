"""Second factors (TOTP, passkeys, recovery codes) and the organisation's second-factor policy.

The factors belong to the sign-in identity (:class:`~rallypoint.accounts.models.User`), not to a
site: one person signs in once, whatever sites they work in. Imported at the end of
``accounts/models.py`` so Django registers the models with the ``accounts`` app.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rallypoint.people.personal_data import declare
from rallypoint.tenants.encryption import EncryptedTextField, new_row_key

__all__ = ["OrganizationSecurity", "Passkey", "RecoveryCode", "TotpDevice"]


class TotpDevice(models.Model):
    """An authenticator app (RFC 6238: 30-second steps, 6 digits).

    ``last_used_step`` is the newest accepted time step: a code of that step or an older
    one is refused, so an observed code cannot be replayed.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp_devices")
    row_key = models.CharField(max_length=32, default=new_row_key, editable=False)
    # Base32, as the authenticator app gets it; a credential, so encrypted at rest like personal data.
    secret = EncryptedTextField(owner="user")
    confirmed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_step = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"TOTP device #{self.pk}"


class Passkey(models.Model):
    """A WebAuthn credential: its id and COSE public key (both base64url) and the signature counter."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="passkeys")
    credential_id = models.CharField(max_length=1400, unique=True)
    public_key = models.TextField()
    sign_count = models.BigIntegerField(default=0)
    name = models.CharField(_("name"), max_length=80)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    transports = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"passkey #{self.pk}"


class RecoveryCode(models.Model):
    """A single-use recovery code. Only a keyed hash is stored (see ``mfa.recovery_code_hash``)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"recovery code #{self.pk}"


class OrganizationSecurity(models.Model):
    """An organisation's security settings. No row means the defaults."""

    class SecondFactor(models.TextChoices):
        ADMINS = "admins", _("Required for Administrators and Super-admins")
        EVERYONE = "everyone", _("Required for everyone")
        OPTIONAL = "optional", _("Optional for everyone")

    organization = models.OneToOneField("tenants.Organization", on_delete=models.CASCADE, related_name="security")
    second_factor = models.CharField(_("second factor"), max_length=16, choices=SecondFactor.choices,
                                     default=SecondFactor.ADMINS)
    #: The processes that need a second person's approval (audit.approvals); None: all of them.
    four_eyes = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"security settings of organisation #{self.organization_id}"


# --- Personal data: what these models hold about people, how long (rallypoint.people.personal_data) ---

declare(TotpDevice, fields=("secret",), person=("user",), why=_("as long as the person keeps this second factor"),
        erased=_("deleted when the person removes it, and with the account"),
        forget="delete")
declare(Passkey, fields=("credential_id", "public_key", "name"), person=("user",),
        why=_("as long as the person keeps this passkey"),
        erased=_("deleted when the person removes it, and with the account"),
        forget="delete")
declare(RecoveryCode, fields=("code_hash",), person=("user",), why=_("as long as the person keeps a second factor"),
        erased=_("deleted when used or renewed, and with the account"),
        forget="delete")
