"""The second factor: TOTP, passkeys (WebAuthn), recovery codes, and the policy that requires them.

* **Policy.** Each organisation says who needs a second factor (:class:`OrganizationSecurity`):
  ``admins`` (the default: Administrators, Super-admins and support accounts), ``everyone`` or
  ``optional``. A person in several organisations follows the strictest one.
* **Sign-in.** After a right password, a person with a confirmed factor is *not* signed in: the
  session holds a pending state for five minutes, and :mod:`rallypoint.accounts.mfa_views` signs
  them in once a TOTP code, a recovery code or a passkey checks out. Wrong codes count against
  the same throttle as wrong passwords. A password link never signs anybody in, so a reset
  cannot skip this step.
* **TOTP** (RFC 6238): 30-second steps, 6 digits, one step of drift either way; a step, once
  used, and every older one are refused (no replay).
* **Passkeys**: py_webauthn; the RP ID is the host name of ``BASE_URL``, the origin ``BASE_URL``;
  challenges live in the session, never in a URL, and are used once.
* **Recovery codes**: ten, shown once, each works once; stored as HMAC-SHA256 under a key
  derived from ``SECRET_KEY``. The codes carry 60 random bits, so a slow password hash adds
  nothing against guessing, while the keyed hash can be looked up directly (one query instead
  of ten Argon2 checks per attempt) and is worthless without the key. Rotating ``SECRET_KEY``
  voids the codes; people then make new ones.
* **Changing factors** needs a recent full sign-in (:func:`recently_authenticated`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import pyotp
import segno
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from rallypoint.accounts.mfa_models import OrganizationSecurity, Passkey, RecoveryCode, TotpDevice
from rallypoint.accounts.models import User
from rallypoint.accounts.sessions import SIGNED_IN_AT
from rallypoint.audit.actions import diff, record, record_security_event
from rallypoint.audit.models import SecurityEvent
from rallypoint.people.models import Membership
from rallypoint.tenants.models import SuperAdmin
from rallypoint.tenants.roles import Role

Kind = SecurityEvent.Kind
Policy = OrganizationSecurity.SecondFactor

PENDING = "rp_mfa_pending"
PENDING_LIFETIME = 5 * 60
REGISTER_CHALLENGE = "rp_webauthn_register"
AUTH_CHALLENGE = "rp_webauthn_auth"
CHALLENGE_LIFETIME = 5 * 60
REAUTH_AT = "rp_reauth_at"
REAUTH_WINDOW = 10 * 60

TOTP_DIGITS = 6
TOTP_INTERVAL = 30
TOTP_DRIFT = 1
ISSUER = "Rallypoint"

RECOVERY_CODE_COUNT = 10
# Crockford's base32: no I, L, O, U, so nothing is misread when typed from paper.
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
RECOVERY_GROUPS, RECOVERY_GROUP_LENGTH = 3, 4
MAX_CREDENTIAL_JSON = 64 * 1024


class SecondFactorError(Exception):
    """A refused change or a failed ceremony; ``str(error)`` is a translated message for the person."""


# --- Policy ----------------------------------------------------------------------------------------


def policy_of(organization) -> str:
    row = OrganizationSecurity.objects.filter(organization=organization).first()
    return row.second_factor if row else Policy.ADMINS


def must_enroll(user) -> bool:
    """Whether the policy of any of the user's organisations requires them to have a second factor.

    ``admins``: Super-admins, active Administrators and support accounts; ``everyone``: every
    active member; ``optional``: nobody. A person in several organisations: the strictest wins.
    """
    if not user.is_authenticated or not user.is_active:
        return False
    super_orgs = set(SuperAdmin.objects.filter(user=user).values_list("organization_id", flat=True))
    roles = Membership.objects.filter(user=user, is_active=True).values_list("site__organization_id", "role")
    return must_enroll_given(user, super_orgs, roles)


def must_enroll_given(user, super_orgs, roles, policies: dict | None = None) -> bool:
    """:func:`must_enroll` for a caller that has read the user's Super-admin organisations and their active
    memberships' (organisation id, role) already, and perhaps the organisations' policies (those without
    a row are left out)."""
    admin_orgs, member_orgs = set(super_orgs), set()
    for org_id, role in roles:
        (admin_orgs if role == Role.ADMIN or user.is_support else member_orgs).add(org_id)
    orgs = admin_orgs | member_orgs
    if not orgs:
        return False
    if policies is None:
        policies = dict(OrganizationSecurity.objects.filter(organization_id__in=orgs).values_list(
            "organization_id", "second_factor"))
    for org_id in orgs:
        policy = policies.get(org_id, Policy.ADMINS)
        if policy == Policy.EVERYONE or (policy == Policy.ADMINS and org_id in admin_orgs):
            return True
    return False


def needs_second_step(user) -> bool:
    """Whether the user has a confirmed factor, so a password alone does not sign them in."""
    return (TotpDevice.objects.filter(user=user, confirmed=True).exists()
            or Passkey.objects.filter(user=user).exists())


def set_policy(*, organization, value: str, actor) -> None:
    """Set the organisation's second-factor policy; the change lands in the audit trail."""
    if value not in Policy.values:
        raise ValueError(value)
    with transaction.atomic():
        row, _created = OrganizationSecurity.objects.select_for_update().get_or_create(organization=organization)
        changes = diff({"second_factor": row.second_factor}, {"second_factor": value})
        if not changes:
            return
        row.second_factor = value
        row.updated_at = timezone.now()
        row.save(update_fields=["second_factor", "updated_at"])
        record(actor=actor, organization=organization, site=None, action="organization.second_factor_policy",
               object_type="organization", object_id=organization.pk, changes=changes)


# --- The factors of a person -----------------------------------------------------------------------


@dataclass(frozen=True)
class Factors:
    totp: list[TotpDevice]
    passkeys: list[Passkey]
    recovery_codes_left: int

    @property
    def count(self) -> int:
        return len(self.totp) + len(self.passkeys)


def factors_of(user) -> Factors:
    return Factors(totp=list(TotpDevice.objects.filter(user=user, confirmed=True).order_by("created_at", "pk")),
                   passkeys=list(Passkey.objects.filter(user=user).order_by("created_at", "pk")),
                   recovery_codes_left=RecoveryCode.objects.filter(user=user, used_at__isnull=True).count())


def _added(request, user, factor: str) -> None:
    record_security_event(Kind.SECOND_FACTOR_ADDED, request=request, user=user, actor=user,
                          detail={"factor": factor})


def remove_factor(factor: TotpDevice | Passkey, *, request=None) -> None:
    """Remove a confirmed TOTP device or a passkey; refused for the last one while the policy requires one.

    Without any factor left, the recovery codes go too: they only stand in for a factor.
    """
    user = factor.user
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()  # one change of factors at a time
        totp, passkeys = TotpDevice.objects.filter(user=user, confirmed=True), Passkey.objects.filter(user=user)
        if isinstance(factor, TotpDevice):
            totp = totp.exclude(pk=factor.pk)
        else:
            passkeys = passkeys.exclude(pk=factor.pk)
        others = totp.count() + passkeys.count()
        if others == 0 and must_enroll(user):
            raise SecondFactorError(_("Your organisation requires a second factor: add another one before you "
                                      "remove this one."))
        kind = "totp" if isinstance(factor, TotpDevice) else "passkey"
        factor.delete()
        if others == 0:
            RecoveryCode.objects.filter(user=user).delete()
        record_security_event(Kind.SECOND_FACTOR_REMOVED, request=request, user=user, actor=user,
                              detail={"factor": kind})


# --- TOTP --------------------------------------------------------------------------------------------


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL)


def new_totp_device(user) -> TotpDevice:
    """A fresh, unconfirmed device; an earlier unconfirmed one is discarded."""
    TotpDevice.objects.filter(user=user, confirmed=False).delete()
    return TotpDevice.objects.create(user=user, secret=pyotp.random_base32(32))


def unconfirmed_totp_device(user) -> TotpDevice | None:
    return TotpDevice.objects.filter(user=user, confirmed=False).order_by("-created_at", "-pk").first()


def provisioning_uri(device: TotpDevice) -> str:
    return _totp(device.secret).provisioning_uri(name=device.user.email, issuer_name=ISSUER)


def qr_code_data_uri(device: TotpDevice) -> str:
    """The otpauth URI as a QR code in an SVG data URI (the CSP allows ``img-src data:``; no script)."""
    return segno.make(provisioning_uri(device), error="m").svg_data_uri(scale=6, border=4, light="#fff")


def grouped_secret(device: TotpDevice) -> str:
    return " ".join(device.secret[i:i + 4] for i in range(0, len(device.secret), 4))


def _clean_totp(code: str) -> str | None:
    code = "".join((code or "").split()).replace("-", "")
    return code if len(code) == TOTP_DIGITS and code.isdigit() else None


def _accept_totp(device: TotpDevice, code: str) -> bool:
    """Check ``code`` against ``device`` and use up its time step (and every older one)."""
    code = _clean_totp(code)
    if code is None:
        return False
    totp = _totp(device.secret)
    now = int(timezone.now().timestamp()) // TOTP_INTERVAL
    for step in range(now + TOTP_DRIFT, now - TOTP_DRIFT - 1, -1):
        if step > device.last_used_step and hmac.compare_digest(totp.generate_otp(step), code):
            # Conditional update: of two requests racing with the same code, exactly one wins.
            won = TotpDevice.objects.filter(pk=device.pk, last_used_step__lt=step).update(last_used_step=step)
            if won:
                device.last_used_step = step
            return bool(won)
    return False


def confirm_totp(device: TotpDevice, code: str, *, request=None) -> bool:
    """Confirm a new device with a code from the app; False when the code is not right."""
    if device.confirmed or not _accept_totp(device, code):
        return False
    with transaction.atomic():
        TotpDevice.objects.filter(pk=device.pk).update(confirmed=True)
        device.confirmed = True
        _added(request, device.user, "totp")
    return True


def verify_totp(user, code: str) -> bool:
    return any(_accept_totp(device, code) for device in TotpDevice.objects.filter(user=user, confirmed=True))


# --- Recovery codes ------------------------------------------------------------------------------------


def _recovery_key() -> bytes:
    return hashlib.sha256(b"rallypoint-recovery-code:" + settings.SECRET_KEY.encode()).digest()


def _clean_recovery_code(code: str) -> str:
    code = "".join((code or "").split()).replace("-", "").lower()
    return code.translate(str.maketrans({"o": "0", "i": "1", "l": "1"}))


def recovery_code_hash(user_id: int, code: str) -> str:
    message = f"{user_id}:{_clean_recovery_code(code)}".encode()
    return hmac.new(_recovery_key(), message, hashlib.sha256).hexdigest()


def _new_recovery_code() -> str:
    return "-".join("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_GROUP_LENGTH))
                    for _ in range(RECOVERY_GROUPS))


def new_recovery_codes(user, *, request=None) -> list[str]:
    """Ten new codes, returned once in clear; every earlier code stops working."""
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    with transaction.atomic():
        RecoveryCode.objects.filter(user=user).delete()
        RecoveryCode.objects.bulk_create(RecoveryCode(user=user, code_hash=recovery_code_hash(user.pk, c))
                                         for c in codes)
        _added(request, user, "recovery_codes")
    return codes


def use_recovery_code(user, code: str) -> bool:
    if len(_clean_recovery_code(code)) != RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH:
        return False
    digest = recovery_code_hash(user.pk, code)
    # Claimed with a conditional update, so a code works exactly once even under concurrent use.
    return RecoveryCode.objects.filter(user=user, code_hash=digest, used_at__isnull=True).update(
        used_at=timezone.now()) == 1


# --- Passkeys (WebAuthn) --------------------------------------------------------------------------------


def rp_id() -> str:
    return urlsplit(settings.BASE_URL).hostname or "localhost"


def expected_origin() -> str:
    parts = urlsplit(settings.BASE_URL)
    return f"{parts.scheme}://{parts.netloc}"


def user_handle(user) -> bytes:
    """A stable, opaque WebAuthn user id: neither the e-mail nor the database id leaves the server."""
    key = hashlib.sha256(b"rallypoint-webauthn-user:" + settings.SECRET_KEY.encode()).digest()
    return hmac.new(key, str(user.pk).encode(), hashlib.sha256).digest()


def _descriptor(passkey: Passkey) -> PublicKeyCredentialDescriptor:
    transports = [AuthenticatorTransport(t) for t in passkey.transports
                  if t in AuthenticatorTransport._value2member_map_]
    return PublicKeyCredentialDescriptor(id=base64url_to_bytes(passkey.credential_id), transports=transports or None)


def _keep_challenge(request, key: str, challenge: bytes) -> None:
    request.session[key] = {"challenge": bytes_to_base64url(challenge), "at": int(time.time())}


def _take_challenge(request, key: str) -> bytes:
    """The challenge kept for this ceremony, removed so that it serves once."""
    kept = request.session.pop(key, None)
    if not isinstance(kept, dict) or time.time() - kept.get("at", 0) > CHALLENGE_LIFETIME:
        raise SecondFactorError(_("The passkey request has expired. Please try again."))
    return base64url_to_bytes(kept["challenge"])


def registration_options(request) -> str:
    """Options for ``navigator.credentials.create()`` as JSON; the challenge stays in the session."""
    user = request.user
    options = generate_registration_options(
        rp_id=rp_id(), rp_name=ISSUER, user_id=user_handle(user), user_name=user.email,
        user_display_name=user.email, attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=[_descriptor(p) for p in Passkey.objects.filter(user=user)],
    )
    _keep_challenge(request, REGISTER_CHALLENGE, options.challenge)
    return options_to_json(options)


def add_passkey(request, credential_json: str, name: str) -> Passkey:
    """Verify the browser's answer to :func:`registration_options` and keep the new passkey."""
    challenge = _take_challenge(request, REGISTER_CHALLENGE)
    if not credential_json or len(credential_json) > MAX_CREDENTIAL_JSON:
        raise SecondFactorError(_("The passkey could not be added. Please try again."))
    try:
        credential = parse_registration_credential_json(credential_json)
        verified = verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id(),
            expected_origin=expected_origin())
    except (WebAuthnException, ValueError, TypeError, KeyError, json.JSONDecodeError):
        raise SecondFactorError(_("The passkey could not be added. Please try again.")) from None
    transports = sorted({t.value for t in credential.response.transports or []})
    credential_id = bytes_to_base64url(verified.credential_id)
    if Passkey.objects.filter(credential_id=credential_id).exists():
        raise SecondFactorError(_("This passkey is already registered."))
    with transaction.atomic():
        passkey = Passkey.objects.create(
            user=request.user, credential_id=credential_id,
            public_key=bytes_to_base64url(verified.credential_public_key), sign_count=verified.sign_count,
            name=(name or "").strip()[:80] or _("Passkey"), transports=transports)
        _added(request, request.user, "passkey")
    return passkey


def authentication_options(request, user) -> str:
    """Options for ``navigator.credentials.get()`` limited to ``user``'s passkeys, as JSON."""
    options = generate_authentication_options(
        rp_id=rp_id(), allow_credentials=[_descriptor(p) for p in Passkey.objects.filter(user=user)],
        user_verification=UserVerificationRequirement.PREFERRED)
    _keep_challenge(request, AUTH_CHALLENGE, options.challenge)
    return options_to_json(options)


def verify_passkey(request, user, credential_json: str) -> bool:
    """Check an assertion from one of ``user``'s passkeys; a lower signature counter is refused."""
    try:
        challenge = _take_challenge(request, AUTH_CHALLENGE)
    except SecondFactorError:
        return False
    if not credential_json or len(credential_json) > MAX_CREDENTIAL_JSON:
        return False
    try:
        credential = parse_authentication_credential_json(credential_json)
        passkey = Passkey.objects.filter(user=user, credential_id=credential.id).first()
        if passkey is None:
            return False
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id(),
            expected_origin=expected_origin(), credential_public_key=base64url_to_bytes(passkey.public_key),
            credential_current_sign_count=passkey.sign_count)
    except (WebAuthnException, ValueError, TypeError, KeyError, json.JSONDecodeError):
        return False
    # The counter only grows (authenticators that do not count always send 0); of two racing uses of
    # one assertion, only one moves it.
    new = verified.new_sign_count
    rows = Passkey.objects.filter(pk=passkey.pk, **({"sign_count__lt": new} if new else {"sign_count": 0}))
    return rows.update(sign_count=new, last_used_at=timezone.now()) == 1


# --- The second step of signing in ---------------------------------------------------------------------


def start_second_step(request, user, next_url: str) -> HttpResponse | None:
    """After a right password: a redirect to the second step, or None to sign in right away.

    The session keeps who is half signed in (not signed in: no ``login()`` yet), for five minutes.
    """
    if not needs_second_step(user):
        return None
    backend = getattr(user, "backend", None) or settings.AUTHENTICATION_BACKENDS[0]
    request.session[PENDING] = {"user_id": user.pk, "backend": backend, "next": next_url or "",
                                "at": int(time.time()), "hash": user.get_session_auth_hash()}
    return redirect("mfa:verify")


@dataclass(frozen=True)
class Pending:
    user: User
    backend: str
    next: str


def pending_sign_in(request) -> Pending | None:
    """The half-finished sign-in of this session, or None (none, expired, or the password changed)."""
    data = request.session.get(PENDING)
    if not isinstance(data, dict):
        return None
    user = User.objects.filter(pk=data.get("user_id"), is_active=True).first()
    if (time.time() - data.get("at", 0) > PENDING_LIFETIME or user is None
            or data.get("backend") not in settings.AUTHENTICATION_BACKENDS
            or not constant_time_compare(user.get_session_auth_hash(), data.get("hash", ""))):
        clear_pending(request)
        return None
    return Pending(user=user, backend=data["backend"], next=data.get("next", ""))


def clear_pending(request) -> None:
    request.session.pop(PENDING, None)
    request.session.pop(AUTH_CHALLENGE, None)


def had_pending(request) -> bool:
    return PENDING in request.session


# --- Re-authentication before changes -------------------------------------------------------------------


def recently_authenticated(request) -> bool:
    """A full sign-in (or a confirmation of it) within the last ten minutes."""
    last = max(request.session.get(SIGNED_IN_AT, 0) or 0, request.session.get(REAUTH_AT, 0) or 0)
    return time.time() - last < REAUTH_WINDOW


def mark_reauthenticated(request) -> None:
    """The person proved again who they are: note when, and give the session a new key (ASVS 7.2.4)."""
    request.session.cycle_key()
    request.session[REAUTH_AT] = int(time.time())


def set_policy_approved(approval, approver) -> None:
    """The approved change of the second-factor rule (audit.approvals)."""
    value = approval.subject.get("second_factor")
    if value not in OrganizationSecurity.SecondFactor.values:
        raise ValidationError(_("Unknown rule."))
    set_policy(organization=approval.organization, value=value, actor=approver)
