"""The alarm pages without JavaScript: triggering, the alarm page, answer links, the cockpit."""

from __future__ import annotations

import io
import logging
import re
import time

import pytest
from django.test import Client

from rallypoint.alarms import actions, links
from rallypoint.alarms.models import Alarm, AlarmRecipient, Level, ScenarioDocument
from rallypoint.notify.models import Delivery
from rallypoint.tenants.roles import SUPER_ADMIN, Role
from tests.alarm_fixtures import fire_scenario

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def client_for(world, role: str, site=None) -> Client:
    client = Client()
    client.force_login(world.persona(role))
    session = client.session
    session["rp_site_id"] = (site or world.a.site).pk
    session.save()
    return client


def body(response) -> str:
    return response.content.decode()


def raise_alarm(world, scenario, role=Role.EMPLOYEE, **kwargs) -> Alarm:
    alarm, _created = actions.trigger_alarm(site=world.a.site, scenario=scenario, user=world.persona(role), **kwargs)
    return alarm


def recipient_of(alarm, world, role) -> AlarmRecipient:
    return AlarmRecipient.objects.get(alarm=alarm, membership=world.a.people[role])


# Triggering ----------------------------------------------------------------------------------------

def test_the_home_page_has_a_red_button_for_each_quick_alarm_the_person_may_raise(world):
    quick = fire_scenario(world.a.site, quick=True)
    fire_scenario(world.a.site, name="Leads only", quick=True, trigger_roles=[Role.LEAD])
    fire_scenario(world.a.site, name="Not quick")
    page = body(client_for(world, Role.EMPLOYEE).get("/"))
    assert f'href="/alarms/new/{quick.pk}/quick/"' in page and 'class="alarm-button big"' in page
    assert "Leads only" not in page and "Not quick" not in page
    assert 'href="/alarms/new/"' in page  # the full flow for the others
    assert "No active alarm" in page


def test_a_quick_alarm_is_raised_with_two_taps_after_the_home_screen(world):
    scenario = fire_scenario(world.a.site, quick=True)
    employee = client_for(world, Role.EMPLOYEE)
    home = body(employee.get("/"))
    quick_url = re.search(r'href="(/alarms/new/\d+/quick/)"', home).group(1)
    page = employee.get(quick_url)  # tap 1
    assert page.status_code == 200
    text = body(page)
    assert "Pre-alarm" in text and "Use my position" in text and 'id="raise-alarm"' in text
    assert "Is anyone hurt?" not in text  # a quick alarm asks nothing
    request_id = re.search(r'name="request_id" value="([^"]+)"', text).group(1)
    raised = employee.post(quick_url, {"request_id": request_id, "location_text": "Canteen",
                                       "latitude": "52.52", "longitude": "13.405"})  # tap 2
    alarm = Alarm.objects.get(site=world.a.site)
    assert raised.status_code == 302 and raised["Location"] == f"/alarms/{alarm.pk}/"
    assert (alarm.level.name, alarm.location_text, alarm.latitude, alarm.answers, alarm.is_drill) == (
        "Pre-alarm", "Canteen", 52.52, [], False)
    assert alarm.triggered_by == world.a.people[Role.EMPLOYEE]
    # A second tap on the same page (a shaking hand) raises nothing new.
    again = employee.post(quick_url, {"request_id": request_id})
    assert again["Location"] == f"/alarms/{alarm.pk}/" and Alarm.objects.count() == 1
    assert body(employee.get(again["Location"])).count("Pre-alarm") >= 1  # the page after raising
    assert scenario.alarms.count() == 1


def test_a_broken_position_never_holds_up_an_alarm(world):
    scenario = fire_scenario(world.a.site, quick=True)
    response = client_for(world, Role.EMPLOYEE).post(f"/alarms/new/{scenario.pk}/quick/",
                                                     {"latitude": "north", "longitude": "13.4"})
    alarm = Alarm.objects.get()
    assert response["Location"] == f"/alarms/{alarm.pk}/" and alarm.latitude is None and alarm.longitude is None


def test_the_full_flow_works_without_script_and_raises_only_after_confirming(world):
    scenario = fire_scenario(world.a.site)
    lead = client_for(world, Role.LEAD)
    start = body(lead.get("/alarms/new/"))
    assert f'href="/alarms/new/{scenario.pk}/"' in start
    url = f"/alarms/new/{scenario.pk}/"
    form = body(lead.get(url))
    assert "Is anyone hurt?" in form and "This is a drill" in form and "Evacuate" in form
    evacuate = scenario.levels.get(name="Evacuate")
    request_id = re.search(r'name="request_id" value="([^"]+)"', form).group(1)
    data = {"step": "review", "request_id": request_id, "level": evacuate.pk, "location_text": "Lab 2",
            "q0": "Yes", "q0_text": "", "note": "Smoke on floor 2", "is_drill": "on"}
    review = lead.post(url, data)
    assert review.status_code == 200 and not Alarm.objects.exists()
    text = body(review)
    assert "Raise alarm" in text and "Smoke on floor 2" in text and "DRILL" in text and "Yes" in text
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', text))
    assert hidden["level"] == str(evacuate.pk) and hidden["q0"] == "Yes"
    done = lead.post(url, {**hidden, "step": "raise"})
    alarm = Alarm.objects.get()
    assert done["Location"] == f"/alarms/{alarm.pk}/"
    assert (alarm.level, alarm.is_drill, alarm.note, alarm.answers) == (
        evacuate, True, "Smoke on floor 2", [{"question": "Is anyone hurt?", "answer": "Yes"}])
    assert "DRILL" in body(lead.get(done["Location"]))


def test_a_free_text_answer_wins_over_a_preset_and_the_change_step_keeps_the_input(world):
    scenario = fire_scenario(world.a.site)
    lead = client_for(world, Role.LEAD)
    url = f"/alarms/new/{scenario.pk}/"
    data = {"level": scenario.levels.first().pk, "q0": "No", "q0_text": "Two people, minor burns",
            "location_text": "Hall 3"}
    back = lead.post(url, {**data, "step": "edit"})
    assert back.status_code == 200 and 'value="Hall 3"' in body(back) and not Alarm.objects.exists()
    lead.post(url, {**data, "step": "raise"})
    assert Alarm.objects.get().answers == [{"question": "Is anyone hurt?", "answer": "Two people, minor burns"}]


def test_no_drill_switch_where_the_scenario_allows_none(world):
    scenario = fire_scenario(world.a.site, allow_drill=False)
    lead = client_for(world, Role.LEAD)
    url = f"/alarms/new/{scenario.pk}/"
    assert "This is a drill" not in body(lead.get(url))
    lead.post(url, {"step": "raise", "level": scenario.levels.first().pk, "is_drill": "on"})
    assert Alarm.objects.get().is_drill is False


def test_a_silent_alarm_leaves_no_trace_on_the_triggering_screen(world):
    scenario = fire_scenario(world.a.site, name="Threat", silent=True, quick=True, sound="siren")
    employee = client_for(world, Role.EMPLOYEE)
    raised = employee.post(f"/alarms/new/{scenario.pk}/quick/", {})
    assert raised.status_code == 302 and raised["Location"] == "/"
    home = body(employee.get("/"))
    assert "Sent." in home and 'class="alarm-banner"' not in home
    # The crisis team sees it.
    lead_home = body(client_for(world, Role.LEAD).get("/"))
    assert 'class="alarm-banner"' in lead_home and "Threat — Pre-alarm" in lead_home


def test_only_permitted_people_reach_a_scenarios_trigger_pages(world):
    scenario = fire_scenario(world.a.site, quick=True, trigger_roles=[Role.LEAD])
    employee = client_for(world, Role.EMPLOYEE)
    assert employee.get(f"/alarms/new/{scenario.pk}/quick/").status_code == 403
    assert employee.post(f"/alarms/new/{scenario.pk}/", {"step": "raise"}).status_code == 403
    foreign = fire_scenario(world.b.site, quick=True)
    assert client_for(world, Role.LEAD).get(f"/alarms/new/{foreign.pk}/quick/").status_code == 404
    assert not Alarm.objects.exists()


def test_a_scenario_without_the_quick_flag_goes_to_the_full_flow(world):
    scenario = fire_scenario(world.a.site)
    response = client_for(world, Role.LEAD).get(f"/alarms/new/{scenario.pk}/quick/")
    assert response.status_code == 302 and response["Location"] == f"/alarms/new/{scenario.pk}/"


# The alarm page ------------------------------------------------------------------------------------

def test_a_recipient_reads_the_alarm_and_accepts_on_its_page(world):
    scenario = fire_scenario(world.a.site)
    ScenarioDocument.objects.create(site=world.a.site, scenario=scenario, title="Evacuation plan", content=PDF,
                                    size=len(PDF))
    alarm = raise_alarm(world, scenario, location_text="Lab 2")
    lead = client_for(world, Role.LEAD)
    page = body(lead.get(f"/alarms/{alarm.pk}/"))
    assert "Fire at Lab 2. Leave the building." in page and "Go to the cockpit." in page
    assert "Leave by the nearest exit." not in page  # another role's instruction
    assert 'value="accepted"' in page and 'value="declined"' in page and "Evacuation plan" in page
    row = recipient_of(alarm, world, Role.LEAD)
    assert row.seen_at is not None  # showing the page is the in-app receipt
    assert Delivery.objects.get(alarm=alarm, recipient=row, channel="inapp").state == Delivery.State.DELIVERED
    answered = lead.post(f"/alarms/{alarm.pk}/answer/", {"answer": "accepted"}, follow=True)
    row.refresh_from_db()
    assert (row.answer, row.answered_via) == ("accepted", "app")
    assert "You accepted." in body(answered)
    lead.post(f"/alarms/{alarm.pk}/answer/", {"answer": "declined"})
    row.refresh_from_db()
    assert row.answer == "declined"
    assert "Answer “accepted” or “declined”." in body(lead.post(f"/alarms/{alarm.pk}/answer/", {"answer": "x"},
                                                                follow=True))


def test_a_recipient_downloads_the_scenarios_documents_as_attachments(world):
    scenario = fire_scenario(world.a.site, roles=[Role.LEAD])
    document = ScenarioDocument.objects.create(site=world.a.site, scenario=scenario, title="Plan/Floor 2",
                                               content=PDF, size=len(PDF))
    alarm = raise_alarm(world, scenario)
    response = client_for(world, Role.LEAD).get(f"/alarms/{alarm.pk}/documents/{document.pk}/")
    assert response.status_code == 200 and response.content == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="Plan_Floor 2.pdf"'
    assert client_for(world, Role.GUEST).get(f"/alarms/{alarm.pk}/documents/{document.pk}/").status_code == 404


def test_who_is_neither_recipient_nor_trigger_nor_crisis_team_gets_404(world):
    scenario = fire_scenario(world.a.site, roles=[Role.LEAD])
    alarm = raise_alarm(world, scenario, role=Role.EMPLOYEE)
    assert client_for(world, Role.GUEST).get(f"/alarms/{alarm.pk}/").status_code == 404
    assert client_for(world, Role.GUEST).post(f"/alarms/{alarm.pk}/answer/", {"answer": "accepted"}).status_code == 404
    mine = body(client_for(world, Role.EMPLOYEE).get(f"/alarms/{alarm.pk}/"))  # the one who raised it
    assert "Fire" in mine and 'value="accepted"' not in mine
    assert client_for(world, Role.MEMBER).get(f"/alarms/{alarm.pk}/").status_code == 200  # crisis team


def test_another_sites_alarm_is_not_found(world):
    scenario = fire_scenario(world.b.site)
    alarm, _created = actions.trigger_alarm(site=world.b.site, scenario=scenario, user=None)
    for role in (SUPER_ADMIN, Role.ADMIN, Role.LEAD, Role.EMPLOYEE):
        client = client_for(world, role)
        for url in (f"/alarms/{alarm.pk}/", f"/cockpit/{alarm.pk}/", f"/cockpit/{alarm.pk}/panel"):
            assert client.get(url).status_code in (403, 404), (role, url)
        assert client.post(f"/alarms/{alarm.pk}/answer/", {"answer": "accepted"}).status_code == 404
        assert client.post(f"/cockpit/{alarm.pk}/end/", {"reason": "x"}).status_code in (403, 404)
    alarm.refresh_from_db()
    assert alarm.is_active and not alarm.recipients.exclude(answer="").exists()


def test_an_ended_alarm_shows_the_reason_and_no_answer_buttons(world):
    alarm = raise_alarm(world, fire_scenario(world.a.site))
    actions.end_alarm(user=None, alarm=alarm, reason="False alarm")
    page = body(client_for(world, Role.EMPLOYEE).get(f"/alarms/{alarm.pk}/"))
    assert "False alarm" in page and 'value="accepted"' not in page


# Answer links --------------------------------------------------------------------------------------

@pytest.fixture
def request_log():
    """What Django's request and security loggers write (they do not propagate to pytest's caplog)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    loggers = [logging.getLogger(n) for n in ("django", "django.request", "django.security", "rallypoint", "")]
    previous = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield stream
    for lg, level in previous:
        lg.removeHandler(handler)
        lg.setLevel(level)


def test_an_answer_link_shows_the_alarm_on_get_and_answers_once_on_post(world, client, request_log):
    alarm = raise_alarm(world, fire_scenario(world.a.site), location_text="Lab 2")
    row = recipient_of(alarm, world, Role.MEMBER)
    token = links.make_token(row)
    url = f"/answer/{token}"
    shown = client.get(url)  # not signed in, like a mail app's browser
    assert shown.status_code == 200
    assert shown["Cache-Control"] == "no-store" and shown["Referrer-Policy"] == "no-referrer"
    text = body(shown)
    assert "Fire at Lab 2" in text and 'value="accepted"' in text and "Go to the assembly point" not in text
    assert f'data-clean-url="/alarms/{alarm.pk}/"' in text  # the script takes the token out of the address bar
    row.refresh_from_db()
    assert row.answer == "" and row.link_nonce  # a mail scanner's GET changes nothing
    answered = client.post(url, {"answer": "accepted"})
    row.refresh_from_db()
    assert answered.status_code == 200 and "Thank you: you accepted." in body(answered)
    assert (row.answer, row.answered_via, row.link_nonce) == ("accepted", "link", "")
    again = client.post(url, {"answer": "declined"})
    assert client.get(url).status_code == 410 and client.put(url).status_code == 405
    assert again.status_code == 410 and "This link no longer works" in body(again)
    row.refresh_from_db()
    assert row.answer == "accepted"
    assert client.get("/nothing-here/").status_code == 404 and "/nothing-here/" in request_log.getvalue()
    assert token not in request_log.getvalue() and "/answer/" not in request_log.getvalue()


def test_expired_forged_and_broken_answer_links_are_refused(world, client):
    alarm = raise_alarm(world, fire_scenario(world.a.site))
    row = recipient_of(alarm, world, Role.MEMBER)
    expired = links.make_token(row, now=time.time() - 10 * 24 * 3600)
    response = client.post(f"/answer/{expired}", {"answer": "accepted"})
    assert response.status_code == 410 and "This link has expired" in body(response)
    rid, expires, signature = links.make_token(row).split(".")
    forged = f"{rid}.{expires}.{'0' * len(signature)}"
    assert client.post(f"/answer/{forged}", {"answer": "accepted"}).status_code == 410
    other = recipient_of(alarm, world, Role.LEAD)
    assert client.post(f"/answer/{other.pk}.{expires}.{signature}", {"answer": "accepted"}).status_code == 410
    broken = client.get("/answer/not-a-token")
    assert broken.status_code == 404 and "This link does not work" in body(broken)
    assert not alarm.recipients.exclude(answer="").exists()


def test_an_answer_link_of_an_ended_alarm_says_so(world, client):
    alarm = raise_alarm(world, fire_scenario(world.a.site))
    token = links.make_token(recipient_of(alarm, world, Role.MEMBER))
    actions.end_alarm(user=None, alarm=alarm, reason="Drill over")
    assert "already ended" in body(client.get(f"/answer/{token}"))
    assert client.post(f"/answer/{token}", {"answer": "accepted"}).status_code == 410


# Cockpit -------------------------------------------------------------------------------------------

def test_the_cockpit_shows_counts_timeline_and_who_has_not_answered(world):
    scenario = fire_scenario(world.a.site, roles=[Role.LEAD, Role.MEMBER, Role.EMPLOYEE])
    alarm = raise_alarm(world, scenario, location_text="Lab 2")
    actions.answer_alarm(alarm=alarm, membership=world.a.people[Role.MEMBER], answer="accepted", via="app")
    lead = client_for(world, Role.LEAD)  # has a session: shown as reachable
    page = body(lead.get("/cockpit/"))
    assert f'data-alarm-panel="{alarm.pk}"' in page
    assert re.search(r'data-count="total">3<', page) and re.search(r'data-count="accepted">1<', page)
    assert re.search(r'data-count="none">2<', page)
    assert re.search(r'data-count="channel.email.waiting">3<', page)
    waiting = page.split('data-part="waiting"')[1].split("</div>")[0]
    assert "NameAalead" in waiting and "NameAaemployee" in waiting and "NameAamember" not in waiting
    assert re.search(r'<li class="offline">NameAaemployeezq', waiting)  # no session: greyed
    assert re.search(r"<li>NameAaleadzq", waiting)
    assert "NameAaemployeezq" in page.split('data-part="timeline"')[1]  # who triggered, by name
    fragment = lead.get(f"/cockpit/{alarm.pk}/panel")
    assert fragment.status_code == 200 and not body(fragment).lstrip().startswith("<!DOCTYPE")
    assert f'data-alarm-panel="{alarm.pk}"' in body(fragment)


def test_the_lead_updates_raises_and_ends_an_alarm_from_the_cockpit(world):
    scenario = fire_scenario(world.a.site, roles=[Role.LEAD])
    alarm = raise_alarm(world, scenario)
    lead = client_for(world, Role.LEAD)
    assert lead.post(f"/cockpit/{alarm.pk}/update/", {"note": "Fire brigade on site", "location_text": "Lab 3"}
                     ).status_code == 302
    evacuate = scenario.levels.get(name="Evacuate")
    done = lead.post(f"/cockpit/{alarm.pk}/raise/", {"level": evacuate.pk, "next": f"/cockpit/{alarm.pk}/"})
    assert done["Location"] == f"/cockpit/{alarm.pk}/"
    refused = lead.post(f"/cockpit/{alarm.pk}/end/", {"reason": " "}, follow=True)
    assert "Say why the alarm ends" in body(refused)
    lead.post(f"/cockpit/{alarm.pk}/end/", {"reason": "Fire put out"})
    alarm.refresh_from_db()
    assert (alarm.note, alarm.location_text, alarm.level, alarm.state, alarm.end_reason) == (
        "Fire brigade on site", "Lab 3", evacuate, "ended", "Fire put out")
    kinds = list(alarm.events.values_list("kind", flat=True))
    assert kinds == ["triggered", "updated", "level_raised", "ended"]
    page = body(lead.get(f"/cockpit/{alarm.pk}/"))
    assert "Fire put out" in page and "End alarm" not in page


def test_a_level_of_another_scenario_cannot_be_raised_to(world):
    alarm = raise_alarm(world, fire_scenario(world.a.site))
    other = fire_scenario(world.a.site, name="Gas").levels.last()
    page = client_for(world, Role.LEAD).post(f"/cockpit/{alarm.pk}/raise/", {"level": other.pk}, follow=True)
    assert "Choose a level of this scenario." in body(page)
    alarm.refresh_from_db()
    assert alarm.level.name == "Pre-alarm"


def test_cockpit_access_follows_the_roles(world):
    alarm = raise_alarm(world, fire_scenario(world.a.site))
    assert client_for(world, Role.EMPLOYEE).get("/cockpit/").status_code == 403
    assert client_for(world, Role.GUEST).get(f"/cockpit/{alarm.pk}/panel").status_code == 403
    member = client_for(world, Role.MEMBER)
    page = body(member.get("/cockpit/"))
    assert f'data-alarm-panel="{alarm.pk}"' in page and "End alarm" not in page  # watching only
    assert member.post(f"/cockpit/{alarm.pk}/end/", {"reason": "x"}).status_code == 403
    assert "End alarm" in body(client_for(world, SUPER_ADMIN).get("/cockpit/"))
    alarm.refresh_from_db()
    assert alarm.is_active


def test_the_cockpit_points_to_active_alarms_at_the_users_other_sites(world):
    scenario = fire_scenario(world.a2.site)
    actions.trigger_alarm(site=world.a2.site, scenario=scenario, user=None)
    page = body(client_for(world, SUPER_ADMIN).get("/cockpit/"))
    assert "SiteAbzq: 1 active alarm" in page
    client = client_for(world, SUPER_ADMIN)
    switched = client.post("/site/switch/", {"site": world.a2.site.pk, "next": "/cockpit/"})
    assert switched["Location"] == "/cockpit/"
    assert client.post("/site/switch/", {"site": world.a2.site.pk, "next": "https://evil.example/"}
                       )["Location"] == "/"


@pytest.mark.parametrize("role", [Role.LEAD, Role.EMPLOYEE])
def test_navigation_offers_what_the_role_may_do(world, role):
    page = body(client_for(world, role).get("/"))
    assert 'id="nav-alarm"' in page and "data-stream" in page
    assert ('id="nav-cockpit"' in page) == (role == Role.LEAD)
    assert 'id="nav-scenarios"' not in page


def test_levels_without_recipients_still_render_the_cockpit(world):
    scenario = fire_scenario(world.a.site)
    Level.objects.filter(scenario=scenario).update(recipient_roles=[])
    alarm = raise_alarm(world, scenario)
    assert "Everyone has answered." in body(client_for(world, Role.LEAD).get(f"/cockpit/{alarm.pk}/"))


def test_a_long_list_of_who_has_not_answered_is_cut_short(world, monkeypatch):
    monkeypatch.setattr("rallypoint.alarms.views.WAITING_LIST_LIMIT", 2)
    alarm = raise_alarm(world, fire_scenario(world.a.site))
    page = body(client_for(world, Role.LEAD).get(f"/cockpit/{alarm.pk}/"))
    waiting = page.split('data-part="waiting"')[1].split("</div>")[0]
    assert waiting.count("<li") == 3 and f"and {alarm.recipients.count() - 2} more" in waiting
