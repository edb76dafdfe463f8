"""Second factor (ASVS L2): TOTP, passkeys, recovery codes, the organisation policy and the enrolment gate."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

import cbor2
import pyotp
import pytest
import time_machine
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.core import mail
from django.utils import timezone
from webauthn.helpers import bytes_to_base64url

from rallypoint.accounts import mfa, throttle
from rallypoint.accounts.mfa_models import OrganizationSecurity, Passkey, RecoveryCode, TotpDevice
from rallypoint.accounts.models import UserSession
from rallypoint.audit import approvals
from rallypoint.audit.models import Approval, AuditEntry, SecurityEvent
from rallypoint.people.models import Membership
from rallypoint.tenants.actions import grant_super_admin
from rallypoint.tenants.roles import SUPER_ADMIN, Role
from tests.conftest import PASSWORD
from tests.pow import pow_field

Kind = SecurityEvent.Kind
GATE = "rallypoint.accounts.mfa_middleware.SecondFactorEnrollmentMiddleware"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture(autouse=True)
def enrolment_gate(settings):
    """The gate as settings.MIDDLEWARE is meant to hold it (until it does): after the user's language."""
    if GATE not in settings.MIDDLEWARE:
        middleware = list(settings.MIDDLEWARE)
        middleware.insert(middleware.index("rallypoint.web.middleware.UserLanguageMiddleware") + 1, GATE)
        settings.MIDDLEWARE = middleware


@pytest.fixture(autouse=True)
def default_policy(world):
    """No policy rows: the default ("admins"), whatever the shared fixtures chose for other tests."""
    OrganizationSecurity.objects.all().delete()


def with_password(user):
    user.set_password(PASSWORD)
    user.save()
    return user


def set_policy(org, value: str) -> None:
    OrganizationSecurity.objects.update_or_create(organization=org, defaults={"second_factor": value})


def password_step(client, email, password=PASSWORD, **extra):
    data = {"username": email, "password": password, **extra, **pow_field(client, "/accounts/login/")}
    return client.post("/accounts/login/", data)


def second_step(client, **data):
    return client.post("/accounts/second-factor/verify/", data)


def totp_code(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(timezone.now() + timedelta(seconds=30 * offset_steps))


def enrol_totp(user) -> str:
    """A confirmed TOTP device for ``user``, made directly; returns the secret."""
    device = mfa.new_totp_device(user)
    assert mfa.confirm_totp(device, totp_code(device.secret))
    return device.secret


def signed_in_user(client) -> int | None:
    value = client.session.get("_auth_user_id")
    return int(value) if value else None


@pytest.fixture
def admin(world):
    return with_password(world.a.people[Role.ADMIN].user)


@pytest.fixture
def employee(world):
    return with_password(world.a.people[Role.EMPLOYEE].user)


# --- TOTP ---------------------------------------------------------------------------------------------


def test_an_admin_enrols_an_authenticator_app_and_then_signs_in_with_it(client, admin):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert password_step(client, admin.email).status_code == 302
        gated = client.get("/", follow=True)
        assert gated.redirect_chain[-1][0] == "/accounts/second-factor/setup/"
        assert "requires a second factor" in gated.content.decode()
        start = client.post("/accounts/second-factor/setup/totp/", {"action": "start"}, follow=True)
        page = start.content.decode()
        assert 'inputmode="numeric"' in page and 'autocomplete="one-time-code"' in page
        assert "data:image/svg+xml" in page  # the QR code, no script
        secret = re.search(r"data-totp-secret>([A-Z2-7 ]+)<", page).group(1).replace(" ", "")
        assert len(secret) == 32
        done = client.post("/accounts/second-factor/setup/totp/", {"action": "confirm", "code": totp_code(secret)})
        assert done.status_code == 200 and "Your recovery codes" in done.content.decode()
        codes = re.findall(r"<li><code>[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}</code></li>", done.content.decode())
        assert len(codes) == 10
        assert client.get("/").status_code == 200  # the gate is open now
        client.post("/accounts/logout/")

        clock.shift(timedelta(seconds=30))
        first = password_step(client, admin.email, next="/people/")
        assert first["Location"] == "/accounts/second-factor/verify/"
        assert signed_in_user(client) is None  # a right password alone signs nobody in
        assert client.get("/people/")["Location"].startswith("/accounts/login/")
        response = second_step(client, method="totp", code=totp_code(secret))
        assert response.status_code == 302 and response["Location"] == "/people/"
    assert signed_in_user(client) == admin.pk
    event = SecurityEvent.objects.filter(kind=Kind.SIGN_IN, user=admin).first()
    assert event.detail == {"second_factor": "totp"} and event.client_ip == "127.0.0.1"
    added = SecurityEvent.objects.filter(kind=Kind.SECOND_FACTOR_ADDED, user=admin)
    assert {e.detail["factor"] for e in added} == {"totp", "recovery_codes"}


def test_a_wrong_confirmation_code_does_not_enrol(signed_in, world):
    client = signed_in(Role.ADMIN)
    client.post("/accounts/second-factor/setup/totp/", {"action": "start"})
    response = client.post("/accounts/second-factor/setup/totp/", {"action": "confirm", "code": "000000"})
    assert response.status_code == 400 and "That code is not right" in response.content.decode()
    assert not TotpDevice.objects.filter(user=world.a.people[Role.ADMIN].user, confirmed=True).exists()


def test_a_replayed_code_is_refused_and_so_is_an_older_one(client, admin):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        secret = enrol_totp(admin)
        clock.shift(timedelta(seconds=30))
        code = totp_code(secret)
        password_step(client, admin.email)
        assert second_step(client, method="totp", code=code).status_code == 302
        client.post("/accounts/logout/")
        password_step(client, admin.email)
        assert second_step(client, method="totp", code=code).status_code == 400  # the same code again
        assert second_step(client, method="totp", code=totp_code(secret, -1)).status_code == 400  # an older one
        assert signed_in_user(client) is None
        clock.shift(timedelta(seconds=30))
        assert second_step(client, method="totp", code=totp_code(secret)).status_code == 302


def test_codes_one_step_off_are_accepted_two_are_not(admin):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        secret = enrol_totp(admin)
        clock.shift(timedelta(minutes=5))
        assert not mfa.verify_totp(admin, totp_code(secret, -2))
        assert not mfa.verify_totp(admin, totp_code(secret, 2))
        assert mfa.verify_totp(admin, totp_code(secret, -1))
        assert mfa.verify_totp(admin, totp_code(secret, 1))


def test_wrong_codes_earn_the_same_growing_waits_as_wrong_passwords(client, admin):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        secret = enrol_totp(admin)
        clock.shift(timedelta(seconds=30))
        password_step(client, admin.email)
        waits = []
        for _ in range(4):
            response = second_step(client, method="totp", code="123456")
            assert response.status_code == 400
            waits.append(response.context["wait"])
        assert waits == [0, 0, 0, 2]
        held = second_step(client, method="totp", code=totp_code(secret))
        assert held.status_code == 429 and "Too many failed attempts" in held.content.decode()
        # The password step shares the count: it is held back too.
        assert password_step(client, admin.email).status_code == 429
        clock.shift(timedelta(seconds=3))
        assert second_step(client, method="totp", code=totp_code(secret)).status_code == 302
    kinds = list(SecurityEvent.objects.filter(user=admin).values_list("kind", flat=True))
    assert kinds.count(Kind.SIGN_IN_FAILED) == 4 and kinds.count(Kind.SIGN_IN_THROTTLED) == 2


def test_entering_the_password_again_does_not_reset_the_count_of_wrong_codes(client, admin):
    with time_machine.travel(timezone.now(), tick=False):
        enrol_totp(admin)
        password_step(client, admin.email)
        for _ in range(3):
            second_step(client, method="totp", code="123456")
        assert password_step(client, admin.email).status_code == 302
        assert second_step(client, method="totp", code="123456").context["wait"] == 2


# --- Recovery codes ----------------------------------------------------------------------------------


def test_a_recovery_code_works_once(client, admin):
    enrol_totp(admin)
    codes = mfa.new_recovery_codes(admin)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert not RecoveryCode.objects.filter(code_hash__in=codes).exists()  # only hashes are stored
    password_step(client, admin.email)
    response = second_step(client, method="recovery", recovery_code=codes[0].upper().replace("-", " "))
    assert response.status_code == 302 and signed_in_user(client) == admin.pk
    assert "Codes left: 9" in client.get("/").content.decode()
    client.post("/accounts/logout/")
    password_step(client, admin.email)
    assert second_step(client, method="recovery", recovery_code=codes[0]).status_code == 400
    assert second_step(client, method="recovery", recovery_code=codes[1]).status_code == 302


def test_new_recovery_codes_void_the_old_ones(signed_in, world):
    admin = world.a.people[Role.ADMIN].user
    enrol_totp(admin)
    old = mfa.new_recovery_codes(admin)
    client = signed_in(Role.ADMIN)
    page = client.post("/accounts/second-factor/setup/recovery-codes/").content.decode()
    new = re.findall(r"<code>([0-9a-z-]{14})</code>", page)
    assert len(new) == 10
    assert not mfa.use_recovery_code(admin, old[0])
    assert mfa.use_recovery_code(admin, new[0])


# --- Passkeys -----------------------------------------------------------------------------------------


class SoftAuthenticator:
    """A software authenticator speaking real WebAuthn (P-256, "none" attestation)."""

    def __init__(self, origin: str, rp_id: str):
        self.origin, self.rp_id = origin, rp_id
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = bytes(range(16))
        self.counter = 0

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}).encode()

    def create(self, options: dict) -> str:
        numbers = self.key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})
        auth_data = (hashlib.sha256(self.rp_id.encode()).digest() + bytes([0x45]) + self.counter.to_bytes(4, "big")
                     + bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id + cose)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        b64 = bytes_to_base64url
        return json.dumps({"id": b64(self.credential_id), "rawId": b64(self.credential_id), "type": "public-key",
                           "response": {"clientDataJSON": b64(self._client_data("webauthn.create",
                                                                                options["challenge"], None)),
                                        "attestationObject": b64(attestation), "transports": ["internal"]}})

    def get(self, options: dict, counter: int | None = None, origin: str | None = None) -> str:
        self.counter = self.counter + 1 if counter is None else counter
        auth_data = hashlib.sha256(self.rp_id.encode()).digest() + bytes([0x05]) + self.counter.to_bytes(4, "big")
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        b64 = bytes_to_base64url
        return json.dumps({"id": b64(self.credential_id), "rawId": b64(self.credential_id), "type": "public-key",
                           "response": {"clientDataJSON": b64(client_data), "authenticatorData": b64(auth_data),
                                        "signature": b64(signature), "userHandle": None}})


@pytest.fixture
def authenticator():
    return SoftAuthenticator(mfa.expected_origin(), mfa.rp_id())


def add_passkey(client, authenticator, name="Laptop"):
    options = client.post("/accounts/second-factor/setup/passkey-options/", HTTP_ACCEPT="application/json").json()
    assert options["rp"]["id"] == mfa.rp_id() and "@" not in options["user"]["id"]
    return client.post("/accounts/second-factor/setup/passkeys/", {"name": name,
                                                                     "credential": authenticator.create(options)})


def passkey_options(client) -> dict:
    response = client.post("/accounts/second-factor/verify/passkey-options/")
    assert response.status_code == 200
    return response.json()


def test_a_passkey_is_added_and_signs_in_and_a_lower_counter_is_refused(client, signed_in, world, authenticator):
    admin = with_password(world.a.people[Role.ADMIN].user)
    added = add_passkey(signed_in(Role.ADMIN), authenticator)
    assert added.status_code == 200 and "Your recovery codes" in added.content.decode()
    passkey = Passkey.objects.get(user=admin)
    assert passkey.name == "Laptop" and passkey.transports == ["internal"] and str(passkey) == f"passkey #{passkey.pk}"
    client.post("/accounts/logout/")

    password_step(client, admin.email)
    options = passkey_options(client)
    assert [c["id"] for c in options["allowCredentials"]] == [passkey.credential_id]
    response = second_step(client, method="passkey", credential=authenticator.get(options))
    assert response.status_code == 302 and signed_in_user(client) == admin.pk
    passkey.refresh_from_db()
    assert passkey.sign_count == 1 and passkey.last_used_at is not None
    client.post("/accounts/logout/")

    password_step(client, admin.email)
    cloned = second_step(client, method="passkey", credential=authenticator.get(passkey_options(client), counter=1))
    assert cloned.status_code == 400 and signed_in_user(client) is None


def test_a_passkey_answer_for_another_origin_or_an_old_challenge_is_refused(client, world, authenticator):
    admin = with_password(world.a.people[Role.ADMIN].user)
    client.force_login(admin)
    add_passkey(client, authenticator)
    client.post("/accounts/logout/")
    password_step(client, admin.email)
    options = passkey_options(client)
    phished = second_step(client, method="passkey", credential=authenticator.get(options, origin="https://evil.example"))
    assert phished.status_code == 400
    # The challenge served once: the same options cannot be answered again.
    assert second_step(client, method="passkey", credential=authenticator.get(options)).status_code == 400
    assert signed_in_user(client) is None


def test_the_passkey_options_need_a_pending_sign_in(client, world):
    assert client.post("/accounts/second-factor/verify/passkey-options/").status_code == 403


# --- Policy and the enrolment gate --------------------------------------------------------------------


def test_an_admin_without_a_second_factor_is_sent_to_set_one_up(signed_in, world):
    client = signed_in(Role.ADMIN)
    response = client.get("/people/")
    assert response.status_code == 302 and response["Location"] == "/accounts/second-factor/setup/"
    api = client.get("/api/v1/people")
    assert api.status_code == 403 and "second factor" in api.json()["detail"]
    assert client.get("/accounts/second-factor/setup/").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.post("/language/", {"language": "de", "next": "/"}).status_code == 302
    assert client.post("/accounts/logout/").status_code == 302


def test_a_super_admin_is_forced_too(signed_in):
    assert signed_in(SUPER_ADMIN).get("/people/").status_code == 302


def test_the_optional_policy_lets_an_admin_through(signed_in, world):
    set_policy(world.org_a, OrganizationSecurity.SecondFactor.OPTIONAL)
    assert signed_in(Role.ADMIN).get("/people/").status_code == 200


def test_an_employee_is_forced_only_when_the_policy_says_everyone(signed_in, world):
    client = signed_in(Role.EMPLOYEE)
    assert client.get("/").status_code == 200
    set_policy(world.org_a, OrganizationSecurity.SecondFactor.EVERYONE)
    assert client.get("/")["Location"] == "/accounts/second-factor/setup/"


def test_the_strictest_organisation_wins(world):
    person = world.a.people[Role.EMPLOYEE]
    Membership.objects.create(site=world.b.site, user=person.user, role=Role.ADMIN, full_name="Two orgs")
    set_policy(world.org_a, OrganizationSecurity.SecondFactor.OPTIONAL)
    assert mfa.must_enroll(person.user)  # an admin in org B, which keeps the default
    set_policy(world.org_b, OrganizationSecurity.SecondFactor.OPTIONAL)
    assert not mfa.must_enroll(person.user)
    set_policy(world.org_a, OrganizationSecurity.SecondFactor.EVERYONE)
    assert mfa.must_enroll(person.user)


def test_support_accounts_count_as_admins_and_inactive_memberships_do_not_count(world):
    support = Membership.objects.get(site=world.a.site, user__is_support=True)
    Membership.objects.filter(pk=support.pk).update(role=Role.LEAD)
    assert mfa.must_enroll(support.user)  # whatever role it holds
    admin = world.a.people[Role.ADMIN]
    Membership.objects.filter(pk=admin.pk).update(is_active=False)
    assert not mfa.must_enroll(admin.user)


def test_the_pending_sign_in_expires_after_five_minutes(client, admin):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        secret = enrol_totp(admin)
        clock.shift(timedelta(seconds=30))
        password_step(client, admin.email)
        clock.shift(timedelta(minutes=5, seconds=1))
        response = second_step(client, method="totp", code=totp_code(secret))
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
        assert signed_in_user(client) is None
        assert "took too long" in client.get(response["Location"]).content.decode()
        password_step(client, admin.email)
        clock.shift(timedelta(minutes=4, seconds=50))
        assert second_step(client, method="totp", code=totp_code(secret)).status_code == 302


def test_a_password_reset_does_not_skip_the_second_factor(client, world, send_outbox):
    member = with_password(world.a.people[Role.MEMBER].user)
    secret = enrol_totp(member)
    client.post("/accounts/password-reset/", {"email": member.email, **pow_field(client, "/accounts/password-reset/")})
    send_outbox()
    link = "/" + re.search(r"https://\S+", mail.outbox[-1].body).group(0).split("/", 3)[3]
    form = client.get(link)["Location"]
    done = client.post(form, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD,
                              **pow_field(client, form)})
    assert done.status_code == 302 and signed_in_user(client) is None
    response = password_step(client, member.email, NEW_PASSWORD)
    assert response["Location"] == "/accounts/second-factor/verify/" and signed_in_user(client) is None
    with time_machine.travel(timezone.now() + timedelta(seconds=30)):
        assert second_step(client, method="totp", code=totp_code(secret)).status_code == 302
    assert signed_in_user(client) == member.pk


def test_a_password_change_voids_a_pending_sign_in(client, admin):
    secret = enrol_totp(admin)
    password_step(client, admin.email)
    admin.set_password(NEW_PASSWORD)
    admin.save()
    with time_machine.travel(timezone.now() + timedelta(seconds=30)):
        assert second_step(client, method="totp", code=totp_code(secret))["Location"].startswith("/accounts/login/")
    assert signed_in_user(client) is None


def test_an_admin_cannot_remove_the_last_factor_but_may_with_another(signed_in, world, authenticator):
    admin = world.a.people[Role.ADMIN].user
    enrol_totp(admin)
    client = signed_in(Role.ADMIN)
    device = TotpDevice.objects.get(user=admin)
    refused = client.post(f"/accounts/second-factor/setup/totp/{device.pk}/remove/", follow=True)
    assert "add another one before you remove" in refused.content.decode()
    assert TotpDevice.objects.filter(pk=device.pk).exists()
    add_passkey(client, authenticator)
    assert client.post(f"/accounts/second-factor/setup/totp/{device.pk}/remove/").status_code == 302
    assert not TotpDevice.objects.filter(pk=device.pk).exists()
    removed = SecurityEvent.objects.get(kind=Kind.SECOND_FACTOR_REMOVED, user=admin)
    assert removed.detail == {"factor": "totp"} and removed.organization == world.org_a


def test_under_the_optional_policy_the_last_factor_goes_and_the_recovery_codes_with_it(signed_in, world):
    set_policy(world.org_a, OrganizationSecurity.SecondFactor.OPTIONAL)
    admin = world.a.people[Role.ADMIN].user
    enrol_totp(admin)
    mfa.new_recovery_codes(admin)
    client = signed_in(Role.ADMIN)
    device = TotpDevice.objects.get(user=admin)
    assert client.post(f"/accounts/second-factor/setup/totp/{device.pk}/remove/").status_code == 302
    assert not mfa.needs_second_step(admin) and not RecoveryCode.objects.filter(user=admin).exists()


def test_nobody_removes_another_persons_factor(signed_in, world):
    other = world.a.people[Role.LEAD].user
    enrol_totp(other)
    device = TotpDevice.objects.get(user=other)
    client = signed_in(Role.EMPLOYEE)
    assert client.post(f"/accounts/second-factor/setup/totp/{device.pk}/remove/").status_code == 404
    assert TotpDevice.objects.filter(pk=device.pk).exists()


def test_changing_factors_long_after_sign_in_needs_the_password_and_the_second_factor(client, admin):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        secret = enrol_totp(admin)
        client.force_login(admin)
        clock.shift(timedelta(minutes=11))
        stale = client.post("/accounts/second-factor/setup/recovery-codes/")
        assert stale["Location"].startswith("/accounts/second-factor/setup/confirm/")
        assert client.post("/accounts/second-factor/setup/passkey-options/",
                           HTTP_ACCEPT="application/json").status_code == 403
        wrong = client.post("/accounts/second-factor/setup/confirm/", {"password": "wrong password!"})
        assert wrong.status_code == 400
        right = client.post("/accounts/second-factor/setup/confirm/", {"password": PASSWORD})
        assert right["Location"] == "/accounts/second-factor/verify/"
        assert client.get("/accounts/second-factor/verify/").context["reauthenticating"]
        key_before = client.session.session_key
        done = second_step(client, method="totp", code=totp_code(secret, 1))
        assert done["Location"] == "/accounts/second-factor/setup/"
        assert client.session.session_key != key_before  # proving it again earns a new session key
        assert not UserSession.objects.filter(session_key=key_before).exists()  # and the old one is gone
        assert client.post("/accounts/second-factor/setup/recovery-codes/").status_code == 200


def test_a_super_admin_sets_the_policy_and_it_is_audited(signed_in, world):
    enrol_totp(world.super_a)
    client = signed_in(SUPER_ADMIN)
    assert client.get("/accounts/second-factor/policy/").status_code == 200
    response = client.post("/accounts/second-factor/policy/", {"second_factor": "everyone"})
    assert response.status_code == 302 and response["Location"] == "/audit/approvals/"  # four-eyes by default
    assert mfa.policy_of(world.org_a) == "admins"
    lead = world.a.people[Role.LEAD].user
    grant_super_admin(actor=None, organization=world.org_a, user=lead)
    approvals.decide(approval=Approval.objects.get(process="second_factor_rule"), approver=lead, approve=True)
    assert mfa.policy_of(world.org_a) == "everyone" and mfa.policy_of(world.org_b) == "admins"
    entry = AuditEntry.objects.get(action="organization.second_factor_policy")
    assert entry.organization == world.org_a and entry.changes == {"second_factor": ["admins", "everyone"]}


def test_an_admin_may_not_set_the_policy(signed_in, world):
    set_policy(world.org_a, OrganizationSecurity.SecondFactor.OPTIONAL)
    client = signed_in(Role.ADMIN)
    assert client.post("/accounts/second-factor/policy/", {"second_factor": "optional"}).status_code == 403


def test_rows_name_no_personal_data(world):
    admin = world.a.people[Role.ADMIN].user
    enrol_totp(admin)
    rows = [TotpDevice.objects.get(user=admin), *RecoveryCode.objects.filter(user=admin)]
    set_policy(world.org_a, "everyone")
    rows.append(OrganizationSecurity.objects.get(organization=world.org_a))
    for row in rows:
        assert admin.email not in str(row) and world.org_a.name not in str(row)


def test_the_throttle_keys_are_the_ones_of_the_password(client, admin):
    enrol_totp(admin)
    password_step(client, admin.email)
    second_step(client, method="totp", code="000000")
    keys = throttle.keys_for(admin.email, "127.0.0.1")
    assert throttle.SignInThrottle.objects.get(key=keys.account).failures == 1


def test_codes_cannot_be_guessed_by_changing_addresses(client, admin):
    """Someone holding the password tries codes from ever new addresses: the count is per person too."""
    with time_machine.travel(timezone.now(), tick=False) as clock:
        enrol_totp(admin)
        clock.shift(timedelta(seconds=30))
        password_step(client, admin.email)
        statuses = []
        for n in range(throttle.SECOND_FACTOR_TRIES):
            response = client.post("/accounts/second-factor/verify/", {"method": "totp", "code": "123456"},
                                   REMOTE_ADDR=f"2001:db8:{n}::1")
            statuses.append(response.status_code)
            clock.shift(timedelta(minutes=6))  # any wait has run out
        assert statuses[-1] == 302 and "/accounts/login/" in response["Location"]  # the password again
        assert signed_in_user(client) is None
        assert client.get("/accounts/second-factor/verify/")["Location"].startswith("/accounts/login/")


def test_ipv6_clients_count_per_64_network():
    one = throttle.keys_for("a@example.org", "2001:db8:1:2::10")
    same_net = throttle.keys_for("a@example.org", "2001:db8:1:2:ffff::99")
    other_net = throttle.keys_for("a@example.org", "2001:db8:1:3::10")
    assert one == same_net and one.account != other_net.account
