"""An alarm's place: picked from the site's structure (building → floor → zone) with free text as an extra, on
the trigger pages and through the API (a fire panel names its detector group by the zone's code)."""

from __future__ import annotations

from django.test import Client

from rallypoint.alarms.models import Alarm, Scenario
from rallypoint.evacuation import rollcall
from rallypoint.evacuation.models import Building, Floor, Zone
from rallypoint.integrations import actions as key_actions
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario
from tests.test_api_alarms import trigger


def _structure(site, tag=""):
    main = Building.objects.create(site=site, name=f"Main building{tag}")
    hall = Building.objects.create(site=site, name=f"Sports hall{tag}", position=2)
    first = Floor.objects.create(site=site, building=main, name="1st floor", level=1)
    west = Zone.objects.create(site=site, floor=first, name="West wing", code=f"M-1-W{tag}")
    east = Zone.objects.create(site=site, floor=first, name="East wing", code=f"M-1-E{tag}")
    court = Zone.objects.create(site=site, floor=Floor.objects.create(site=site, building=hall, name="Court"),
                                name="Court")
    return main, first, west, east, court


def _raise(client, scenario, **fields):
    data = {"level": scenario.levels.first().pk, "request_id": "web-place-test-0001", "step": "raise", **fields}
    return client.post(f"/alarms/new/{scenario.pk}/", data)


def test_the_trigger_form_offers_the_structure_and_the_alarm_keeps_the_pick(world):
    main, first, west, _east, _court = _structure(world.a.site)
    scenario = fire_scenario(world.a.site, evacuates=Scenario.Evacuates.BUILDING)
    client = Client()
    client.force_login(world.a.people[Role.EMPLOYEE].user)
    page = client.get(f"/alarms/new/{scenario.pk}/").content.decode()
    assert f'value="z:{west.pk}"' in page and "Main building · 1st floor · West wing" in page
    assert '<optgroup label="Sports hall">' in page
    response = _raise(client, scenario, place=f"z:{west.pk}", location_text="by the stairs")
    assert response.status_code == 302, response.content.decode()[-2000:]
    alarm = Alarm.objects.get()
    assert (alarm.building, alarm.floor, alarm.zone) == (main, first, west)
    assert alarm.location_text == "Main building · 1st floor · West wing — by the stairs"
    # The building's zones evacuate, the sports hall does not.
    assert rollcall.affected_zone_ids(alarm) == set(Zone.objects.filter(floor__building=main).values_list("pk",
                                                                                                          flat=True))


def test_a_zone_evacuates_with_its_named_neighbours_only(world):
    _main, _first, west, east, court = _structure(world.a.site)
    west.neighbours.add(east)
    scenario = fire_scenario(world.a.site, evacuates=Scenario.Evacuates.ZONE)
    client = Client()
    client.force_login(world.a.people[Role.EMPLOYEE].user)
    _raise(client, scenario, place=f"z:{east.pk}")
    assert rollcall.affected_zone_ids(Alarm.objects.get()) == {west.pk, east.pk}


def test_another_sites_zone_cannot_be_picked(world):
    _structure(world.a.site)
    *_rest, foreign, _e, _c = _structure(world.b.site, tag="B")
    scenario = fire_scenario(world.a.site)
    client = Client()
    client.force_login(world.a.people[Role.EMPLOYEE].user)
    response = _raise(client, scenario, place=f"z:{foreign.pk}")
    assert response.status_code == 400 and not Alarm.objects.exists()


def test_without_a_structure_the_place_is_free_text(world):
    scenario = fire_scenario(world.a.site)
    client = Client()
    client.force_login(world.a.people[Role.EMPLOYEE].user)
    assert 'name="place"' not in client.get(f"/alarms/new/{scenario.pk}/").content.decode()
    _raise(client, scenario, location_text="Kitchen")
    alarm = Alarm.objects.get()
    assert (alarm.location_text, alarm.zone_id) == ("Kitchen", None)


def test_a_fire_panel_names_the_zone_by_its_code(world, client):
    _main, first, west, _east, _court = _structure(world.a.site)
    scenario = fire_scenario(world.a.site, evacuates=Scenario.Evacuates.ZONE)
    _key, raw = key_actions.create_api_key(actor=None, site=world.a.site, name="Panel", scenarios=[scenario])
    response = trigger(client, scenario, key=raw, zone_code="M-1-W", location="detector 4")
    assert response.status_code == 201, response.content
    alarm = Alarm.objects.get()
    assert (alarm.zone, alarm.floor) == (west, first)
    assert response.json()["location"] == "Main building · 1st floor · West wing — detector 4"


def test_an_unknown_or_foreign_zone_code_is_refused_and_no_alarm_is_raised(world, client):
    _structure(world.a.site)
    _structure(world.b.site, tag="B")
    scenario = fire_scenario(world.a.site)
    _key, raw = key_actions.create_api_key(actor=None, site=world.a.site, name="Panel", scenarios=[scenario])
    for body in ({"zone_code": "NOPE"}, {"zone_code": "M-1-WB"}, {"zone_id": 10**9}, {"building_id": 10**9}):
        response = trigger(client, scenario, key=raw, **body)
        assert response.status_code == 400, (body, response.content)
    assert not Alarm.objects.exists()
