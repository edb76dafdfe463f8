"""Sign-in: growing waits instead of lock-out, security events, trusted proxies only."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from rallypoint.accounts import throttle
from rallypoint.audit.models import SecurityEvent
from rallypoint.lib.net import client_ip, parse_networks
from rallypoint.tenants.roles import Role
from tests.conftest import PASSWORD
from tests.pow import pow_field

Kind = SecurityEvent.Kind


@pytest.fixture
def lead(world):
    user = world.a.people[Role.LEAD].user
    user.set_password(PASSWORD)
    user.save()
    return user


def attempt(client, email, password, ip="198.51.100.7", **headers):
    data = {"username": email, "password": password, **pow_field(client, "/accounts/login/")}
    return client.post("/accounts/login/", data, REMOTE_ADDR=ip, **headers)


def test_a_right_password_signs_in_and_is_recorded_with_the_address(client, lead, world):
    response = attempt(client, lead.email, PASSWORD)
    assert response.status_code == 302
    event = SecurityEvent.objects.get(kind=Kind.SIGN_IN, user=lead)
    assert event.client_ip == "198.51.100.7" and event.organization == world.org_a


def test_wrong_passwords_earn_growing_waits_that_end(client, lead):
    waits = []
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(6):
            response = attempt(client, lead.email, "wrong password!")
            assert response.status_code == 400
            waits.append(response.context["wait"])
            clock.shift(timedelta(seconds=response.context["wait"] + 1))
        assert waits == [0, 0, 0, 2, 4, 8]
        attempt(client, lead.email, "wrong password!")  # earns 16 s
        held = attempt(client, lead.email, PASSWORD)
        assert held.status_code == 429 and 0 < held.context["wait"] <= 16
        assert "Too many failed attempts" in held.content.decode()
        clock.shift(timedelta(seconds=17))
        assert attempt(client, lead.email, PASSWORD).status_code == 302
    kinds = list(SecurityEvent.objects.filter(user=lead).values_list("kind", flat=True))
    assert kinds.count(Kind.SIGN_IN_FAILED) == 7 and kinds.count(Kind.SIGN_IN_THROTTLED) == 1


def test_the_wait_is_capped_at_minutes_and_never_a_lock_out(client, lead):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(13):
            response = attempt(client, lead.email, "wrong password!")
            wait = response.context["wait"]
            clock.shift(timedelta(seconds=wait + 1))
        assert wait == throttle.MAX_WAIT.total_seconds() == 300
        assert attempt(client, lead.email, PASSWORD).status_code == 302


def test_an_attacker_elsewhere_cannot_hold_back_the_operator(client, lead):
    for _ in range(8):
        attempt(client, lead.email, "wrong password!", ip="203.0.113.66")
    assert attempt(client, lead.email, "wrong password!", ip="203.0.113.66").status_code == 429
    assert attempt(client, lead.email, PASSWORD, ip="192.0.2.10").status_code == 302


def test_a_spoofed_forwarded_for_header_does_not_help(client, lead, settings):
    settings.TRUSTED_PROXIES = []
    for n in range(8):
        attempt(client, lead.email, "wrong password!", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
    assert attempt(client, lead.email, PASSWORD, HTTP_X_FORWARDED_FOR="10.9.9.9").status_code == 429


def test_many_accounts_from_one_address_are_slowed_down_too(client, world):
    emails = [m.user.email for sw in (world.a, world.b) for m in sw.people.values()]
    statuses = [attempt(client, email, "wrong password!").status_code for email in emails * 3][:25]
    assert statuses[:throttle.ADDRESS_FREE_FAILURES] == [400] * throttle.ADDRESS_FREE_FAILURES
    assert 429 in statuses[throttle.ADDRESS_FREE_FAILURES:]


def test_unknown_addresses_fail_the_same_way_and_are_recorded_without_a_tenant(client, world):
    response = attempt(client, "nobody@example.org", "wrong password!")
    assert response.status_code == 400
    assert "E-mail or password is not right" in response.content.decode()
    event = SecurityEvent.objects.get(kind=Kind.SIGN_IN_FAILED)
    assert event.user is None and event.organization is None and event.site is None


def test_client_address_believes_only_trusted_proxies():
    trusted = parse_networks(["10.0.0.0/8", "::1"])
    assert client_ip("203.0.113.5", "1.2.3.4", trusted) == "203.0.113.5"
    assert client_ip("10.0.0.2", "198.51.100.9", trusted) == "198.51.100.9"
    assert client_ip("10.0.0.2", "6.6.6.6, 198.51.100.9, 10.1.1.1", trusted) == "198.51.100.9"
    assert client_ip("10.0.0.2", "garbage, 198.51.100.9", trusted) == "198.51.100.9"
    assert client_ip("10.0.0.2", "198.51.100.9, garbage", trusted) == "10.0.0.2"
    assert client_ip("::1", "2001:db8::7", trusted) == "2001:db8::7"
    assert client_ip("", None, trusted) is None


def test_security_events_are_shown_to_administrators_only(client, lead, signed_in, world):
    attempt(client, lead.email, "wrong password!")
    attempt(client, lead.email, PASSWORD)
    client.post("/accounts/logout/")
    admin = signed_in(Role.ADMIN)
    page = admin.get("/audit/security/").content.decode()
    assert "Sign-in failed" in page and "Signed in" in page and "Signed out" in page
    assert "198.51.100.7" in page and lead_name(world) in page
    for role in (Role.LEAD, Role.MEMBER, Role.EMPLOYEE, Role.GUEST):
        assert signed_in(role).get("/audit/security/").status_code == 403


def test_an_administrator_of_another_site_sees_none_of_them(client, lead, world):
    attempt(client, lead.email, PASSWORD)
    admin_a2 = world.a2.people[Role.ADMIN].user
    client.force_login(admin_a2)
    page = client.get("/audit/security/").content.decode()
    assert "198.51.100.7" not in page and lead_name(world) not in page


def test_role_grants_are_security_events(world, signed_in):
    person = world.a.people[Role.EMPLOYEE]
    signed_in(Role.ADMIN).post(f"/people/{person.pk}/", {"full_name": person.full_name, "email": person.user.email,
                                                         "role": "lead"})
    event = SecurityEvent.objects.get(kind=Kind.ROLE_GRANTED, user=person.user, detail__role="lead")
    assert event.site == world.a.site and event.actor == world.a.people[Role.ADMIN].user


def test_old_events_and_stale_throttles_are_purged(world, settings):
    from rallypoint.audit.actions import purge_expired_security_events

    old = SecurityEvent.objects.create(kind=Kind.SIGN_IN, at=timezone.now() - timedelta(days=91))
    new = SecurityEvent.objects.create(kind=Kind.SIGN_IN, at=timezone.now() - timedelta(days=89))
    assert purge_expired_security_events() == 1
    assert not SecurityEvent.objects.filter(pk=old.pk).exists() and SecurityEvent.objects.filter(pk=new.pk).exists()
    keys = throttle.keys_for("x@example.org", "192.0.2.1")
    throttle.register_failure(keys, now=timezone.now() - timedelta(hours=2))
    assert throttle.purge_stale() == 2


def lead_name(world) -> str:
    return world.a.people[Role.LEAD].full_name
