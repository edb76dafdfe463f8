"""Managing scenarios through the pages: levels, questions, documents; refused while an alarm is active."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from rallypoint.alarms import actions
from rallypoint.alarms.models import Level, Question, Scenario, ScenarioDocument
from rallypoint.audit.models import AuditEntry
from rallypoint.tenants.roles import SUPER_ADMIN, Role
from tests.alarm_fixtures import fire_scenario

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
ACTIVE_REFUSAL = "cannot be changed while its alarm is active — end the alarm first"

SCENARIO = {
    "name": "Gas leak", "category": "alarm", "priority": "1", "color": "#1d4ed8", "icon": "gas", "sound": "gong",
    "message_template": "Gas at {location}: leave {site} now.", "instruction_lead": "Call the gas company.",
    "instruction_employee": "Leave, do not switch anything on or off.", "trigger_roles": ["lead", "member"],
    "silent": "", "allow_drill": "on", "quick": "on", "is_active": "on",
}


def client_for(world, role: str) -> Client:
    client = Client()
    client.force_login(world.persona(role))
    session = client.session
    session["rp_site_id"] = world.a.site.pk
    session.save()
    return client


@pytest.fixture
def admin(world) -> Client:
    return client_for(world, Role.ADMIN)


def body(response) -> str:
    return response.content.decode()


def level_data(**changes) -> dict:
    data = {"name": "Evacuate", "position": "1", "recipient_roles": ["employee", "guest"],
            "channels": ["inapp", "email"], "requires_acceptance": "on", "escalate_below": "0",
            "escalate_after_seconds": "120", "escalation": ""}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_an_administrator_creates_a_scenario_with_every_field(world, admin):
    response = admin.post("/scenarios/new/", {**SCENARIO, "trigger_groups": [world.a.group.pk]})
    scenario = Scenario.objects.get(site=world.a.site, name="Gas leak")
    assert response.status_code == 302 and response["Location"] == f"/scenarios/{scenario.pk}/"
    assert (scenario.category, scenario.priority, scenario.color, scenario.icon, scenario.sound) == (
        "alarm", 1, "#1d4ed8", "gas", "gong")
    assert scenario.instructions == {"lead": "Call the gas company.",
                                     "employee": "Leave, do not switch anything on or off."}
    assert scenario.trigger_roles == ["lead", "member"] and list(scenario.trigger_groups.all()) == [world.a.group]
    assert (scenario.silent, scenario.allow_drill, scenario.quick, scenario.is_active) == (False, True, True, True)
    entry = AuditEntry.objects.get(site=world.a.site, action="scenario.created")
    assert entry.object_id == str(scenario.pk) and entry.changes["name"] == [None, "Gas leak"]
    page = body(admin.get(response["Location"]))
    assert "Add at least one level" in page and 'value="Gas leak"' in page
    assert "Gas leak" in body(admin.get("/scenarios/"))


def test_changes_are_saved_and_audited_field_by_field(world, admin):
    scenario = fire_scenario(world.a.site)
    page = body(admin.get(f"/scenarios/{scenario.pk}/"))
    assert "Leave by the nearest exit." in page and "Pre-alarm" in page and "Is anyone hurt?" in page
    admin.post(f"/scenarios/{scenario.pk}/", {**SCENARIO, "name": "Fire", "silent": "on", "quick": ""})
    scenario.refresh_from_db()
    assert scenario.silent and not scenario.quick and scenario.icon == "gas"
    changes = AuditEntry.objects.get(action="scenario.updated").changes
    assert changes["silent"] == [False, True] and "name" not in changes


@pytest.mark.parametrize(("field", "value", "message"), [
    ("name", "", "This field is required."),
    ("color", "red", "Use a colour like #b3261e."),
    ("priority", "7", "Select a valid choice."),
    ("message_template", "", "This field is required."),
    ("icon", "unicorn", "Select a valid choice."),
])
def test_bad_scenario_input_is_explained(world, admin, field, value, message):
    response = admin.post("/scenarios/new/", {**SCENARIO, field: value})
    assert response.status_code == 400 and message in body(response)
    assert not Scenario.objects.exists()


@pytest.mark.parametrize(("template", "message"), [
    ("Fire at {unknown}.", "Unknown placeholder {unknown}. The message can use {scenario}, {level}, {location}, "
                           "{site}; for a brace itself, write it twice: {{ or }}."),
    ("{Site}: {} {site.name} {location:>9}", "Unknown placeholders {Site}, {}, {site.name}, {location:&gt;9}."),
    ("Fire at {site", "A brace is not closed or not opened."),
    ("Fire} at {site}", "A brace is not closed or not opened."),
])
def test_a_message_with_an_unknown_placeholder_is_refused(world, admin, template, message):
    response = admin.post("/scenarios/new/", {**SCENARIO, "message_template": template})
    assert response.status_code == 400 and message in body(response)
    assert not Scenario.objects.exists()
    scenario = fire_scenario(world.a.site)
    response = admin.post(f"/scenarios/{scenario.pk}/", {**SCENARIO, "message_template": template})
    assert response.status_code == 400 and message in body(response)
    scenario.refresh_from_db()
    assert scenario.message_template == "Fire at {location}. Leave the building."
    german = admin.post("/scenarios/new/", {**SCENARIO, "message_template": template},
                        headers={"accept-language": "de"})
    assert german.status_code == 400 and ("Unbekannter Platzhalter" in body(german) or "Klammer" in body(german))


def test_known_placeholders_and_doubled_braces_are_kept(world, admin):
    template = "{scenario} ({level}) at {site}: {location}. Code {{7}}."
    assert admin.post("/scenarios/new/", {**SCENARIO, "message_template": template}).status_code == 302
    assert Scenario.objects.get(site=world.a.site, name="Gas leak").message_template == template


def test_channels_and_empty_choices_are_shown_in_words(world, admin):
    scenario = fire_scenario(world.a.site, channels=("inapp", "push", "email"))
    shown = {"en": ("App (live), Push notification, E-mail", ("No level", "No group")),
             "de": ("App (live), Push-Benachrichtigung, E-Mail", ("Keine Stufe", "Keine Gruppe"))}
    for language, (words, empty) in shown.items():
        page = body(admin.get(f"/scenarios/{scenario.pk}/", headers={"accept-language": language}))
        assert words in page and "inapp" not in page
        level = scenario.levels.first()
        page = body(admin.get(f"/scenarios/{scenario.pk}/levels/{level.pk}/", headers={"accept-language": language}))
        assert "---------" not in page
        for label in empty:
            assert f'<option value="" selected>{label}</option>' in page


def test_scenario_names_are_unique_in_a_site_only(world, admin):
    fire_scenario(world.a.site, name="Gas leak")
    fire_scenario(world.b.site, name="Other")
    response = admin.post("/scenarios/new/", {**SCENARIO})
    assert response.status_code == 400 and "A scenario with this name already exists." in body(response)
    assert admin.post("/scenarios/new/", {**SCENARIO, "name": "Other"}).status_code == 302


def test_a_level_with_recipients_channels_and_an_escalation_rule(world, admin):
    scenario = fire_scenario(world.a.site)
    pre = scenario.levels.get(name="Pre-alarm")
    people = [world.a.people[Role.LEAD].pk]
    response = admin.post(f"/scenarios/{scenario.pk}/levels/new/", level_data(
        name="Everyone out", position="3", recipient_people=people, recipient_groups=[world.a.group.pk],
        channels=["sms", "push"], escalation="raise_level", escalate_below="5", escalate_after_seconds="60",
        escalate_to_level=str(pre.pk)))
    assert response.status_code == 302
    level = scenario.levels.get(name="Everyone out")
    assert (level.position, level.channels, level.recipient_roles, level.escalation, level.escalate_below,
            level.escalate_after_seconds, level.escalate_to_level) == (
        3, ["sms", "push"], ["employee", "guest"], "raise_level", 5, 60, pre)
    assert list(level.recipient_people.all()) == [world.a.people[Role.LEAD]]
    assert list(level.recipient_groups.all()) == [world.a.group]
    entry = AuditEntry.objects.get(action="scenario.level_created")
    assert entry.object_id == str(scenario.pk) and f"level#{level.pk}.channels" in entry.changes
    # Send again on further channels, or alert a group.
    admin.post(f"/scenarios/{scenario.pk}/levels/{level.pk}/", level_data(
        escalation="next_channel", escalate_below="1", escalate_channels=["sms", "voice"]))
    level.refresh_from_db()
    assert level.escalation == "next_channel" and level.escalate_channels == ["sms", "voice"]
    admin.post(f"/scenarios/{scenario.pk}/levels/{level.pk}/", level_data(
        escalation="notify_group", escalate_below="2", escalate_to_group=str(world.a.group.pk)))
    level.refresh_from_db()
    assert level.escalation == "notify_group" and level.escalate_to_group == world.a.group


@pytest.mark.parametrize(("changes", "message"), [
    ({"channels": None}, "Choose at least one channel."),
    ({"recipient_roles": None}, "Choose who is alerted: at least one role, group or person."),
    ({"escalation": "raise_level", "escalate_below": "2"}, "Choose the level to raise to."),
    ({"escalation": "next_channel", "escalate_below": "2"}, "Choose the channels to send again on."),
    ({"escalation": "notify_group", "escalate_below": "2"}, "Choose the group to alert."),
    ({"escalation": "notify_group", "escalate_below": "0"}, "An escalation needs a number of at least 1."),
    ({"channels": ["fax"]}, "Select a valid choice."),
])
def test_bad_level_input_is_explained(world, admin, changes, message):
    scenario = fire_scenario(world.a.site)
    if changes.get("escalation") == "notify_group" and changes.get("escalate_below") == "0":
        changes["escalate_to_group"] = str(world.a.group.pk)
    response = admin.post(f"/scenarios/{scenario.pk}/levels/new/", level_data(**changes))
    assert response.status_code == 400 and message in body(response)
    assert scenario.levels.count() == 2


def test_a_level_cannot_name_another_sites_people_or_groups(world, admin):
    scenario = fire_scenario(world.a.site)
    response = admin.post(f"/scenarios/{scenario.pk}/levels/new/", level_data(
        recipient_people=[world.b.people[Role.EMPLOYEE].pk], recipient_groups=[world.b.group.pk]))
    assert response.status_code == 400 and scenario.levels.count() == 2


def test_questions_have_up_to_five_distinct_preset_answers(world, admin):
    scenario = fire_scenario(world.a.site)
    url = f"/scenarios/{scenario.pk}/questions/new/"
    answers = {f"answer_{i}": a for i, a in enumerate(["Yes", "No", "", "Unknown", "Maybe", ""], start=1)}
    assert admin.post(url, {"text": "Is there smoke?", "position": "2", **answers}).status_code == 302
    question = Question.objects.get(scenario=scenario, text="Is there smoke?")
    assert question.answers == ["Yes", "No", "Unknown", "Maybe"]
    twice = admin.post(url, {"text": "Fire?", "position": "3", "answer_1": "Yes", "answer_2": "Yes"})
    assert twice.status_code == 400 and "Each preset answer may appear only once." in body(twice)
    same = admin.post(url, {"text": "Is anyone hurt?", "position": "3"})
    assert same.status_code == 400 and "This scenario already asks this question." in body(same)
    admin.post(f"/scenarios/{scenario.pk}/questions/{question.pk}/delete/")
    assert not Question.objects.filter(pk=question.pk).exists()


def upload(client, scenario, content: bytes, name="plan.pdf", title=""):
    return client.post(f"/scenarios/{scenario.pk}/documents/",
                       {"title": title, "file": SimpleUploadedFile(name, content, content_type="application/pdf")},
                       follow=True)


def test_pdf_documents_are_checked_stored_and_downloaded(world, admin):
    scenario = fire_scenario(world.a.site)
    page = upload(admin, scenario, PDF, name="Evacuation plan.PDF")
    assert "Document added." in body(page)
    document = ScenarioDocument.objects.get(scenario=scenario)
    assert (document.title, bytes(document.content), document.size) == ("Evacuation plan", PDF, len(PDF))
    download = admin.get(f"/scenarios/{scenario.pk}/documents/{document.pk}/")
    assert download.content == PDF and download["Content-Disposition"].startswith("attachment;")
    fake = upload(admin, scenario, b"<html>not a pdf</html>", name="fake.pdf")
    assert "This is not a PDF file." in body(fake)
    big = upload(admin, scenario, b"%PDF-1.4\n" + b"0" * (5 * 1024 * 1024), name="big.pdf")
    assert "The file is larger than 5 MB." in body(big)
    assert ScenarioDocument.objects.count() == 1
    admin.post(f"/scenarios/{scenario.pk}/documents/{document.pk}/delete/")
    assert not ScenarioDocument.objects.exists()
    assert AuditEntry.objects.filter(action="scenario.document_deleted", object_id=str(scenario.pk)).exists()


def test_nothing_of_a_scenario_changes_while_its_alarm_is_active(world, admin):
    scenario = fire_scenario(world.a.site)
    level, question = scenario.levels.first(), scenario.questions.first()
    document = ScenarioDocument.objects.create(site=world.a.site, scenario=scenario, title="Plan", content=PDF,
                                               size=len(PDF))
    alarm, _ = actions.trigger_alarm(site=world.a.site, scenario=scenario, user=None)
    url = f"/scenarios/{scenario.pk}/"
    assert "cannot be changed until it has ended" in body(admin.get(url))
    edit = admin.post(url, {**SCENARIO, "name": "Fire"})
    assert edit.status_code == 400 and ACTIVE_REFUSAL in body(edit)
    level_edit = admin.post(f"{url}levels/{level.pk}/", level_data(name="Renamed"))
    assert level_edit.status_code == 400 and ACTIVE_REFUSAL in body(level_edit)
    assert ACTIVE_REFUSAL in body(admin.post(f"{url}levels/new/", level_data()))
    assert ACTIVE_REFUSAL in body(admin.post(f"{url}questions/{question.pk}/", {"text": "New?", "position": "1"}))
    for path in (f"levels/{level.pk}/delete/", f"questions/{question.pk}/delete/",
                 f"documents/{document.pk}/delete/", "delete/"):
        assert ACTIVE_REFUSAL in body(admin.post(url + path, follow=True)), path
    assert ACTIVE_REFUSAL in body(upload(admin, scenario, PDF))
    scenario.refresh_from_db()
    assert scenario.icon == "fire" and scenario.levels.count() == 2 and scenario.documents.count() == 1
    assert not AuditEntry.objects.filter(action__startswith="scenario.").exists()
    actions.end_alarm(user=None, alarm=alarm, reason="Over")
    assert admin.post(url, {**SCENARIO, "name": "Fire"}).status_code == 302


def test_a_scenario_is_deleted_only_if_it_was_never_raised(world, admin):
    unused = fire_scenario(world.a.site, name="Unused")
    used = fire_scenario(world.a.site)
    alarm, _ = actions.trigger_alarm(site=world.a.site, scenario=used, user=None)
    actions.end_alarm(user=None, alarm=alarm, reason="Over")
    refused = admin.post(f"/scenarios/{used.pk}/delete/", follow=True)
    assert "has alarms in the incident protocol" in body(refused)
    assert "was used by alarms" in body(admin.post(f"/scenarios/{used.pk}/levels/{alarm.level_id}/delete/",
                                                   follow=True))
    assert admin.post(f"/scenarios/{unused.pk}/delete/")["Location"] == "/scenarios/"
    assert list(Scenario.objects.values_list("name", flat=True)) == ["Fire"]
    assert AuditEntry.objects.filter(action="scenario.deleted", object_id=str(unused.pk)).exists()


def test_a_level_another_level_raises_to_is_kept(world, admin):
    scenario = fire_scenario(world.a.site)
    pre, evacuate = scenario.levels.all()
    Level.objects.filter(pk=pre.pk).update(escalation="raise_level", escalate_below=1, escalate_to_level=evacuate)
    page = admin.post(f"/scenarios/{scenario.pk}/levels/{evacuate.pk}/delete/", follow=True)
    assert "raises to this level" in body(page) and scenario.levels.count() == 2
    admin.post(f"/scenarios/{scenario.pk}/levels/{pre.pk}/delete/")
    assert list(scenario.levels.values_list("name", flat=True)) == ["Evacuate"]


@pytest.mark.parametrize("role", [Role.LEAD, Role.MEMBER, Role.EMPLOYEE, Role.GUEST])
def test_only_administrators_manage_scenarios(world, role):
    scenario = fire_scenario(world.a.site)
    client = client_for(world, role)
    for url in ("/scenarios/", "/scenarios/new/", f"/scenarios/{scenario.pk}/",
                f"/scenarios/{scenario.pk}/levels/new/"):
        assert client.get(url).status_code == 403, url
    assert client.post("/scenarios/new/", SCENARIO).status_code == 403
    assert client.post(f"/scenarios/{scenario.pk}/delete/").status_code == 403
    assert 'id="nav-scenarios"' not in body(client.get("/"))
    assert Scenario.objects.count() == 1


def test_a_super_admin_manages_scenarios_but_never_another_sites(world):
    client = client_for(world, SUPER_ADMIN)
    assert 'id="nav-scenarios"' in body(client.get("/"))
    assert client.post("/scenarios/new/", SCENARIO).status_code == 302
    foreign = fire_scenario(world.b.site)
    level = foreign.levels.first()
    for url in (f"/scenarios/{foreign.pk}/", f"/scenarios/{foreign.pk}/levels/{level.pk}/"):
        assert client.get(url).status_code == 404
    assert client.post(f"/scenarios/{foreign.pk}/delete/").status_code == 404
    assert client.post(f"/scenarios/{foreign.pk}/levels/{level.pk}/", level_data()).status_code == 404
    assert Scenario.objects.filter(pk=foreign.pk).exists()


def test_the_scenario_list_marks_quick_silent_switched_off_and_incomplete(world, admin):
    fire_scenario(world.a.site, quick=True)
    Scenario.objects.create(site=world.a.site, name="Empty", message_template="x", silent=True, is_active=False)
    page = body(admin.get("/scenarios/"))
    for badge in ("quick alarm", "silent", "switched off", "no level yet"):
        assert badge in page
    assert re.search(r"2 levels", page)
