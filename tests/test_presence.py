"""Who is on site: arrivals, departures, visitors, the end of the day and the history kept."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from rallypoint.alarms.actions import trigger_alarm
from rallypoint.audit.models import AuditEntry
from rallypoint.evacuation import presence, status
from rallypoint.evacuation.models import Building, Floor, Presence, Source, Zone
from rallypoint.evacuation.presence_views import entrance_token, visit_token
from rallypoint.integrations import actions as key_actions
from rallypoint.people.models import Membership
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario
from tests.pow import pow_field


def test_a_presence_ends_at_midnight_in_the_sites_time_zone(world):
    site = world.a.site
    site.time_zone = "Europe/Berlin"
    evening = datetime(2026, 12, 3, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    assert presence.end_of_day(site, evening) == datetime(2026, 12, 3, 23, 0, tzinfo=UTC)
    site.time_zone = "America/New_York"
    assert presence.end_of_day(site, evening) == datetime(2026, 12, 4, 5, 0, tzinfo=UTC)


def test_arriving_and_leaving(world):
    person = world.a.people[Role.EMPLOYEE]
    assert not presence.is_present(person)
    presence.arrive(membership=person, source=Source.APP)
    assert presence.is_present(person)
    assert presence.leave(membership=person) == 1
    assert not presence.is_present(person)
    assert Presence.objects.filter(membership=person, left_at__isnull=False).count() == 1  # the history stays


def test_a_visitor_is_listed_without_an_account_and_present_until_the_end_of_the_day(world):
    host = world.a.people[Role.EMPLOYEE]
    visitor = presence.register_visitor(site=world.a.site, full_name=" Vera Visitor ", company="Acme", host=host,
                                        actor=None)
    assert (visitor.kind, visitor.user_id, visitor.full_name, visitor.host_id) == ("visitor", None, "Vera Visitor",
                                                                                     host.pk)
    assert presence.is_present(visitor)
    assert not presence.is_present(visitor, now=visitor.expires_at + timedelta(seconds=1))
    assert AuditEntry.objects.filter(action="visitor.registered", object_id=str(visitor.pk)).exists()


def test_a_visitor_needs_a_name_and_a_host_of_the_same_site(world):
    with pytest.raises(ValidationError):
        presence.register_visitor(site=world.a.site, full_name="   ")
    with pytest.raises(ValidationError):
        presence.register_visitor(site=world.a.site, full_name="V", host=world.b.people[Role.EMPLOYEE])
    assert not Membership.objects.filter(kind="visitor").exists()


def test_presence_history_is_kept_the_configured_days(world, settings):
    settings.PRESENCE_HISTORY_DAYS = 1
    person = world.a.people[Role.EMPLOYEE]
    now = timezone.now()
    old = presence.arrive(membership=person, source=Source.QR, now=now - timedelta(days=1, minutes=1))
    recent = presence.arrive(membership=person, source=Source.QR, now=now - timedelta(hours=23))
    assert presence.purge_expired(now) == 1
    assert list(Presence.objects.values_list("pk", flat=True)) == [recent.pk]
    assert old.pk != recent.pk


# Pages and the API ---------------------------------------------------------------------------------------

def _client(world, role: str) -> Client:
    client = Client()
    client.force_login(world.a.people[role].user)
    return client


def test_im_here_and_im_leaving_on_the_home_page(world):
    client = _client(world, Role.EMPLOYEE)
    assert 'id="presence-arrive"' in client.get("/").content.decode()
    client.post("/presence/", {"action": "arrive"})
    assert presence.is_present(world.a.people[Role.EMPLOYEE])
    assert 'id="presence-leave"' in client.get("/").content.decode()
    client.post("/presence/", {"action": "leave"})
    assert not presence.is_present(world.a.people[Role.EMPLOYEE])


def test_outside_an_alarm_the_crisis_team_sees_how_many_are_on_site_and_not_who(world):
    for role in (Role.EMPLOYEE, Role.GUEST):
        presence.arrive(membership=world.a.people[role], source=Source.APP)
    page = _client(world, Role.LEAD).get("/").content.decode()
    assert re.search(r'id="on-site-count"><span class="card-number">2<', page)
    assert world.a.people[Role.GUEST].full_name not in page
    assert 'id="on-site-count"' not in _client(world, Role.EMPLOYEE).get("/").content.decode()


def test_the_entrance_qr_code_checks_in_at_its_building_only_on_its_site(world):
    building = Building.objects.create(site=world.a.site, name="Building A")
    foreign = Building.objects.create(site=world.b.site, name="Building B")
    admin = _client(world, Role.ADMIN)
    poster = admin.get(f"/presence/posters/{building.pk}/").content.decode()
    url = re.search(r"https?://[^\s<\"]+/presence/entrance/[^\s<\"/]+/", poster).group(0)
    path = url[url.index("/presence/"):]
    assert "<svg" in poster and "Building A" in poster
    client = _client(world, Role.EMPLOYEE)
    assert client.get(path).status_code == 200 and not presence.is_present(world.a.people[Role.EMPLOYEE])
    client.post(path)
    [row] = Presence.objects.filter(membership=world.a.people[Role.EMPLOYEE])
    assert (row.building, row.source) == (building, "qr")
    # Tampered with, or made for another site's building: nothing.
    assert client.post(path.replace("/entrance/", "/entrance/x")).status_code == 404
    assert client.post(f"/presence/entrance/{entrance_token(foreign)}/").status_code == 404
    assert admin.get(f"/presence/posters/{foreign.pk}/").status_code == 404
    assert client.get(f"/presence/posters/{building.pk}/").status_code == 403


def test_reception_registers_and_signs_out_a_visitor(world):
    client = _client(world, Role.ADMIN)
    host = world.a.people[Role.EMPLOYEE]
    client.post("/visitors/", {"full_name": "Vera Visitor", "company": "Acme", "host": host.pk})
    visitor = Membership.objects.get(kind="visitor")
    assert (visitor.host, visitor.company) == (host, "Acme") and presence.is_present(visitor)
    page = client.get("/visitors/").content.decode()
    assert "Vera Visitor" in page and f'value="{visitor.pk}"' in page
    client.post("/visitors/", {"sign_out": visitor.pk})
    assert not presence.is_present(visitor)
    assert client.post("/visitors/", {"full_name": ""}, follow=True).status_code == 200
    assert Membership.objects.filter(kind="visitor").count() == 1
    assert _client(world, Role.EMPLOYEE).get("/visitors/").status_code == 403


def _presence_api(client, raw, entries):
    return client.post("/api/v1/presence", json.dumps({"entries": entries}), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_a_door_system_reports_arrivals_and_departures_in_bulk(world, client):
    building = Building.objects.create(site=world.a.site, name="Building A")
    floor = Floor.objects.create(site=world.a.site, building=building, name="Ground floor")
    zone = Zone.objects.create(site=world.a.site, floor=floor, name="Lobby", code="A-0-L")
    _key, raw = key_actions.create_api_key(actor=None, site=world.a.site, name="Doors", scenarios=[],
                                           reports_presence=True)
    employee, guest = world.a.people[Role.EMPLOYEE], world.a.people[Role.GUEST]
    response = _presence_api(client, raw, [
        {"membership_id": employee.pk, "state": "in", "zone_code": "A-0-L"},
        {"email": guest.user.email.upper(), "state": "in", "building_id": building.pk},
        {"membership_id": world.b.people[Role.EMPLOYEE].pk, "state": "in"},  # another site's person
        {"membership_id": employee.pk, "state": "maybe"},
        {"email": guest.user.email, "state": "in", "zone_code": "NOPE"}])
    assert response.status_code == 200, response.content
    assert [item["ok"] for item in response.json()] == [True, True, False, False, False], response.json()
    assert Presence.objects.get(membership=employee).zone == zone
    assert Presence.objects.get(membership=guest).building == building
    _presence_api(client, raw, [{"membership_id": employee.pk, "state": "out"}])
    assert not presence.is_present(employee) and presence.is_present(guest)
    assert not Presence.objects.filter(site=world.b.site).exists()


def test_only_a_key_that_may_report_presence_may(world, client):
    _key, raw = key_actions.create_api_key(actor=None, site=world.a.site, name="Panel",
                                           scenarios=[fire_scenario(world.a.site)])
    response = _presence_api(client, raw, [{"membership_id": world.a.people[Role.EMPLOYEE].pk, "state": "in"}])
    assert response.status_code == 403 and not Presence.objects.exists()
    signed_in = _client(world, Role.ADMIN)  # a person's session is no door system either
    response = signed_in.post("/api/v1/presence", json.dumps({"entries": []}), content_type="application/json")
    assert response.status_code in (401, 403)


def test_a_visitor_registers_with_the_posters_qr_code_without_an_account(world, client):
    admin = _client(world, Role.ADMIN)
    poster = admin.get("/visitors/poster/").content.decode()
    path = re.search(r"/visit/[^\s<\"/]+/", poster).group(0)
    assert "<svg" in poster
    form = client.get(path)
    assert form.status_code == 200 and world.a.site.name in form.content.decode()
    host = world.a.people[Role.EMPLOYEE]
    response = client.post(path, {"full_name": "Vic Visitor", "company": "Acme", "host": host.full_name.upper(),
                                  **pow_field(client, path)})
    assert response.status_code == 200 and 'id="visit-done"' in response.content.decode()
    visitor = Membership.objects.get(kind="visitor")
    assert (visitor.site, visitor.full_name, visitor.host) == (world.a.site, "Vic Visitor", host)
    assert presence.is_present(visitor)
    assert "Vic Visitor" not in client.get(path).content.decode()  # the page shows nobody else


def test_the_visitor_form_needs_the_bot_check_a_name_and_a_genuine_poster(world, client):
    path = f"/visit/{visit_token(world.a.site)}/"
    assert client.post(path, {"full_name": "Bot"}).status_code == 400
    assert client.post(path, {"full_name": " ", **pow_field(client, path)}).status_code == 400
    assert client.get(path.replace("/visit/", "/visit/x")).status_code == 404
    assert not Membership.objects.filter(kind="visitor").exists()


def test_a_visitor_is_deleted_a_day_after_the_visit_unless_an_alarms_record_names_them(world, settings):
    settings.PRESENCE_HISTORY_DAYS = 1
    plain = presence.register_visitor(site=world.a.site, full_name="Vera Visitor")
    recorded = presence.register_visitor(site=world.a.site, full_name="Rita Recorded")
    evac_scenario = fire_scenario(world.a.site, evacuates="all")
    alarm, _created = trigger_alarm(site=world.a.site, scenario=evac_scenario, level=evac_scenario.levels.last())
    status.report_status(alarm=alarm, person=recorded, status="safe", reporter=status.Reporter(None))
    later = plain.expires_at + timedelta(days=1, minutes=1)
    assert presence.purge_expired(plain.expires_at) == 0  # the day after the visit: still there
    presence.purge_expired(later)
    assert [m.full_name for m in Membership.objects.filter(kind="visitor")] == ["Rita Recorded"]


def test_the_remembered_on_site_list_drops_a_presence_the_moment_it_expires(world, time_machine):
    """The places are kept between counts (they are read again and again during an alarm), but never past the
    first expiry among them, nor past a new arrival or a departure."""
    from rallypoint.evacuation import rollcall

    site = world.a.site
    start = timezone.now()
    time_machine.move_to(start, tick=False)
    early, late = world.a.people[Role.EMPLOYEE], world.a.people[Role.LEAD]
    first = presence.arrive(membership=early, source=Source.APP)
    Presence.objects.filter(pk=first.pk).update(expires_at=start + timedelta(seconds=5))
    presence.arrive(membership=late, source=Source.APP)
    assert set(rollcall._current_places(site.pk)) == {early.pk, late.pk}
    time_machine.move_to(start + timedelta(seconds=4), tick=False)
    assert set(rollcall._current_places(site.pk)) == {early.pk, late.pk}  # from memory, still right
    time_machine.move_to(start + timedelta(seconds=6), tick=False)
    assert set(rollcall._current_places(site.pk)) == {late.pk}
    presence.leave(membership=late)
    assert set(rollcall._current_places(site.pk)) == set()
