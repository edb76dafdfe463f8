"""App tokens for the mobile/PWA client: opaque, stored hashed, per device, revocable, idle expiry."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.utils import timezone

from rallypoint.accounts import apptokens
from rallypoint.accounts.mfa_models import OrganizationSecurity
from rallypoint.accounts.models import AppToken
from rallypoint.accounts.tokens import issue_password_link
from rallypoint.audit.models import SecurityEvent
from rallypoint.people.models import Membership
from rallypoint.tenants.models import Site, SuperAdmin
from rallypoint.tenants.roles import Role
from tests.pow import pow_field


def issue(client, name="Caretaker phone") -> str:
    response = client.post("/api/v1/app-tokens", data=json.dumps({"name": name}), content_type="application/json")
    assert response.status_code == 201
    return response.json()["token"]


def api(token: str, path="/api/v1/site"):
    return Client().get(path, headers={"authorization": f"Bearer {token}"})


def test_a_token_works_in_its_site_and_is_stored_only_hashed(world, signed_in):
    token = issue(signed_in(Role.LEAD))
    response = api(token)
    assert response.status_code == 200 and response.json()["name"] == world.a.site.name
    with connection.cursor() as cursor:
        cursor.execute("SELECT token_hash FROM accounts_apptoken")
        stored = [row[0] for row in cursor.fetchall()]
    assert token not in stored and len(stored) == 1
    assert SecurityEvent.objects.filter(kind="token.issued", site=world.a.site).exists()


def test_a_token_sees_only_its_own_site(world, signed_in):
    token = issue(signed_in(Role.ADMIN))
    assert api(token, f"/api/v1/people/{world.b.people[Role.EMPLOYEE].pk}").status_code == 404
    assert "NameBb" not in api(token, "/api/v1/people").content.decode()


def test_a_revoked_token_stops_working(world, signed_in):
    client = signed_in(Role.MEMBER)
    token = issue(client)
    row = AppToken.objects.get()
    assert client.post(f"/accounts/app-tokens/{row.pk}/revoke/").status_code == 302
    assert api(token).status_code == 401


def test_a_token_unused_for_30_days_stops_working(world, signed_in):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        token = issue(signed_in(Role.MEMBER))
        clock.shift(timedelta(days=29))
        assert api(token).status_code == 200  # use keeps it alive
        clock.shift(timedelta(days=29))
        assert api(token).status_code == 200
        clock.shift(timedelta(days=30, minutes=1))
        assert api(token).status_code == 401


def test_deactivation_and_sign_out_everywhere_end_tokens(world, signed_in):
    token = issue(signed_in(Role.MEMBER))
    signed_in(Role.ADMIN).post(f"/people/{world.a.people[Role.MEMBER].pk}/sessions/end/")
    assert api(token).status_code == 401
    own = signed_in(Role.LEAD)
    token = issue(own)
    own.post("/accounts/sessions/end-all/")
    assert api(token).status_code == 401
    token = issue(signed_in(Role.GUEST))
    signed_in(Role.ADMIN).post(f"/people/{world.a.people[Role.GUEST].pk}/activation/")
    assert api(token).status_code == 401


def test_garbage_and_foreign_tokens_are_refused(world, signed_in):
    assert api("rp_not-a-real-token").status_code == 401
    assert api("something else").status_code == 401
    other = issue(signed_in(Role.MEMBER))
    row = AppToken.objects.get()
    assert signed_in(Role.LEAD).post(f"/accounts/app-tokens/{row.pk}/revoke/").status_code == 404
    assert api(other).status_code == 200


def test_the_web_page_shows_a_new_token_once(world, signed_in):
    client = signed_in(Role.EMPLOYEE)
    response = client.post("/accounts/app-tokens/", {"name": "Tablet"})
    assert response.status_code == 200
    token = response.context["token"]
    assert token in response.content.decode()
    assert token not in client.get("/accounts/sessions/").content.decode()
    assert "Tablet" in client.get("/accounts/sessions/").content.decode()


def test_a_password_reset_revokes_app_tokens(world, signed_in):
    user = world.a.people[Role.MEMBER].user
    token = issue(signed_in(Role.MEMBER))
    assert set_a_new_password(user)
    assert api(token).status_code == 401


def set_a_new_password(user) -> bool:
    """Use a real password link, as a person would."""
    client = Client()
    link = issue_password_link(user).split("/", 3)[3]
    form_page = client.get("/" + link)["Location"]
    password = "lantern orbit pickle meadow"
    response = client.post(form_page, {"new_password1": password, "new_password2": password,
                                       **pow_field(client, form_page)})
    return response.status_code == 302


def test_issuing_a_token_long_after_sign_in_needs_a_fresh_confirmation(world, signed_in):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client = signed_in(Role.MEMBER)
        clock.shift(timedelta(minutes=11))
        response = client.post("/api/v1/app-tokens", data=json.dumps({"name": "Phone"}),
                               content_type="application/json")
        assert response.status_code == 403
        web = client.post("/accounts/app-tokens/", {"name": "Phone"})
        assert web.status_code == 302 and web["Location"].startswith("/accounts/second-factor/setup/confirm/")
    assert not AppToken.objects.exists()


def test_a_token_stops_when_a_second_factor_becomes_required_and_is_missing(world, signed_in):
    token = issue(signed_in(Role.ADMIN))
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert api(token).status_code == 200
        OrganizationSecurity.objects.filter(organization=world.org_a).update(second_factor="admins")
        # A token's check is reused for a moment (a phone sends several requests in a row) …
        assert api(token).status_code == 200
        clock.shift(timedelta(seconds=apptokens.CHECK_SECONDS))
        assert api(token).status_code == 401  # … then the new rule holds


def test_a_revoked_token_stops_at_once(world, signed_in):
    client = signed_in(Role.EMPLOYEE)
    token = issue(client)
    assert api(token).status_code == 200
    apptokens.revoke(AppToken.objects.filter(user=world.persona(Role.EMPLOYEE)), actor=None)
    assert api(token).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_tokens_use_is_written_after_the_answer_for_many_at_once(world, signed_in):
    token = issue(signed_in(Role.LEAD))
    long_ago = timezone.now() - timedelta(days=3)
    AppToken.objects.update(last_used_at=long_ago)
    apptokens.forget_checked()
    assert api(token).status_code == 200
    assert AppToken.objects.get().last_used_at == long_ago  # the request did not wait for this write
    assert apptokens.write_touches() == 1
    assert timezone.now() - AppToken.objects.get().last_used_at < timedelta(minutes=1)
    assert apptokens.write_touches() == 0


def test_the_access_query_names_the_tables_of_the_models():
    for model in (Membership, Site, SuperAdmin, OrganizationSecurity):
        assert f" {model._meta.db_table} " in apptokens._ACCESS
