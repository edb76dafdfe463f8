"""API keys: created, rotated, rescoped and revoked by administrators; stored hashed; shown once."""

from __future__ import annotations

import hashlib
import io
import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command

from rallypoint.audit.models import AuditEntry
from rallypoint.integrations import actions
from rallypoint.integrations.models import ApiKey
from rallypoint.tenants.roles import SUPER_ADMIN, Role
from tests.alarm_fixtures import fire_scenario

SECRET = re.compile(r"rpk_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}")


@pytest.fixture
def fire(world):
    return fire_scenario(world.a.site)


@pytest.fixture
def gas(world):
    return fire_scenario(world.a.site, name="Gas")


def _secret_on(response) -> str:
    found = SECRET.findall(response.content.decode())
    assert len(set(found)) == 1, "the page shows exactly one key"
    return found[0]


def _everything_stored() -> str:
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    return out.getvalue()


def test_an_admin_creates_a_key_and_sees_the_secret_once(world, signed_in, fire, gas):
    client = signed_in(Role.ADMIN)
    form = client.get("/settings/api-keys/new/")
    assert form.status_code == 200 and "Fire" in form.content.decode() and "Gas" in form.content.decode()
    response = client.post("/settings/api-keys/new/", {"name": "Panel building A", "scenarios": [fire.pk]})
    assert response.status_code == 200 and "Location" not in response  # shown right here, never in a URL
    secret = _secret_on(response)
    key = ApiKey.objects.get(site=world.a.site)
    assert secret.startswith(key.prefix + "_") and key.name == "Panel building A"
    assert list(key.scenarios.all()) == [fire]
    assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert key.created_by == world.a.people[Role.ADMIN]
    secret_part = secret.split("_", 2)[2]
    assert secret_part not in _everything_stored()  # neither the key nor its secret part is kept anywhere
    listing = client.get("/settings/api-keys/").content.decode()
    assert "Panel building A" in listing and key.prefix in listing and "Fire" in listing
    for page in ("/settings/api-keys/", f"/settings/api-keys/{key.pk}/"):
        assert secret_part not in client.get(page).content.decode()
    entry = AuditEntry.objects.get(site=world.a.site, action="api_key.created")
    assert entry.actor == world.a.people[Role.ADMIN].user and entry.changes["scenarios"] == [None, ["Fire"]]


def test_the_create_form_explains_what_is_missing(world, signed_in, fire):
    client = signed_in(Role.ADMIN)
    response = client.post("/settings/api-keys/new/", {"name": " "})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Choose at least one scenario the key may trigger, or let it report who is on site." in body
    assert not SECRET.search(body)
    assert not ApiKey.objects.exists()


def test_rotating_gives_a_new_secret_and_the_old_one_stops_at_once(world, signed_in, fire):
    key, old = actions.create_api_key(actor=None, site=world.a.site, name="Panel", scenarios=[fire])
    client = signed_in(Role.ADMIN)
    confirm = client.get(f"/settings/api-keys/{key.pk}/rotate/")
    assert confirm.status_code == 200 and "stops working at once" in confirm.content.decode()
    assert actions.authenticate_api_key(old) == key  # a GET changes nothing
    new = _secret_on(client.post(f"/settings/api-keys/{key.pk}/rotate/"))
    assert new != old and new.startswith(key.prefix + "_")
    assert actions.authenticate_api_key(old) is None
    assert actions.authenticate_api_key(new) == key
    assert list(ApiKey.objects.get(pk=key.pk).scenarios.all()) == [fire]
    assert AuditEntry.objects.filter(site=world.a.site, action="api_key.rotated", object_id=str(key.pk)).exists()


def test_revoking_asks_first_and_then_the_key_no_longer_works(world, signed_in, fire):
    key, raw = actions.create_api_key(actor=None, site=world.a.site, name="Panel", scenarios=[fire])
    client = signed_in(Role.ADMIN)
    confirm = client.get(f"/settings/api-keys/{key.pk}/revoke/")
    assert confirm.status_code == 200 and "Revoke now" in confirm.content.decode()
    assert actions.authenticate_api_key(raw) == key
    response = client.post(f"/settings/api-keys/{key.pk}/revoke/")
    assert response.status_code == 302 and response["Location"] == "/settings/api-keys/"
    assert actions.authenticate_api_key(raw) is None
    assert "revoked" in client.get("/settings/api-keys/").content.decode()
    again = client.post(f"/settings/api-keys/{key.pk}/rotate/", follow=True)
    assert "This key has been revoked." in again.content.decode() and actions.authenticate_api_key(raw) is None
    assert AuditEntry.objects.filter(site=world.a.site, action="api_key.revoked").count() == 1


def test_an_admin_changes_what_a_key_may_trigger(world, signed_in, fire, gas):
    key, _raw = actions.create_api_key(actor=None, site=world.a.site, name="Panel", scenarios=[fire])
    client = signed_in(Role.ADMIN)
    response = client.post(f"/settings/api-keys/{key.pk}/", {"name": "Panel A", "scenarios": [fire.pk, gas.pk]})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.name == "Panel A" and set(key.scenarios.all()) == {fire, gas}
    entry = AuditEntry.objects.get(site=world.a.site, action="api_key.updated")
    assert entry.changes["scenarios"] == [["Fire"], ["Fire", "Gas"]]


@pytest.mark.parametrize("role", [Role.LEAD, Role.MEMBER, Role.EMPLOYEE, Role.GUEST])
def test_only_administrators_manage_keys(world, signed_in, fire, role):
    key, raw = actions.create_api_key(actor=None, site=world.a.site, name="Panel", scenarios=[fire])
    client = signed_in(role)
    for url in ("/settings/api-keys/", "/settings/api-keys/new/", f"/settings/api-keys/{key.pk}/"):
        assert client.get(url).status_code == 403
    assert client.post(f"/settings/api-keys/{key.pk}/revoke/").status_code == 403
    assert client.post("/settings/api-keys/new/", {"name": "X", "scenarios": [fire.pk]}).status_code == 403
    assert actions.authenticate_api_key(raw) == key and ApiKey.objects.count() == 1
    with pytest.raises(PermissionDenied):
        actions.rotate_api_key(actor=world.persona(role), key=key)


@pytest.mark.parametrize("role", [SUPER_ADMIN, Role.ADMIN])
def test_another_sites_key_is_not_found(world, signed_in, role):
    foreign, raw = actions.create_api_key(actor=None, site=world.b.site, name="Foreign panel",
                                          scenarios=[fire_scenario(world.b.site)])
    client = signed_in(role)
    for url in ("", "rotate/", "revoke/"):
        assert client.get(f"/settings/api-keys/{foreign.pk}/{url}").status_code == 404
        assert client.post(f"/settings/api-keys/{foreign.pk}/{url}", {"name": "X"}).status_code == 404
    assert "Foreign panel" not in client.get("/settings/api-keys/").content.decode()
    assert actions.authenticate_api_key(raw) == foreign and ApiKey.objects.get(pk=foreign.pk).name == "Foreign panel"


def test_the_actions_refuse_bad_scopes_and_names(world, fire):
    admin = world.persona(Role.ADMIN)
    with pytest.raises(PermissionDenied):  # another site's scenario
        actions.create_api_key(actor=admin, site=world.a.site, name="X", scenarios=[fire_scenario(world.b.site)])
    with pytest.raises(ValidationError, match="at least one scenario"):
        actions.create_api_key(actor=admin, site=world.a.site, name="X", scenarios=[])
    actions.create_api_key(actor=admin, site=world.a.site, name="Panel", scenarios=[fire])
    with pytest.raises(ValidationError, match="already exists"):
        actions.create_api_key(actor=admin, site=world.a.site, name="Panel", scenarios=[fire])
    with pytest.raises(PermissionDenied):
        actions.create_api_key(actor=world.persona(Role.LEAD), site=world.a.site, name="Y", scenarios=[fire])
    assert ApiKey.objects.count() == 1


def test_a_use_is_counted_and_garbage_is_no_key(world, fire):
    key, raw = actions.create_api_key(actor=None, site=world.a.site, name="Panel", scenarios=[fire])
    assert key.last_used_at is None and key.use_count == 0
    for bad in (None, "", "rpk_", key.prefix, key.prefix + "_", raw + "x", raw[:-1], "rp_" + raw[4:],
                raw.replace(key.prefix, "rpk_00000000"), raw + "a" * 300):
        assert actions.authenticate_api_key(bad) is None, bad
    assert actions.authenticate_api_key(raw) == key
    assert actions.authenticate_api_key(raw) == key
    key.refresh_from_db()
    assert key.use_count == 2 and key.last_used_at is not None


def test_keys_have_distinct_prefixes_and_the_audit_trail_never_holds_a_secret(world, fire):
    raws = [actions.create_api_key(actor=None, site=world.a.site, name=f"K{i}", scenarios=[fire])[1]
            for i in range(5)]
    key, rotated = actions.rotate_api_key(actor=None, key=ApiKey.objects.get(name="K0"))
    assert len({r.split("_")[1] for r in raws}) == 5
    trail = str(list(AuditEntry.objects.values_list("changes", flat=True)))
    assert not any(r.split("_", 2)[2] in trail for r in [*raws, rotated])


@pytest.mark.parametrize("role,linked", [(SUPER_ADMIN, True), (Role.ADMIN, True), (Role.LEAD, False),
                                         (Role.EMPLOYEE, False)])
def test_the_navigation_leads_to_the_keys_for_those_who_manage_them(world, signed_in, role, linked):
    home = signed_in(role).get("/").content.decode()
    nav = re.search(r'<nav class="mainnav".*?</nav>', home, re.S).group(0)
    assert ('href="/settings/api-keys/"' in nav) is linked


def test_the_keys_page_and_a_new_key_lead_to_the_api_documentation(world, signed_in, fire):
    client = signed_in(Role.ADMIN)
    assert 'href="/api/docs"' in client.get("/settings/api-keys/").content.decode()
    created = client.post("/settings/api-keys/new/", {"name": "Panel", "scenarios": [fire.pk]})
    assert 'href="/api/docs"' in created.content.decode()
