"""The demo is seeded in the installation's language (RP_LANGUAGE), and its messages say only what they carry."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from rallypoint.accounts import mfa
from rallypoint.accounts.models import User
from rallypoint.alarms import actions
from rallypoint.alarms.models import Alarm, Level, Question, Scenario
from rallypoint.evacuation import presence
from rallypoint.evacuation.models import Presence, Zone
from rallypoint.notify import messages
from rallypoint.notify.messages import check_template
from rallypoint.people.models import Group, Membership
from rallypoint.tenants.demo import DEMO_DOMAIN, refresh_demo_presence, seed_demo
from rallypoint.tenants.models import Organization, Site

#: What the demo is called in each language (a sample of every kind of text it seeds).
WORDS = {
    "en": {"sites": {"Headquarters", "Warehouse"}, "groups": {"Crisis team", "Evacuation helpers"},
           "scenarios": {"Fire", "Medical emergency", "Threat"},
           "levels": {"Pre-alarm", "Evacuate", "First aid needed", "Lock down"},
           "questions": {"Is anyone hurt?", "Is there smoke?"}, "answers": {"No", "Yes", "Unknown", "Heavy smoke"},
           "departments": {"Accounting", "Facility management"}, "what_you_do": "What you do:"},
    "de": {"sites": {"Hauptverwaltung", "Lager"}, "groups": {"Krisenstab", "Räumungshelfer"},
           "scenarios": {"Feueralarm", "Medizinischer Notfall", "Bedrohung"},
           "levels": {"Voralarm", "Räumung", "Erste Hilfe benötigt", "Einschließen"},
           "questions": {"Gibt es Verletzte?", "Ist Rauch zu sehen?"},
           "answers": {"Nein", "Ja", "Unbekannt", "Starker Rauch"},
           "departments": {"Buchhaltung", "Haustechnik"}, "what_you_do": "Was Sie tun:"},
}
#: English demo texts that must not appear on German pages (the scenario "Fire" would also match "Feuer"-less
#: words, so it is looked for as a whole word).
ENGLISH = ["Headquarters", "Warehouse", "Crisis team", "Evacuation helpers", "Medical emergency", "Pre-alarm",
           "Evacuate", "First aid needed", "Lock down", "Is anyone hurt?", "Is there smoke?", "Heavy smoke",
           "Fire alarm", "Leave the building", "Accounting", "Facility management", "Demo Organisation"]


@pytest.fixture
def demo(db, settings, tmp_path, request):
    settings.DATA_DIR = tmp_path
    settings.LANGUAGE_CODE = request.param
    assert seed_demo() is not None
    return request.param


def _seeded_words() -> dict[str, set[str]]:
    return {
        "sites": set(Site.objects.values_list("name", flat=True)),
        "groups": set(Group.objects.values_list("name", flat=True)),
        "scenarios": set(Scenario.objects.values_list("name", flat=True)),
        "levels": set(Level.objects.values_list("name", flat=True)),
        "questions": set(Question.objects.values_list("text", flat=True)),
        "answers": {a for q in Question.objects.all() for a in q.answers},
        "departments": {m.department for m in Membership.objects.all() if m.department},
    }


@pytest.mark.parametrize("demo", ["en", "de"], indirect=True)
def test_the_demo_is_written_in_the_installations_language(demo):
    seeded = _seeded_words()
    for kind, words in WORDS[demo].items():
        if kind != "what_you_do":
            assert words <= seeded[kind], (kind, seeded[kind])
    other = WORDS["de" if demo == "en" else "en"]
    for kind, words in seeded.items():
        assert not words & other[kind] - {"IT"}, kind
    for scenario in Scenario.objects.all():
        check_template(scenario.message_template)  # only placeholders the messages fill in


def _page_text(client: Client, path: str) -> str:
    response = client.get(path, headers={"accept-language": "de"})
    assert response.status_code == 200, path
    return re.sub(r"<[^>]+>", " ", response.content.decode().split("<main", 1)[-1])


@pytest.mark.parametrize("demo", ["de"], indirect=True)
def test_a_german_demo_has_no_english_on_its_pages(demo):
    admin = User.objects.by_email(f"superadmin@{DEMO_DOMAIN}").get()
    mfa.set_policy(organization=Organization.objects.get(), value="optional", actor=None)  # no enrolment first
    client = Client()
    client.force_login(admin)
    session = client.session
    session["rp_site_id"] = Site.objects.get(name="Hauptverwaltung").pk
    session.save()
    fire = Scenario.objects.get(name="Feueralarm")
    paths = ["/", "/people/", "/groups/", "/sites/", "/scenarios/", f"/scenarios/{fire.pk}/", "/alarms/new/",
             f"/alarms/new/{fire.pk}/", f"/scenarios/{fire.pk}/levels/{fire.levels.first().pk}/"]
    for path in paths:
        text = _page_text(client, path)
        found = [w for w in ENGLISH if w in text] + re.findall(r"\bFire\b", text)
        assert found == [], (path, found)
    assert "Feueralarm" in _page_text(client, "/")  # the quick alarm on the home page


@pytest.mark.parametrize("demo", ["en", "de"], indirect=True)
def test_every_demo_message_carries_the_instructions_for_its_reader(demo):
    """The fire alarm reaches every role (after its pre-alarm, the crisis team): each message says what the
    reader does; no message speaks of instructions it does not carry."""
    site = Site.objects.get(name=sorted(WORDS[demo]["sites"])[0])
    admin = User.objects.by_email(f"admin@{DEMO_DOMAIN}").get()
    for scenario in Scenario.objects.filter(site=site):
        for level in scenario.levels.all():
            alarm, _created = actions.trigger_alarm(site=site, scenario=scenario, level=level, user=admin,
                                                    is_drill=True)
            alarm = Alarm.objects.select_related("scenario", "level", "site").get(pk=alarm.pk)
            for recipient in alarm.recipients.select_related("membership"):
                message = messages.render(alarm, recipient, event="triggered", delivery_key="k", language=demo)
                instruction = scenario.instruction_for(recipient.membership.role)
                assert "instructions below" not in message.text and "Anweisungen unten" not in message.text
                if scenario.instructions:
                    assert instruction and f"{WORDS[demo]['what_you_do']}\n{instruction}" in message.text
            actions.end_alarm(user=admin, alarm=alarm, reason="drill")


@pytest.mark.parametrize("demo", ["en"], indirect=True)
def test_the_demo_is_an_evacuation_ready_to_play(demo):
    """A class of pupils without a login led by the employee, everyone of the school on site in a zone, and a
    fire alarm that evacuates its building; a later start checks people in again (presence ends at midnight)."""
    klass = Group.objects.get(name="Class 5a")
    pupils = list(klass.members.all())
    assert len(pupils) == 6 and all(p.kind == "listed" and p.user_id is None for p in pupils)
    teacher = klass.leaders.get()
    assert teacher.user.email == f"employee@{DEMO_DOMAIN}"
    hq = Site.objects.get(name="Headquarters")
    on_site = set(Presence.objects.for_site(hq).current().values_list("membership_id", flat=True))
    assert {p.pk for p in pupils} | {teacher.pk} <= on_site
    assert Presence.objects.get(membership=teacher).zone.code == "A-1-W"
    assert Scenario.objects.get(site=hq, name="Fire").evacuates == Scenario.Evacuates.BUILDING
    assert all(zone.area for zone in Zone.objects.filter(site=hq))  # the cockpit colours them on the plans
    presence.leave(membership=teacher)
    assert refresh_demo_presence() == 1 and presence.is_present(teacher)
