"""Tenant isolation over every route: no role of one site reaches another site's objects.

The test enumerates every URL pattern of the project (web pages and API). Each
must be classified in ROUTES; a new route that is not fails the test, so it
cannot slip past. For every route, every persona of site ``a`` asks for the
objects of a foreign site with GET and POST, and must get 4xx, no foreign data
in the body, and no change to the foreign site.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from rallypoint.accounts.mfa_models import OrganizationSecurity, Passkey, TotpDevice
from rallypoint.accounts.models import AppToken, User, UserSession
from rallypoint.accounts.sessions import SessionStore
from rallypoint.alarms.actions import trigger_alarm
from rallypoint.alarms.models import (
    Alarm,
    AlarmEvent,
    AlarmRecipient,
    DisplayLink,
    Level,
    Question,
    Scenario,
    ScenarioDocument,
)
from rallypoint.audit.actions import home_organization
from rallypoint.audit.models import Approval, AuditEntry, SecurityEvent
from rallypoint.evacuation.models import (
    AssemblyPoint,
    Building,
    Floor,
    Marker,
    PersonState,
    Presence,
    Room,
    StatusReport,
    Zone,
    ZoneDuty,
    ZoneReport,
)
from rallypoint.integrations.models import ApiKey
from rallypoint.notify.models import MessengerAddress, PushSubscription
from rallypoint.people.models import Group, Membership
from rallypoint.people.reviews import open_review
from rallypoint.tenants.models import Site, SuperAdmin
from rallypoint.tenants.roles import SUPER_ADMIN, Role
from tests.alarm_fixtures import fire_scenario

# Every route of the project. "public": reachable without a site (health, sign-in);
# "site": tenant data, checked below.
ROUTES = {
    "healthz": "public",
    "readyz": "public",
    "accounts/login/": "public",
    "accounts/logout/": "public",
    "accounts/set-password/<uidb64>/<token>/": "public",
    "accounts/profile/": "site",
    "accounts/profile/password/": "site",
    "accounts/profile/delete/": "site",
    "accounts/profile/my-data/": "site",
    "accounts/profile/my-data.json": "site",
    "people/<int:membership_id>/data/": "site",
    "people/<int:membership_id>/second-factor/reset/": "site",
    "people/data/<int:approval_id>.json": "site",
    "audit/approvals/": "site",
    "audit/approvals/processes/": "site",
    "retention/": "site",
    "report/": "site",
    "report/report.pdf": "site",
    "report/declarations/": "site",
    "audit/approvals/<int:approval_id>/decide/": "site",
    "audit/approvals/<int:approval_id>/cancel/": "site",
    "audit/approvals/<int:approval_id>/alone/": "site",
    "people/export/<int:approval_id>.csv": "site",
    "accounts/profile/messenger/": "site",
    "accounts/profile/notifications/": "site",
    "accounts/profile/messenger/<int:address_id>/remove/": "site",
    "accounts/password-reset/": "public",
    "accounts/second-factor/verify/": "public",
    "accounts/second-factor/verify/passkey-options/": "public",
    "accounts/second-factor/setup/": "site",
    "accounts/second-factor/setup/confirm/": "site",
    "accounts/second-factor/setup/totp/": "site",
    "accounts/second-factor/setup/totp/<int:device_id>/remove/": "site",
    "accounts/second-factor/setup/passkey-options/": "site",
    "accounts/second-factor/setup/passkeys/": "site",
    "accounts/second-factor/setup/passkeys/<int:passkey_id>/remove/": "site",
    "accounts/second-factor/setup/recovery-codes/": "site",
    "accounts/second-factor/policy/": "site",
    "accounts/sessions/": "site",
    "accounts/sessions/end-all/": "site",
    "accounts/sessions/<str:handle>/end/": "site",
    "audit/security/": "site",
    "accounts/app-tokens/": "site",
    "accounts/app-tokens/<int:token_id>/revoke/": "site",
    "api/v1/app-tokens": "site",
    "people/<int:membership_id>/sessions/end/": "site",
    "audit/": "site",
    "audit/verify/": "site",
    "api/": "public",
    "api/openapi.json": "public",
    "api/docs": "site",  # the page shows no data of a site, but only to signed-in people
    "api/v1/site": "site",
    "api/v1/people": "site",
    "api/v1/people/<membership_id>": "site",
    "api/v1/groups": "site",
    "api/v1/groups/<group_id>": "site",
    "people/": "site",
    "people/new/": "site",
    "people/import/": "site",
    "people/export.csv": "site",
    "people/<int:membership_id>/": "site",
    "people/<int:membership_id>/activation/": "site",
    "people/<int:membership_id>/invite/": "site",
    "people/<int:membership_id>/delete/": "site",
    "people/review/": "site",
    "people/review/<int:review_id>/confirm-rest/": "site",
    "people/review/<int:review_id>/<int:entry_id>/": "site",
    "groups/": "site",
    "groups/new/": "site",
    "groups/<int:group_id>/": "site",
    "groups/<int:group_id>/delete/": "site",
    "sites/": "site",
    "sites/new/": "site",
    "sites/<int:site_id>/": "site",
    "sites/<int:site_id>/delete/": "site",
    "super-admins/": "site",
    "super-admins/<int:user_id>/revoke/": "site",
    "": "site",
    "site/switch/": "site",
    "language/": "site",
    "scenarios/": "site",
    "scenarios/new/": "site",
    "scenarios/<int:scenario_id>/": "site",
    "scenarios/<int:scenario_id>/delete/": "site",
    "scenarios/<int:scenario_id>/levels/new/": "site",
    "scenarios/<int:scenario_id>/levels/<int:level_id>/": "site",
    "scenarios/<int:scenario_id>/levels/<int:level_id>/delete/": "site",
    "scenarios/<int:scenario_id>/questions/new/": "site",
    "scenarios/<int:scenario_id>/questions/<int:question_id>/": "site",
    "scenarios/<int:scenario_id>/questions/<int:question_id>/delete/": "site",
    "scenarios/<int:scenario_id>/documents/": "site",
    "scenarios/<int:scenario_id>/documents/<int:document_id>/": "site",
    "scenarios/<int:scenario_id>/documents/<int:document_id>/delete/": "site",
    "alarms/new/": "site",
    "alarms/new/<int:scenario_id>/": "site",
    "alarms/new/<int:scenario_id>/quick/": "site",
    "alarms/<int:alarm_id>/": "site",
    "alarms/<int:alarm_id>/answer/": "site",
    "alarms/<int:alarm_id>/documents/<int:document_id>/": "site",
    # Whoever holds a valid one-time link may answer for its recipient; a guessed token is a 404/410.
    "answer/<str:token>": "public",
    "cockpit/": "site",
    "cockpit/history/": "site",
    "instructions/": "site",
    "instructions/documents/<int:document_id>/": "site",
    "cockpit/displays/": "site",
    "cockpit/displays/<int:link_id>/revoke/": "site",
    "display/<str:token>/": "public",
    "cockpit/<int:alarm_id>/": "site",
    "cockpit/<int:alarm_id>/panel": "site",
    "cockpit/<int:alarm_id>/update/": "site",
    "cockpit/<int:alarm_id>/raise/": "site",
    "cockpit/<int:alarm_id>/end/": "site",
    "settings/api-keys/": "site",
    "settings/api-keys/new/": "site",
    "settings/api-keys/<int:key_id>/": "site",
    "settings/api-keys/<int:key_id>/rotate/": "site",
    "settings/api-keys/<int:key_id>/revoke/": "site",
    "api/v1/scenarios": "site",
    "api/v1/alarms": "site",
    "api/v1/alarms/<alarm_id>": "site",
    "api/v1/alarms/<alarm_id>/update": "site",
    "api/v1/alarms/<alarm_id>/level": "site",
    "api/v1/alarms/<alarm_id>/end": "site",
    "api/v1/alarms/<alarm_id>/answer": "site",
    "api/v1/alarms/<alarm_id>/status": "site",
    "api/v1/alarms/<alarm_id>/statuses": "site",
    "api/v1/alarms/<alarm_id>/zones/<zone_id>": "site",
    "api/v1/alarms/<alarm_id>/evacuation": "site",
    "api/v1/alarms/<alarm_id>/missing": "site",
    "alarms/<int:alarm_id>/status/": "site",
    "alarms/<int:alarm_id>/groups/": "site",
    "alarms/<int:alarm_id>/zones/": "site",
    "alarms/<int:alarm_id>/zones/<int:zone_id>/": "site",
    "alarms/<int:alarm_id>/assembly/": "site",
    "alarms/<int:alarm_id>/assembly/<int:point_id>/": "site",
    "alarms/<int:alarm_id>/missing/": "site",
    "alarms/<int:alarm_id>/handover/": "site",
    "alarms/<int:alarm_id>/handover.pdf": "site",
    "presence/": "site",
    "presence/entrance/<str:token>/": "site",
    "presence/posters/<int:building_id>/": "site",
    "visitors/": "site",
    "visitors/poster/": "site",
    # A visitor's own registration: the site comes from the poster's signed token; it shows nobody's data.
    "visit/<str:token>/": "public",
    "api/v1/presence": "site",
    "structure/": "site",
    "structure/export.csv": "site",
    "structure/import/": "site",
    "structure/buildings/new/": "site",
    "structure/buildings/<int:building_id>/": "site",
    "structure/buildings/<int:building_id>/delete/": "site",
    "structure/buildings/<int:building_id>/floors/new/": "site",
    "structure/floors/<int:floor_id>/": "site",
    "structure/floors/<int:floor_id>/edit/": "site",
    "structure/floors/<int:floor_id>/delete/": "site",
    "structure/floors/<int:floor_id>/plan": "site",
    "structure/floors/<int:floor_id>/plan/upload/": "site",
    "structure/floors/<int:floor_id>/plan/remove/": "site",
    "structure/floors/<int:floor_id>/markers/new/": "site",
    "structure/floors/<int:floor_id>/zones/new/": "site",
    "structure/markers/<int:marker_id>/": "site",
    "structure/markers/<int:marker_id>/delete/": "site",
    "structure/zones/<int:zone_id>/": "site",
    "structure/zones/<int:zone_id>/delete/": "site",
    "structure/zones/<int:zone_id>/rooms/new/": "site",
    "structure/rooms/<int:room_id>/": "site",
    "structure/rooms/<int:room_id>/delete/": "site",
    "structure/assembly-points/new/": "site",
    "structure/assembly-points/<int:point_id>/": "site",
    "structure/assembly-points/<int:point_id>/delete/": "site",
    "push/subscriptions/": "site",
    "push/subscriptions/remove/": "site",
    "push/key": "public",
    "sw.js": "public",
}

PERSONAS = [SUPER_ADMIN, *Role.values]


def _walk(patterns, prefix=""):
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, route)
        elif isinstance(p, URLPattern):
            yield route.lstrip("^").rstrip("$")


def all_routes() -> list[str]:
    return sorted(set(_walk(get_resolver().url_patterns)))


def test_every_route_is_classified():
    routes = set(all_routes())
    missing = routes - set(ROUTES)
    stale = set(ROUTES) - routes
    assert not missing, f"routes not in the isolation matrix: {sorted(missing)}"
    assert not stale, f"matrix names routes that do not exist: {sorted(stale)}"


def _foreign_review(sw) -> dict:
    review = open_review(sw.site)
    address = MessengerAddress.objects.create(site=sw.site, membership=sw.people[Role.ADMIN],
                                              url="json://localhost/foreign", label=f"Chat{sw.site.pk}zq")
    return {"review_id": review.pk, "entry_id": review.entries.first().pk, "address_id": address.pk}


def foreign_objects(world, persona: str) -> list[dict]:
    """The foreign sites of a persona of site ``a``, each with one object of every kind."""
    foreign = [world.b]
    if persona != SUPER_ADMIN:  # a Super-admin of org A may manage a2; nobody else may
        foreign.append(world.a2)
    result = []
    for sw in foreign:
        # An evacuation, with someone on site: the evacuation pages have names to leak.
        scenario = fire_scenario(sw.site, name=f"Fire{sw.site.pk}zq", evacuates=Scenario.Evacuates.ALL)
        Presence.objects.create(site=sw.site, membership=sw.people[Role.EMPLOYEE], source="app",
                                expires_at=timezone.now() + timedelta(hours=8))
        document = ScenarioDocument.objects.create(site=sw.site, scenario=scenario, title="Plan",
                                                   content=b"%PDF-1.4 foreign", size=16)
        alarm, _ = trigger_alarm(site=sw.site, scenario=scenario, user=None, location_text=f"Room{sw.site.pk}zq")
        sw.markers.extend([scenario.name, alarm.location_text])
        result.append({
            "scenario_id": scenario.pk,
            "level_id": scenario.levels.first().pk,
            "question_id": scenario.questions.first().pk,
            "document_id": document.pk,
            "alarm_id": alarm.pk,
            "key_id": ApiKey.objects.create(site=sw.site, name="x", prefix=f"rpk_f{sw.site.pk:07d}",
                                            secret_hash="0" * 64).pk,
            "world": sw,
            "membership_id": sw.people[Role.EMPLOYEE].pk,
            "group_id": sw.group.pk,
            **_foreign_structure(sw),
            "site_id": sw.site.pk,
            "user_id": (world.super_b if sw is world.b else sw.people[Role.ADMIN].user).pk,
            "uidb64": urlsafe_base64_encode(force_bytes(sw.people[Role.ADMIN].user.pk)),
            "token": "set-password",
            "handle": _foreign_session(sw.people[Role.ADMIN].user).handle,
            "token_id": AppToken.objects.create(user=sw.people[Role.ADMIN].user, site=sw.site, name="x",
                                                token_hash=f"{sw.site.pk:064d}").pk,
            "device_id": TotpDevice.objects.create(user=sw.people[Role.ADMIN].user, secret="JBSWY3DPEHPK3PXP",
                                                   confirmed=True).pk,
            "passkey_id": Passkey.objects.create(user=sw.people[Role.ADMIN].user, name="x", public_key="x",
                                                 credential_id=f"foreign-{sw.site.pk}").pk,
            **_foreign_review(sw),
            "approval_id": _foreign_approval(sw),
            "link_id": _foreign_display_link(sw),
        })
    return result


def _foreign_display_link(sw) -> int:
    """A wall-screen link, with a name to leak."""
    name = f"Screen{sw.site.pk}zq"
    sw.markers.append(name)
    return DisplayLink.objects.create(site=sw.site, name=name, token_hash=f"{sw.site.pk:064x}").pk


def _foreign_approval(sw) -> int:
    """An open four-eyes request to delete one of the site's people, with a reason to leak."""
    reason = f"Reason{sw.site.pk}zq"
    sw.markers.append(reason)
    return Approval.objects.create(organization=sw.site.organization, site=sw.site, process="delete_person",
                                   subject={"membership": sw.people[Role.EMPLOYEE].pk}, reason=reason,
                                   requested_by=sw.people[Role.ADMIN].user,
                                   expires_at=timezone.now() + timedelta(hours=24)).pk


def _foreign_structure(sw) -> dict:
    """A building with a floor (with a plan and a marker), a zone with a room and a helper, an assembly point."""
    site = sw.site
    building = Building.objects.create(site=site, name=f"Building{site.pk}zq")
    floor = Floor.objects.create(site=site, building=building, name=f"Floor{site.pk}zq", plan=b"\x89PNG foreign",
                                 plan_type="image/png", plan_width=10, plan_height=10)
    zone = Zone.objects.create(site=site, floor=floor, name=f"Zone{site.pk}zq", code=f"Code{site.pk}zq")
    room = Room.objects.create(site=site, zone=zone, name=f"Room{site.pk}zq")
    ZoneDuty.objects.create(site=site, zone=zone, membership=sw.people[Role.MEMBER])
    point = AssemblyPoint.objects.create(site=site, name=f"Point{site.pk}zq", capacity=10)
    point.zones.add(zone)
    marker = Marker.objects.create(site=site, floor=floor, kind=Marker.Kind.EXIT, x=.5, y=.5, label=f"Exit{site.pk}zq")
    sw.markers.extend([building.name, floor.name, zone.name, zone.code, room.name, point.name, marker.label])
    return {"building_id": building.pk, "floor_id": floor.pk, "zone_id": zone.pk, "room_id": room.pk,
            "point_id": point.pk, "marker_id": marker.pk}


def _foreign_session(user) -> UserSession:
    store = SessionStore()
    store.update({"_auth_user_id": str(user.pk), "rp_handle": f"h{user.pk}x", "rp_device": "Firefox"})
    store.create()
    return UserSession.objects.get(session_key=store.session_key)


def fill(route: str, objects: dict) -> str:
    def replace(match):
        name = match.group(2)
        if name not in objects:
            pytest.fail(f"route {route!r}: no foreign object known for <{name}>; add it to foreign_objects()")
        return str(objects[name])

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", replace, route)


def snapshot(site: Site) -> tuple:
    """Everything an attack on a foreign site could change."""
    memberships = list(Membership.objects.filter(site=site).order_by("pk").values_list(
        "pk", "role", "is_active", "phone", "department", "full_name", "user__email",
        "user__password"))
    groups = list(Group.objects.filter(site=site).order_by("pk").values_list("pk", "name", "description"))
    members = sorted(Group.members.through.objects.filter(group__site=site).values_list("group_id",
                                                                                        "membership_id"))
    supers = sorted(SuperAdmin.objects.filter(organization=site.organization).values_list("user_id", flat=True))
    audits = AuditEntry.objects.filter(site=site).count()
    sessions = UserSession.objects.filter(user__memberships__site=site).count()
    tokens = list(AppToken.objects.filter(site=site).values_list("pk", "revoked_at"))
    factors = (sorted(TotpDevice.objects.filter(user__memberships__site=site).values_list("pk", flat=True)),
               sorted(Passkey.objects.filter(user__memberships__site=site).values_list("pk", flat=True)),
               OrganizationSecurity.objects.filter(organization=site.organization).values_list(
                   "second_factor", flat=True).first())
    keys = list(ApiKey.objects.filter(site=site).order_by("pk").values_list("pk", "name", "secret_hash",
                                                                             "revoked_at"))
    alarms = list(Alarm.objects.filter(site=site).order_by("pk").values_list(
        "pk", "state", "level_id", "note", "location_text"))
    alarm_events = AlarmEvent.objects.filter(site=site).count()
    answers = list(AlarmRecipient.objects.filter(site=site).order_by("pk").values_list("answer", "link_nonce"))
    scenarios = list(Scenario.objects.filter(site=site).order_by("pk").values_list("pk", "name", "updated_at"))
    structure = (list(Level.objects.filter(site=site).order_by("pk").values_list("pk", "name", "channels")),
                 list(Question.objects.filter(site=site).order_by("pk").values_list("pk", "text")),
                 list(ScenarioDocument.objects.filter(site=site).order_by("pk").values_list("pk", "title")),
                 PushSubscription.objects.filter(site=site).count())
    evacuation = (StatusReport.objects.filter(site=site).count(), ZoneReport.objects.filter(site=site).count(),
                  PersonState.objects.filter(site=site).count(),
                  list(Presence.objects.filter(site=site).order_by("pk").values_list("pk", "left_at")),
                  Membership.objects.filter(site=site, kind="visitor").count(),
                  list(Building.objects.filter(site=site).order_by("pk").values_list("pk", "name", "code", "position")),
                  list(Floor.objects.filter(site=site).order_by("pk").values_list("pk", "name", "level", "plan_type",
                                                                                  "plan_updated_at")),
                  list(Zone.objects.filter(site=site).order_by("pk").values_list("pk", "floor_id", "name", "code")),
                  list(Room.objects.filter(site=site).order_by("pk").values_list("pk", "zone_id", "name")),
                  list(ZoneDuty.objects.filter(site=site).order_by("pk").values_list("pk", "membership_id", "deputy")),
                  list(AssemblyPoint.objects.filter(site=site).order_by("pk").values_list("pk", "name", "capacity")),
                  sorted(AssemblyPoint.zones.through.objects.filter(assemblypoint__site=site).values_list(
                      "assemblypoint_id", "zone_id")),
                  list(Marker.objects.filter(site=site).order_by("pk").values_list("pk", "kind", "x", "y", "label")))
    return (site.name, site.time_zone, memberships, groups, members, supers, audits, sessions, tokens, factors,
            keys, alarms, alarm_events, answers, scenarios, structure, evacuation)


def _body(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode("utf-8", "replace")


POST_BODY_KEYS = ("selected", "site", "members", "user_id", "membership_id", "group_id", "sign_out", "host", "person")


@pytest.mark.parametrize("persona", PERSONAS)
def test_no_route_reaches_another_sites_objects(world, signed_in, persona):
    client = signed_in(persona)
    for foreign in foreign_objects(world, persona):
        sw = foreign["world"]
        before = snapshot(Site.objects.get(pk=sw.site.pk))
        for route, kind in ROUTES.items():
            url = fill(route, foreign)
            with_kwargs = "<" in route
            post_data = {key: str(foreign.get(key, foreign["membership_id"])) for key in POST_BODY_KEYS}
            post_data.update(action="deactivate", email=sw.people[Role.ADMIN].user.email,
                             name="X", confirm_name=sw.site.name, full_name="X", role="admin",
                             time_zone="UTC", language="de", next="/")
            for method in ("get", "post"):
                response = getattr(client, method)(url, post_data if method == "post" else None)
                status = response.status_code
                where = f"{persona} {method.upper()} {url} → {status}"
                assert status < 500, where
                if kind == "site" and with_kwargs:
                    # A form-encoded body to the API is refused (415; django-ninja: 400) before any object is looked up:
                    # the same answer whether or not the object exists, so it reveals nothing.
                    unparsed = route.startswith("api/") and method == "post" and status in (400, 415)
                    assert status in (403, 404, 405) or unparsed, where
                body = _body(response)
                sent = " ".join(post_data.values()) if method == "post" else ""
                for marker in (m for m in sw.markers if m not in sent):  # an echo of our input is no leak
                    assert marker not in body, f"{where}: foreign marker {marker!r} in the body"
            # Signing out is a route too: sign in again for the next one.
            if route in ("accounts/logout/", "accounts/sessions/end-all/"):
                client = signed_in(persona)
        Site.objects.get(pk=sw.site.pk)  # still there
        assert snapshot(Site.objects.get(pk=sw.site.pk)) == before, f"{persona} changed {sw.site}"


def test_the_isolation_test_would_catch_a_leak(world, signed_in, monkeypatch):
    """Break scoping on purpose: the membership helper ignores the site. The check must notice."""
    from rallypoint.tenants import scoping

    def leaky(request, membership_id):
        return Membership.objects.select_related("user").get(pk=membership_id)

    monkeypatch.setattr(scoping, "get_membership_for_request", leaky)
    monkeypatch.setattr("rallypoint.people.views.get_membership_for_request", leaky)
    client = signed_in(Role.ADMIN)
    url = fill("people/<int:membership_id>/", foreign_objects(world, Role.ADMIN)[0])
    body = _body(client.get(url))
    assert any(marker in body for marker in world.b.markers)


def test_a_user_in_two_sites_sees_only_the_current_one(world, client):
    both = world.a.people[Role.ADMIN]
    Membership.objects.create(site=world.b.site, user=both.user, role=Role.EMPLOYEE, full_name="Both")
    client.force_login(both.user)
    assert client.post("/site/switch/", {"site": world.a.site.pk}).status_code == 302
    people_a = client.get("/people/").content.decode()
    assert "NameAaemployee" in people_a and "NameBb" not in people_a
    assert client.post("/site/switch/", {"site": world.b.site.pk}).status_code == 302
    home_b = client.get("/").content.decode()
    assert "SiteBbzq" in home_b and "NameAa" not in home_b
    # In site b this person is an employee: no directory, and site a's objects are gone.
    assert client.get("/people/").status_code == 403
    assert client.get(f"/groups/{world.a.group.pk}/").status_code in (403, 404)
    assert User.objects.filter(pk=both.user.pk).exists()


def test_switching_to_a_site_one_does_not_belong_to_is_refused(world, signed_in):
    client = signed_in(Role.ADMIN)
    response = client.post("/site/switch/", {"site": world.b.site.pk})
    assert response.status_code == 400
    assert client.session["rp_site_id"] == world.a.site.pk


# Models that are not tenant data, each with the reason. Every other model must carry its site.
NOT_TENANT_DATA = {
    "accounts.User": "the sign-in identity (e-mail, password); personal data lives on Membership",
    "tenants.Organization": "the customer above its sites",
    "tenants.Site": "the tenant itself",
    "tenants.SuperAdmin": "an org-level role, checked against the organisation",
    "ops.JobState": "installation-wide scheduler state, no personal data",
    "accounts.SignInThrottle": "keyed hashes of e-mail and address only; no tenant, no personal data",
    "accounts.TotpDevice": "a second factor of the sign-in identity; seen and changed only by its own user",
    "accounts.Passkey": "a second factor of the sign-in identity; seen and changed only by its own user",
    "accounts.RecoveryCode": "keyed hashes of a user's recovery codes; used only by that user to sign in",
    "accounts.OrganizationSecurity": "an organisation-level setting, changed by the organisation's Super-admins",
    "accounts.UsedProofOfWork": "signatures of solved bot checks; no tenant, no personal data",
    "accounts.UserSession": "a user's session; shown only to that user, ended by admins through a membership",
    "people.RetentionPolicy": "an organisation-level setting, changed by its Super-admins under four eyes",
    "ops.MeasureDeclaration": "an organisation's declaration for the Art. 32 report; its Super-admins only",
    "ops.ReportSettings": "who receives an organisation's Art. 32 report; its Super-admins only",
}


def test_every_model_declares_the_site_it_belongs_to():
    from django.apps import apps

    for config in apps.get_app_configs():
        if not config.name.startswith("rallypoint."):
            continue
        for model in config.get_models():
            label = model._meta.label
            if label in NOT_TENANT_DATA:
                continue
            site_field = next((f for f in model._meta.fields if f.name == "site"), None)
            assert site_field is not None and site_field.related_model is Site, (
                f"{label} has no site: add one, or say in NOT_TENANT_DATA why it is not tenant data")


def test_adding_someone_elses_address_gives_no_hold_over_that_person(world, client, send_outbox):
    """Org B's admin adds org A's Super-admin by e-mail: B must not watch, sign out or re-invite them, nor
    learn from the invitation that the address has an account elsewhere."""
    target = world.super_a
    target.set_password("lantern orbit pickle meadow")
    target.save()
    admin_b = world.b.people[Role.ADMIN].user
    client.force_login(admin_b)
    response = client.post("/people/new/", {"full_name": "Added", "email": target.email, "role": "guest"})
    added = Membership.objects.get(site=world.b.site, user=target)
    assert response.status_code == 302
    victim = Client()
    victim.force_login(target)  # a sign-in after the addition
    SecurityEvent.objects.create(kind="sign_in.succeeded", user=target, client_ip="192.0.2.55",
                                 organization=home_organization(target))
    page = client.get("/audit/security/").content.decode()
    assert "192.0.2.55" not in page
    client.post(f"/people/{added.pk}/sessions/end/")
    assert victim.get("/").status_code == 200  # still signed in
    invite = client.post(f"/people/{added.pk}/invite/", follow=True).content.decode()
    assert "The invitation e-mail is on its way" in invite  # the same answer as for anyone
    mail.outbox.clear()
    send_outbox()
    [note] = mail.outbox
    assert note.to == [target.email] and "/accounts/login/" in note.body and "set-password" not in note.body
    target.refresh_from_db()
    assert target.check_password("lantern orbit pickle meadow") and not target.link_nonce
