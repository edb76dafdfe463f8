"""Sessions (seed: token-based, closed after inactivity): list, end, idle timeout, absolute lifetime."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from django.test import Client
from django.utils import timezone

from rallypoint.accounts.models import UserSession
from rallypoint.audit.models import SecurityEvent
from rallypoint.tenants.roles import Role
from tests.conftest import PASSWORD
from tests.pow import pow_field

UA_PHONE = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36"
UA_DESK = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


def sign_in(user, ua=UA_DESK) -> Client:
    client = Client(HTTP_USER_AGENT=ua)
    data = {"username": user.email, "password": PASSWORD, **pow_field(client, "/accounts/login/")}
    assert client.post("/accounts/login/", data).status_code == 302
    return client


def member(world):
    user = world.a.people[Role.MEMBER].user
    user.set_password(PASSWORD)
    user.save()
    return user


def test_the_session_cookie_is_host_only_secure_and_http_only(world):
    client = sign_in(member(world))
    cookie = client.cookies["__Host-rp_session"]
    assert cookie["secure"] and cookie["httponly"] and cookie["path"] == "/" and not cookie["domain"]
    assert cookie["samesite"] == "Lax"


def test_signing_in_gives_a_new_session_key(world):
    client = Client()
    client.get("/accounts/login/")
    client.session.save()
    before = client.session.session_key
    user = member(world)
    client.post("/accounts/login/", {"username": user.email, "password": PASSWORD,
                                     **pow_field(client, "/accounts/login/")})
    assert client.session.session_key != before


def test_i_see_my_sessions_and_end_one(world):
    user = member(world)
    phone, desk = sign_in(user, UA_PHONE), sign_in(user, UA_DESK)
    page = desk.get("/accounts/sessions/").content.decode()
    assert "Chrome · Android" in page and "Chrome · Windows" in page and "this device" in page
    phone_row = UserSession.objects.get(user=user, device="Chrome · Android")
    assert desk.post(f"/accounts/sessions/{phone_row.handle}/end/").status_code == 302
    assert phone.get("/").status_code == 302
    assert desk.get("/").status_code == 200
    assert SecurityEvent.objects.filter(user=user, kind="session.revoked").exists()


def test_nobody_ends_someone_elses_session_by_its_handle(world):
    user = member(world)
    other = world.a.people[Role.LEAD].user
    other.set_password(PASSWORD)
    other.save()
    other_client = sign_in(other)
    handle = UserSession.objects.get(user=other).handle
    attacker = sign_in(user)
    assert attacker.post(f"/accounts/sessions/{handle}/end/").status_code == 404
    assert other_client.get("/").status_code == 200


def test_sign_out_everywhere(world):
    user = member(world)
    clients = [sign_in(user, UA_PHONE), sign_in(user, UA_DESK)]
    assert clients[1].post("/accounts/sessions/end-all/").status_code == 302
    assert [c.get("/").status_code for c in clients] == [302, 302]
    assert not UserSession.objects.filter(user=user).exists()


def test_an_administrator_ends_all_sessions_of_a_person(world, signed_in):
    user = member(world)
    phone = sign_in(user, UA_PHONE)
    membership = world.a.people[Role.MEMBER]
    assert signed_in(Role.ADMIN).post(f"/people/{membership.pk}/sessions/end/").status_code == 302
    assert phone.get("/").status_code == 302
    assert signed_in(Role.LEAD).post(f"/people/{membership.pk}/sessions/end/").status_code == 403


def test_deactivating_the_last_membership_ends_every_session_at_once(world, signed_in):
    user = member(world)
    phone = sign_in(user, UA_PHONE)
    signed_in(Role.ADMIN).post(f"/people/{world.a.people[Role.MEMBER].pk}/activation/")
    assert not UserSession.objects.filter(user=user).exists()
    assert phone.get("/").status_code == 302


def test_an_idle_session_ends_after_30_minutes(world):
    user = member(world)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client = sign_in(user)
        clock.shift(timedelta(minutes=29))
        assert client.get("/").status_code == 200  # activity keeps it alive
        clock.shift(timedelta(minutes=29))
        assert client.get("/").status_code == 200
        clock.shift(timedelta(minutes=31))
        assert client.get("/").status_code == 302


def test_an_active_session_ends_after_12_hours_anyway(world):
    user = member(world)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client = sign_in(user)
        for _ in range(24):
            clock.shift(timedelta(minutes=29))
            assert client.get("/").status_code == 200
        clock.shift(timedelta(minutes=25))  # 12 h 01 min after signing in
        response = client.get("/")
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_new_role_gives_the_session_a_new_key(world, signed_in):
    user = member(world)
    client = sign_in(user)
    client.get("/")
    before = client.session.session_key
    membership = world.a.people[Role.MEMBER]
    signed_in(Role.ADMIN).post(f"/people/{membership.pk}/", {"full_name": membership.full_name,
                                                              "email": user.email, "role": "lead"})
    assert client.get("/").status_code == 200
    assert client.session.session_key != before
