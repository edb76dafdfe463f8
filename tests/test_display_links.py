"""Wall-screen links: the site's active alarms as numbers and zone states, without names and without sign-in."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from rallypoint.alarms import displays
from rallypoint.alarms.actions import end_alarm, trigger_alarm
from rallypoint.alarms.models import DisplayLink, Scenario
from rallypoint.audit.models import AuditEntry
from rallypoint.evacuation import status
from rallypoint.evacuation.models import Building, Floor, Presence, Zone
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario


def make_link(signed_in, name="Crisis room") -> str:
    response = signed_in(Role.LEAD).post("/cockpit/displays/", {"name": name})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    return re.search(r'value="http://[^/]+(/display/[^"]+/)"', response.content.decode()).group(1)


@pytest.fixture
def evacuation(world):
    site = world.a.site
    floor = Floor.objects.create(site=site, building=Building.objects.create(site=site, name="Main building"),
                                 name="Ground floor")
    zone = Zone.objects.create(site=site, floor=floor, name="West wing", code="MG-01")
    employee = world.a.people[Role.EMPLOYEE]
    Presence.objects.create(site=site, membership=employee, zone=zone, source="app",
                            expires_at=timezone.now() + timedelta(hours=4))
    scenario = fire_scenario(site, evacuates=Scenario.Evacuates.ALL)
    alarm, _ = trigger_alarm(site=site, scenario=scenario, level=scenario.levels.last(),
                             location_text="Kitchen, Ms NameInNotezq fainted", zone=zone)
    status.report_status(alarm=alarm, person=employee, status="safe", reporter=status.Reporter(employee))
    return alarm


def test_the_screen_shows_the_sites_numbers_without_names_and_without_signing_in(world, signed_in, evacuation):
    path = make_link(signed_in)
    screen = Client().get(path)  # no session at all
    assert screen.status_code == 200
    body = screen.content.decode()
    assert 'http-equiv="refresh"' in body and world.a.site.name in body
    assert "Fire" in body and "Main building · Ground floor · West wing" in body
    assert "Accounted for" in body and "Cleared" not in body
    for marker in world.a.markers[1:]:  # all but the site's name: the people's names, e-mail addresses, groups
        assert marker not in body
    assert "+49 170" not in body
    assert "NameInNotezq" not in body and "Kitchen" not in body  # the free text may name people
    assert "/structure/" not in body  # no floor plans: they are for signed-in people
    assert screen["Referrer-Policy"] == "no-referrer" and screen["Cache-Control"] == "no-store"
    link = DisplayLink.objects.get()
    assert link.last_used_at is not None and link.site == world.a.site
    assert AuditEntry.objects.filter(action="display_link.created", object_id=str(link.pk)).exists()


def test_a_revoked_or_made_up_link_shows_nothing(world, signed_in, evacuation):
    path = make_link(signed_in)
    link = DisplayLink.objects.get()
    lead = signed_in(Role.LEAD)
    assert lead.post(f"/cockpit/displays/{link.pk}/revoke/").status_code == 302
    gone = Client().get(path)
    assert gone.status_code == 404 and "Fire" not in gone.content.decode()
    assert "refresh" not in gone.content.decode()
    assert Client().get("/display/" + "A" * 43 + "/").status_code == 404
    assert Client().get("/display/" + "A" * 500 + "/").status_code == 404
    assert AuditEntry.objects.filter(action="display_link.revoked", object_id=str(link.pk)).exists()


def test_a_screen_shows_its_own_site_only(world, signed_in, evacuation):
    other = fire_scenario(world.b.site, name="Bomb threat")
    trigger_alarm(site=world.b.site, scenario=other)
    body = Client().get(make_link(signed_in)).content.decode()
    assert "Bomb threat" not in body and world.b.site.name not in body
    end_alarm(user=world.a.people[Role.LEAD].user, alarm=evacuation, reason="All clear")
    calm = Client().get(make_link(signed_in, "Gate")).content.decode()
    assert "No active alarm at this site." in calm and "Fire" not in calm


def test_only_the_crisis_teams_leads_make_and_revoke_links(world, signed_in):
    assert signed_in(Role.MEMBER).get("/cockpit/displays/").status_code == 403
    assert signed_in(Role.EMPLOYEE).post("/cockpit/displays/", {"name": "Mine"}).status_code == 403
    assert not DisplayLink.objects.exists()
    link, _token = displays.create_link(actor=world.a.people[Role.LEAD].user, site=world.a.site, name="Gate")
    assert signed_in(Role.MEMBER).post(f"/cockpit/displays/{link.pk}/revoke/").status_code == 403
    assert DisplayLink.objects.get().is_active


def test_a_link_needs_a_name(world, signed_in):
    for name in ("", "   ", "x" * 81):
        response = signed_in(Role.LEAD).post("/cockpit/displays/", {"name": name}, follow=True)
        assert response.status_code == 200 and 'class="notice error' in response.content.decode(), name
    assert not DisplayLink.objects.exists()
