"""The alarm history: every past alarm of a site, with filters (site, scenario, alarms or drills, dates, words)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rallypoint.alarms import views
from rallypoint.alarms.actions import end_alarm, trigger_alarm
from rallypoint.alarms.models import Alarm
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario

URL = "/cockpit/history/"


def _alarm(site, scenario, day: datetime, *, drill=False, place="", ended=True, lead=None) -> Alarm:
    alarm, _ = trigger_alarm(site=site, scenario=scenario, is_drill=drill, location_text=place)
    if ended:
        end_alarm(user=lead.user, alarm=alarm, reason="All clear")
    Alarm.objects.filter(pk=alarm.pk).update(started_at=day, ended_at=day + timedelta(minutes=65) if ended else None)
    return alarm


@pytest.fixture
def past(world):
    site = world.a.site
    site.time_zone = "Europe/Berlin"
    site.save()
    lead = world.a.people[Role.LEAD]
    berlin = ZoneInfo("Europe/Berlin")
    fire, medical = fire_scenario(site), fire_scenario(site, name="Medical emergency")
    alarms = {
        "fire": _alarm(site, fire, datetime(2026, 3, 2, 9, 0, tzinfo=berlin), place="Gym", lead=lead),
        "fire_drill": _alarm(site, fire, datetime(2026, 5, 4, 10, 0, tzinfo=berlin), drill=True, lead=lead),
        "medical_drill": _alarm(site, medical, datetime(2026, 6, 1, 0, 30, tzinfo=berlin), drill=True,
                                place="Lab 3", lead=lead),
    }
    # Another site of the same organisation, and a site of another organisation.
    _alarm(world.a2.site, fire_scenario(world.a2.site, name="Gas leak"), datetime(2026, 4, 1, 8, 0, tzinfo=berlin),
           lead=world.a2.people[Role.LEAD])
    _alarm(world.b.site, fire_scenario(world.b.site, name="Bomb threat"), datetime(2026, 4, 2, 8, 0, tzinfo=berlin),
           lead=world.b.people[Role.LEAD])
    return alarms, fire, medical


def shown(response) -> list[int]:
    assert response.status_code == 200
    return [int(n) for n in re.findall(r'data-alarm-id="(\d+)"', response.content.decode())]


def test_the_crisis_team_sees_every_alarm_of_its_site_newest_first_and_filters_them(past, signed_in):
    alarms, fire, medical = past
    client = signed_in(Role.LEAD)
    page = client.get(URL)
    assert shown(page) == [alarms["medical_drill"].pk, alarms["fire_drill"].pk, alarms["fire"].pk]
    body = page.content.decode()
    assert "Gas leak" not in body and "Bomb threat" not in body
    assert "lasted 1\xa0hour, 5\xa0minutes" in body and f'href="/cockpit/{alarms["fire"].pk}/"' in body
    assert 'name="site"' not in body  # one site only: no choice to make

    assert shown(client.get(URL, {"kind": "drill"})) == [alarms["medical_drill"].pk, alarms["fire_drill"].pk]
    assert shown(client.get(URL, {"kind": "alarm"})) == [alarms["fire"].pk]
    assert shown(client.get(URL, {"scenario": fire.pk})) == [alarms["fire_drill"].pk, alarms["fire"].pk]
    assert shown(client.get(URL, {"q": "lab"})) == [alarms["medical_drill"].pk]
    assert shown(client.get(URL, {"q": "medical lab"})) == [alarms["medical_drill"].pk]
    assert shown(client.get(URL, {"q": "clear gym"})) == [alarms["fire"].pk]  # the place and the end's reason
    # Dates are the site's days: the medical drill began at 00:30 in Berlin on 1 June (22:30 UTC on 31 May).
    assert shown(client.get(URL, {"since": "2026-06-01"})) == [alarms["medical_drill"].pk]
    assert shown(client.get(URL, {"until": "2026-05-31"})) == [alarms["fire_drill"].pk, alarms["fire"].pk]
    assert shown(client.get(URL, {"since": "2026-05-01", "until": "2026-05-31", "kind": "drill"})) == [
        alarms["fire_drill"].pk]


def test_the_history_comes_in_pages(past, signed_in, monkeypatch):
    alarms, _fire, _medical = past
    monkeypatch.setattr(views, "HISTORY_PAGE_SIZE", 2)
    client = signed_in(Role.LEAD)
    first = client.get(URL, {"kind": "", "page": "1"})
    assert shown(first) == [alarms["medical_drill"].pk, alarms["fire_drill"].pk]
    assert "Page 1 of 2" in first.content.decode() and "3 alarms" in first.content.decode()
    assert shown(client.get(URL, {"page": "2"})) == [alarms["fire"].pk]
    assert shown(client.get(URL, {"page": "nonsense"})) == [alarms["medical_drill"].pk, alarms["fire_drill"].pk]


def test_bad_filters_say_why_and_show_nothing(past, signed_in, world):
    client = signed_in(Role.LEAD)
    for query, message in (({"since": "2026-06-02", "until": "2026-06-01"}, "must not lie after"),
                           ({"until": "yesterday"}, "Enter a valid date."),
                           ({"scenario": fire_scenario(world.b.site, name="Theirs").pk}, "Select a valid choice"),
                           ({"kind": "earthquake"}, "Select a valid choice"),
                           ({"q": "x" * 101}, "at most 100 characters")):
        response = client.get(URL, query)
        assert shown(response) == [], query
        assert message in response.content.decode(), query


def test_a_super_admin_looks_back_on_the_organisations_other_sites_but_never_on_another_organisation(
        past, client, world):
    client.force_login(world.super_a)
    session = client.session
    session["rp_site_id"] = world.a.site.pk
    session.save()
    own = client.get(URL)
    assert f'<option value="{world.a2.site.pk}">' in own.content.decode()
    assert f'<option value="{world.b.site.pk}">' not in own.content.decode()
    other = client.get(URL, {"site": world.a2.site.pk})
    body = other.content.decode()
    assert len(shown(other)) == 1 and "Gas leak" in body and "Medical emergency" not in body
    assert "switch to that site" in body and 'href="/cockpit/' not in body.split('id="history"')[1]
    foreign = client.get(URL, {"site": world.b.site.pk})
    assert shown(foreign) == [] and "Bomb threat" not in foreign.content.decode()
    assert "Select a valid choice" in foreign.content.decode()


def test_only_the_crisis_team_looks_back(past, signed_in):
    assert signed_in(Role.EMPLOYEE).get(URL).status_code == 403


def test_the_history_reads_german(past, signed_in, world):
    lead = world.a.people[Role.LEAD].user
    lead.language = "de"
    lead.save()
    body = signed_in(Role.LEAD).get(URL, {"kind": "drill"}).content.decode()
    assert "Vergangene Alarme" in body and "Nur Übungen" in body and "2 Alarme" in body
    assert "Dauer: 1\xa0Stunde, 5\xa0Minuten" in body
