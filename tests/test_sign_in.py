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
    with time_machine.travel(timezone.now(), tick=False):
        for _ in range(8):
            attempt(client, lead.email, "wrong password!", ip="203.0.113.66")
        assert attempt(client, lead.email, "wrong password!", ip="203.0.113.66").status_code == 429
        assert attempt(client, lead.email, PASSWORD, ip="192.0.2.10").status_code == 302


def test_a_spoofed_forwarded_for_header_does_not_help(client, lead, settings):
    settings.TRUSTED_PROXIES = []
    with time_machine.travel(timezone.now(), tick=False):  # the 2 s wait must not run out on a slow machine
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
    throttle.begin(keys, now=timezone.now() - throttle.FORGET_AFTER - timedelta(minutes=1))
    throttle.begin(throttle.keys_for("x@example.org", "192.0.2.2"), now=timezone.now())
    assert throttle.purge_stale() == 2


def lead_name(world) -> str:
    return world.a.people[Role.LEAD].full_name


@pytest.mark.django_db(transaction=True)
def test_simultaneous_wrong_guesses_are_counted_before_any_is_checked(lead):
    """Thirty guesses at once: each is counted under a row lock before its password is checked, so once
    the free ones are used up the rest wait (before: all thirty were checked, each counted afterwards)."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections
    from django.test import Client

    def guess(n: int) -> int:
        try:
            return attempt(Client(), lead.email, f"wrong password {n}!").status_code
        finally:
            connections.close_all()

    with time_machine.travel(timezone.now(), tick=False), ThreadPoolExecutor(30) as pool:  # no wait runs out
        statuses = list(pool.map(guess, range(30)))
    checked = SecurityEvent.objects.filter(kind=Kind.SIGN_IN_FAILED).count()
    assert checked == statuses.count(400) == throttle.FREE_FAILURES + 1, statuses
    assert statuses.count(429) == 30 - checked


def sign_in_on_this_device(client, user) -> None:
    assert attempt(client, user.email, PASSWORD, ip="192.0.2.50").status_code == 302
    assert client.cookies.get(throttle.device_cookie_name())
    client.post("/accounts/logout/")


def test_a_burst_from_the_address_does_not_hold_back_a_person_on_a_device_they_used(client, lead, world):
    """A school has one public address: 30 wrong passwords from it made the operator wait 10 minutes."""
    sign_in_on_this_device(client, lead)
    others = [m.user.email for sw in (world.a, world.a2, world.b) for m in sw.people.values() if m.user != lead] * 3
    from django.test import Client

    attacker = Client()
    with time_machine.travel(timezone.now(), tick=False):  # no wait runs out meanwhile, however slow the machine
        for email in others[:30]:
            attempt(attacker, email, "wrong password!", ip="192.0.2.50")
        assert attempt(attacker, lead.email, PASSWORD, ip="192.0.2.50").status_code == 429  # no cookie: waits
        assert attempt(client, lead.email, PASSWORD, ip="192.0.2.50").status_code == 302  # the known device


def test_on_a_known_device_the_longest_wait_is_a_minute(client, lead):
    sign_in_on_this_device(client, lead)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        waits = []
        for _ in range(15):
            response = attempt(client, lead.email, "wrong password!", ip="192.0.2.50")
            waits.append(response.context["wait"])
            clock.shift(timedelta(seconds=response.context["wait"] + 1))
        assert max(waits) == throttle.DEVICE_MAX_WAIT.total_seconds() == 60
        assert attempt(client, lead.email, PASSWORD, ip="192.0.2.50").status_code == 302


def test_a_device_cookie_helps_only_the_person_it_was_issued_to(client, lead, world):
    sign_in_on_this_device(client, lead)
    other = world.a.people[Role.MEMBER].user
    for _ in range(4):
        attempt(client, other.email, "wrong password!", ip="192.0.2.60")
    assert attempt(client, other.email, "wrong password!", ip="192.0.2.60").status_code == 429  # counted as usual
    client.cookies[throttle.device_cookie_name()] = "forged:value"
    for _ in range(4):
        attempt(client, lead.email, "wrong password!", ip="192.0.2.61")
    assert attempt(client, lead.email, PASSWORD, ip="192.0.2.61").status_code == 429


def test_failures_fade_so_one_wrong_try_long_after_a_burst_earns_a_short_wait(client, world):
    emails = [m.user.email for sw in (world.a, world.b) for m in sw.people.values()] * 3
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for email in emails[:30]:  # thirty failures, each wait waited out
            response = attempt(client, email, "wrong password!")
            clock.shift(timedelta(seconds=response.context["wait"] + 1))
        clock.shift(timedelta(minutes=22))
        response = attempt(client, emails[0], "wrong password!")
        assert response.status_code == 400 and response.context["wait"] <= 60  # 600 s before
