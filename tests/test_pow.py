"""Bot protection without a third party: the ALTCHA proof of work on sign-in, link request and invitation."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import time_machine
from django.core import mail
from django.utils import timezone

from rallypoint.accounts import pow
from rallypoint.accounts.models import SignInThrottle
from rallypoint.tenants.roles import Role
from tests.conftest import PASSWORD
from tests.pow import pow_field, solve


def test_a_solved_challenge_is_accepted_once(db):
    payload = solve(pow.new_challenge())
    assert pow.verify(payload) is True
    assert pow.verify(payload) is False  # replay


def test_a_tampered_or_foreign_solution_is_refused(db):
    payload = json.loads(base64.b64decode(solve(pow.new_challenge())))
    payload["solution"]["derivedKey"] = "00" * 32  # a guess instead of the work
    assert pow.verify(base64.b64encode(json.dumps(payload).encode()).decode()) is False
    payload = json.loads(base64.b64decode(solve(pow.new_challenge())))
    payload["challenge"]["parameters"]["cost"] = 1  # cheaper work, same signature
    assert pow.verify(base64.b64encode(json.dumps(payload).encode()).decode()) is False
    assert pow.verify("") is False and pow.verify("not base64 at all") is False and pow.verify("x" * 5000) is False


def test_an_expired_challenge_is_refused(db):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        payload = solve(pow.new_challenge())
        clock.shift(pow.LIFETIME + timedelta(seconds=1))
        assert pow.verify(payload) is False


def test_sign_in_without_the_check_is_refused_before_the_password_is_looked_at(client, world):
    user = world.a.people[Role.LEAD].user
    user.set_password(PASSWORD)
    user.save()
    response = client.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "automatic check against bots did not succeed" in response.content.decode()
    assert not SignInThrottle.objects.exists()  # not counted as a failure
    assert client.get("/").status_code == 302
    ok = client.post("/accounts/login/", {"username": user.email, "password": PASSWORD,
                                          **pow_field(client, "/accounts/login/")})
    assert ok.status_code == 302


def test_a_link_request_without_the_check_sends_nothing(client, world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/password-reset/", {"email": world.a.people[Role.LEAD].user.email})
    assert response.status_code == 400 and mail.outbox == []


def test_the_page_carries_the_challenge_and_the_script_from_this_host(client, db):
    page = client.get("/accounts/login/").content.decode()
    assert 'data-pow-challenge="{' in page.replace("&quot;", '"')
    assert 'src="/static/web/pow.js"' in page
    assert "https://" not in page.split("<body>", 1)[1]  # nothing loaded from another host
