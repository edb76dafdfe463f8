"""Password links (seed: "einmaliger Weblink, 24h"): 24 hours, once, only the newest, token out of the URL."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from rallypoint.audit.models import SecurityEvent
from rallypoint.tenants.roles import Role
from tests.conftest import PASSWORD
from tests.pow import pow_field

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def request_link(client, world, send_outbox):
    user = world.a.people[Role.MEMBER].user
    user.set_password(PASSWORD)
    user.save()

    def ask(email=user.email) -> str | None:
        send_outbox()  # what earlier requests queued
        before = len(mail.outbox)
        response = client.post("/accounts/password-reset/", {
            "email": email, **pow_field(client, "/accounts/password-reset/")})
        assert response.status_code == 302
        assert len(mail.outbox) == before  # the worker sends it, not the request
        send_outbox()
        if len(mail.outbox) == before:
            return None
        return "/" + re.search(r"https://\S+", mail.outbox[-1].body).group(0).split("/", 3)[3]

    ask.user = user
    return ask


def use(client, link: str, password: str = NEW_PASSWORD):
    first = client.get(link)
    if first.status_code != 302:
        return first
    return client.post(first["Location"], {"new_password1": password, "new_password2": password,
                                           **pow_field(client, first["Location"])})


def test_the_answer_is_the_same_for_known_and_unknown_addresses(client, request_link):
    url = "/accounts/password-reset/"
    known = client.post(url, {"email": request_link.user.email, **pow_field(client, url)}, follow=True)
    unknown = client.post(url, {"email": "nobody@example.org", **pow_field(client, url)}, follow=True)
    assert known.status_code == unknown.status_code == 200
    message = "If the address belongs to an account, a link is on its way."
    assert message in known.content.decode() and message in unknown.content.decode()
    assert request_link("nobody@example.org") is None


def test_a_link_works_once(client, request_link, world):
    link = request_link()
    assert use(client, link).status_code == 302
    assert client.login(username=request_link.user.email, password=NEW_PASSWORD)
    client.logout()
    second = client.get(link, follow=True)
    assert "This link no longer works" in second.content.decode()
    kinds = set(SecurityEvent.objects.filter(user=request_link.user).values_list("kind", flat=True))
    assert {"password.reset_requested", "password.reset_used", "password.changed"} <= kinds
    # The worker filed the request under the person's organisation, where its administrators see it.
    requested = SecurityEvent.objects.get(user=request_link.user, kind="password.reset_requested")
    assert requested.organization == world.org_a and requested.client_ip


def test_the_token_leaves_the_url_on_first_use(client, request_link):
    link = request_link()
    token = link.rstrip("/").split("/")[-1]
    response = client.get(link)
    assert response.status_code == 302 and token not in response["Location"]


def test_a_link_older_than_24_hours_is_refused(client, request_link):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        link = request_link()
        clock.shift(timedelta(hours=24, minutes=1))
        page = client.get(link, follow=True)
    assert "This link no longer works" in page.content.decode()


def test_a_link_just_under_24_hours_old_still_works(client, request_link):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        link = request_link()
        clock.shift(timedelta(hours=23, minutes=59))
        assert use(client, link).status_code == 302


def test_a_newer_link_voids_the_older_one(client, request_link):
    older = request_link()
    newer = request_link()
    assert "This link no longer works" in client.get(older, follow=True).content.decode()
    assert use(client, newer).status_code == 302


def test_signing_in_voids_an_open_link(client, request_link):
    link = request_link()
    with time_machine.travel(timezone.now() + timedelta(seconds=2)):
        assert client.login(username=request_link.user.email, password=PASSWORD)
    client.logout()
    assert "This link no longer works" in client.get(link, follow=True).content.decode()


def test_setting_a_password_signs_out_every_other_session(client, request_link):
    other = type(client)()
    other.force_login(request_link.user)
    assert other.get("/").status_code == 200
    use(client, request_link())
    assert other.get("/").status_code == 302  # back to the sign-in page


def test_a_weak_password_is_refused_on_the_link_page(client, request_link):
    response = use(client, request_link(), password=request_link.user.email)
    assert response.status_code == 200
    assert request_link.user.__class__.objects.get(pk=request_link.user.pk).check_password(PASSWORD)


def test_a_password_built_from_the_context_is_refused(client, request_link, world):
    for password in (f"my {world.a.site.name} password", "rallypoint rocks forever"):
        response = use(client, request_link(), password=password)
        assert response.status_code == 200
        assert "must not contain your e-mail address" in response.content.decode()
    assert use(client, request_link(), password="correct horse battery staple 2").status_code == 302


def test_long_passphrases_are_welcome(client, request_link):
    long_one = "a very long passphrase that someone typed into a password manager " * 2
    assert len(long_one) > 128
    assert use(client, request_link(), password=long_one).status_code == 302
    assert request_link.user.__class__.objects.get(pk=request_link.user.pk).check_password(long_one)


def test_guessable_passwords_are_refused_but_passphrases_pass(client, request_link):
    for guessable in ("password1234", "iloveyou1234", "qwertyuiop123", "abcdefghijkl"):
        response = use(client, request_link(), password=guessable)
        assert response.status_code == 200, guessable
        assert "too easy to guess" in response.content.decode()
    assert use(client, request_link(), password="lantern orbit pickle meadow").status_code == 302
