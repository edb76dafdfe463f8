"""The pages of an evacuation: one's own status on the alarm page, a teacher's class, a helper's zones, the
roll call at the assembly point (with a walk-in), the missing list and the handover (page and PDF)."""

from __future__ import annotations

import re
import zlib

import pytest
from django.test import Client

from rallypoint.alarms import links
from rallypoint.alarms.actions import end_alarm
from rallypoint.alarms.models import AlarmRecipient
from rallypoint.audit.models import AuditEntry
from rallypoint.evacuation import rollcall
from rallypoint.evacuation.models import PersonState, StatusReport, ZoneDuty, ZoneReport
from rallypoint.lib import pdf
from rallypoint.people.models import Membership
from rallypoint.tenants.roles import Role
from tests.test_evacuation_status import Evacuation


@pytest.fixture
def evac(world):
    return Evacuation(world)


def _client(evac, role: str) -> Client:
    client = Client()
    client.force_login(evac.world.a.people[role].user)
    return client


def _missing_ids(evac) -> set[int]:
    return {row.membership_id for row in rollcall.missing(evac.alarm)}


def pdf_text(data: bytes) -> str:
    """The text shown by a PDF of rallypoint.lib.pdf (its content streams, inflated)."""
    streams = re.findall(rb"stream\n(.*?)\nendstream", data, re.S)
    return b"".join(zlib.decompress(s) for s in streams).decode("cp1252")


def test_the_alarm_page_asks_everyone_for_their_status(evac):
    client = _client(evac, Role.EMPLOYEE)
    page = client.get(f"/alarms/{evac.alarm.pk}/").content.decode()
    assert 'id="status-safe"' in page and 'id="status-need_help"' in page and 'id="status-not_on_site"' in page
    assert "School yard" in page  # where they may say they are
    response = client.post(f"/alarms/{evac.alarm.pk}/status/", {"status": "safe", "assembly_point": evac.yard.pk,
                                                                "note": "by the gate"})
    assert response.status_code == 302
    state = PersonState.objects.get(alarm=evac.alarm, membership=evac.teacher)
    assert (state.status, state.assembly_point_id) == ("safe", evac.yard.pk)
    assert StatusReport.objects.get(alarm=evac.alarm, membership=evac.teacher).note == "by the gate"
    assert evac.teacher.pk not in _missing_ids(evac)
    assert 'data-status="safe"' in client.get(f"/alarms/{evac.alarm.pk}/").content.decode()


def test_a_wrong_status_is_refused_with_a_message(evac):
    client = _client(evac, Role.EMPLOYEE)
    page = client.post(f"/alarms/{evac.alarm.pk}/status/", {"status": "fine"}, follow=True).content.decode()
    assert "Report “safe”, “need_help” or “not_on_site”." in page
    assert not StatusReport.objects.filter(alarm=evac.alarm).exists()


def test_a_teacher_marks_her_whole_class_safe_with_one_tap(evac):
    client = _client(evac, Role.EMPLOYEE)
    page = client.get(f"/alarms/{evac.alarm.pk}/groups/").content.decode()
    assert "Class 5a" in page and all(f"Pupil {n}zq" in page for n in range(3))
    client.post(f"/alarms/{evac.alarm.pk}/groups/", {"group": evac.klass.pk, "status": "safe"})
    marked = set(PersonState.objects.filter(alarm=evac.alarm, status="safe").values_list("membership_id", flat=True))
    assert marked == {p.pk for p in evac.pupils}
    assert set(StatusReport.objects.filter(alarm=evac.alarm).values_list("reported_by_id", flat=True)) == {
        evac.teacher.pk}


def test_a_teacher_marks_one_pupil_who_needs_help(evac):
    client = _client(evac, Role.EMPLOYEE)
    client.post(f"/alarms/{evac.alarm.pk}/groups/", {"group": evac.klass.pk, "person": evac.pupils[1].pk,
                                                     "status": "need_help"})
    assert PersonState.objects.get(alarm=evac.alarm, membership=evac.pupils[1]).status == "need_help"
    assert PersonState.objects.filter(alarm=evac.alarm).count() == 1


def test_someone_who_leads_no_group_has_no_group_page(evac):
    assert _client(evac, Role.GUEST).get(f"/alarms/{evac.alarm.pk}/groups/").status_code == 404


def test_a_helper_reports_her_zones_and_the_crisis_team_sees_all(evac):
    ZoneDuty.objects.create(site=evac.site, zone=evac.west, membership=evac.teacher)
    client = _client(evac, Role.EMPLOYEE)
    page = client.get(f"/alarms/{evac.alarm.pk}/zones/").content.decode()
    assert "West wing" in page and "East wing" not in page
    client.post(f"/alarms/{evac.alarm.pk}/zones/{evac.west.pk}/", {"state": "remaining", "remaining": "2",
                                                                   "where": "Room 12, locked"})
    report = ZoneReport.objects.get(alarm=evac.alarm, zone=evac.west)
    assert (report.state, report.remaining, report.where) == ("remaining", 2, "Room 12, locked")
    assert "2 persons remaining" in client.get(f"/alarms/{evac.alarm.pk}/zones/").content.decode()
    # Not her zone: as if it did not exist.
    assert client.post(f"/alarms/{evac.alarm.pk}/zones/{evac.east.pk}/", {"state": "cleared"}).status_code == 404
    crisis_team = _client(evac, Role.MEMBER).get(f"/alarms/{evac.alarm.pk}/zones/").content.decode()
    assert "West wing" in crisis_team and "East wing" in crisis_team


def test_persons_remaining_without_a_number_is_refused(evac):
    client = _client(evac, Role.LEAD)
    page = client.post(f"/alarms/{evac.alarm.pk}/zones/{evac.west.pk}/", {"state": "remaining"},
                       follow=True).content.decode()
    assert "Say how many persons remain." in page
    assert not ZoneReport.objects.exists()


def test_someone_without_a_zone_has_no_zone_page(evac):
    assert _client(evac, Role.GUEST).get(f"/alarms/{evac.alarm.pk}/zones/").status_code == 404


def test_the_lead_rolls_call_at_the_assembly_point(evac):
    client = _client(evac, Role.LEAD)
    assert client.get(f"/alarms/{evac.alarm.pk}/assembly/").url.endswith(f"/assembly/{evac.yard.pk}/")
    page = client.get(f"/alarms/{evac.alarm.pk}/assembly/{evac.yard.pk}/").content.decode()
    assert all(f"Pupil {n}zq" in page for n in range(3)) and "Class 5a" in page
    client.post(f"/alarms/{evac.alarm.pk}/assembly/{evac.yard.pk}/", {"person": [evac.pupils[0].pk,
                                                                                evac.pupils[2].pk]})
    here = PersonState.objects.filter(alarm=evac.alarm, assembly_point=evac.yard, status="safe")
    assert set(here.values_list("membership_id", flat=True)) == {evac.pupils[0].pk, evac.pupils[2].pk}
    assert _missing_ids(evac) == {evac.pupils[1].pk, evac.teacher.pk, evac.guest.pk}


def test_the_audit_trail_says_who_marked_whom_and_when(evac):
    lead = _client(evac, Role.LEAD)
    lead.post(f"/alarms/{evac.alarm.pk}/assembly/{evac.yard.pk}/", {"person": [evac.pupils[0].pk,
                                                                              evac.pupils[2].pk]})
    _client(evac, Role.EMPLOYEE).post(f"/alarms/{evac.alarm.pk}/groups/", {
        "group": evac.klass.pk, "person": evac.pupils[1].pk, "status": "need_help"})
    _client(evac, Role.EMPLOYEE).post(f"/alarms/{evac.alarm.pk}/status/", {"status": "safe"})  # her own
    entries = AuditEntry.objects.filter(action="evacuation.marked", object_id=str(evac.alarm.pk)).order_by("pk")
    assert [(e.actor_id, e.site_id, e.changes) for e in entries] == [
        (evac.world.a.people[Role.LEAD].user_id, evac.site.pk,
         {"safe": [None, sorted([evac.pupils[0].pk, evac.pupils[2].pk])]}),
        (evac.teacher.user_id, evac.site.pk, {"need_help": [None, [evac.pupils[1].pk]]}),
    ]
    assert entries[0].at == StatusReport.objects.get(membership=evac.pupils[0]).received_at
    admin = Client()
    admin.force_login(evac.world.a.people[Role.ADMIN].user)
    trail = admin.get("/audit/").content.decode()
    assert "Status reported for others" in trail and "Marked as needing help" in trail and "Pupil 1zq" in trail


def test_a_walk_in_is_added_present_and_counted(evac):
    client = _client(evac, Role.LEAD)
    before = rollcall.counts(evac.alarm)
    client.post(f"/alarms/{evac.alarm.pk}/assembly/{evac.yard.pk}/", {"walk_in_name": "Wanda Walk-in",
                                                                     "walk_in_company": "Bakery"})
    visitor = Membership.objects.get(site=evac.site, kind="visitor")
    assert (visitor.full_name, visitor.company, visitor.user_id) == ("Wanda Walk-in", "Bakery", None)
    assert PersonState.objects.get(alarm=evac.alarm, membership=visitor).assembly_point == evac.yard
    after = rollcall.counts(evac.alarm)
    assert after["on_site"] == before["on_site"] + 1 and after["accounted"] == before["accounted"] + 1
    assert "Wanda Walk-in" in client.get(f"/alarms/{evac.alarm.pk}/assembly/{evac.yard.pk}/").content.decode()


def test_an_empty_walk_in_name_is_refused(evac):
    client = _client(evac, Role.LEAD)
    page = client.post(f"/alarms/{evac.alarm.pk}/assembly/{evac.yard.pk}/", {"walk_in_name": "  "},
                       follow=True).content.decode()
    assert "Enter the name." in page
    assert not Membership.objects.filter(kind="visitor").exists()


def test_employees_see_no_roll_call_no_missing_list_no_handover(evac):
    client = _client(evac, Role.EMPLOYEE)
    for path in ("assembly/", f"assembly/{evac.yard.pk}/", "missing/", "handover/", "handover.pdf"):
        assert client.get(f"/alarms/{evac.alarm.pk}/{path}").status_code == 403, path


def test_the_missing_list_shrinks_to_who_has_no_status(evac):
    client = _client(evac, Role.LEAD)
    page = client.get(f"/alarms/{evac.alarm.pk}/missing/").content.decode()
    assert all(f"Pupil {n}zq" in page for n in range(3)) and "NameAaguest" in page
    lead = evac.client(Role.LEAD)
    evac.post(lead, "statuses", {"reports": [{"membership_id": p.pk, "status": "safe"} for p in evac.pupils]})
    page = client.get(f"/alarms/{evac.alarm.pk}/missing/").content.decode()
    assert "Pupil 0zq" not in page and "NameAaguest" in page and evac.teacher.full_name in page
    assert re.search(r'id="missing-count">2<', page)


def test_the_handover_lists_missing_persons_open_zones_and_those_who_need_help(evac):
    lead = evac.client(Role.LEAD)
    evac.post(lead, "statuses", {"reports": [
        {"membership_id": evac.pupils[0].pk, "status": "need_help", "note": "twisted ankle"},
        {"membership_id": evac.pupils[1].pk, "status": "safe"},
        {"membership_id": evac.pupils[2].pk, "status": "safe"}]})
    evac.post(lead, f"zones/{evac.east.pk}", {"state": "cleared"})
    evac.post(lead, f"zones/{evac.west.pk}", {"state": "blocked", "where": "Stairs B smoke"})
    client = _client(evac, Role.LEAD)
    page = client.get(f"/alarms/{evac.alarm.pk}/handover/").content.decode()
    missing = page[page.index('id="handover-missing"'):page.index('id="handover-zones"')]
    assert evac.teacher.full_name in missing and "NameAaguest" in missing and "Pupil" not in missing
    zones = page[page.index('id="handover-zones"'):page.index('id="handover-help"')]
    assert "West wing" in zones and "Stairs B smoke" in zones and "East wing" not in zones
    assert "Pupil 0zq" in page and "twisted ankle" in page
    response = client.get(f"/alarms/{evac.alarm.pk}/handover.pdf")
    assert response["Content-Type"] == "application/pdf" and response.content.startswith(b"%PDF-1.4")
    text = pdf_text(response.content)
    for shown in (evac.teacher.full_name, "NameAaguest", "West wing", "Stairs B smoke", "Pupil 0zq", "twisted ankle"):
        assert shown in text, shown
    assert text.count("East") == 1  # the guest's last known zone; as a zone it is cleared


def test_the_handover_pdf_is_in_the_installations_language(evac, settings):
    settings.LANGUAGE_CODE = "de"
    text = pdf_text(_client(evac, Role.LEAD).get(f"/alarms/{evac.alarm.pk}/handover.pdf").content)
    assert "Übergabe an die Feuerwehr" in text and "Vermisste Personen" in text


def test_after_the_alarm_no_list_is_kept(evac):
    end_alarm(alarm=evac.alarm, user=None, reason="fire put out")
    client = _client(evac, Role.LEAD)
    for path in (f"assembly/{evac.yard.pk}/", "missing/", "handover/"):
        page = client.get(f"/alarms/{evac.alarm.pk}/{path}").content.decode()
        assert "Pupil" not in page and "NameAaguest" not in page, path
    assert "Pupil" not in pdf_text(client.get(f"/alarms/{evac.alarm.pk}/handover.pdf").content)


def test_a_long_list_is_paginated_with_its_header_on_every_page_and_keeps_german_letters():
    doc = pdf.Document(title="Liste", footer="Übergabe")
    doc.heading("Vermisste Personen")
    doc.table(["Name", "Zone"], [[f"Jürgen Größe {n}", "Süd " * 30] for n in range(120)], [0.5, 0.5])
    data = doc.render()
    pages = data.count(b"/Type /Page ")
    assert pages == len(doc.pages) > 2
    text = pdf_text(data)
    assert text.count("(Name) Tj") == pages  # the header repeats on each page
    assert all(f"Jürgen Größe {n})" in text for n in range(120))


def test_wrapping_keeps_every_word_and_stays_within_the_width():
    words = ["Notausgang", "Treppenhaus", "Nord", "x" * 60]
    lines = pdf.wrap(" ".join(words), 10, 100)
    limit = int(100 / (10 * 0.52))
    assert all(len(line) <= limit for line in lines)
    assert "".join(lines).replace(" ", "") == "".join(words)


def test_the_cockpit_shows_the_evacuation_numbers_zones_and_points_without_names(evac):
    lead = evac.client(Role.LEAD)
    evac.post(lead, "statuses", {"reports": [
        {"membership_id": evac.pupils[0].pk, "status": "safe", "assembly_point_id": evac.yard.pk},
        {"membership_id": evac.pupils[1].pk, "status": "need_help"}]})
    evac.post(lead, f"zones/{evac.east.pk}", {"state": "cleared"})
    page = _client(evac, Role.MEMBER).get(f"/cockpit/{evac.alarm.pk}/").content.decode()
    headline = re.search(r'data-count="evac.no_status">(\d+)<', page)
    assert headline and headline.group(1) == "3"  # pupil 2, the teacher, the guest
    assert re.search(r'data-count="evac.need_help">1<', page) and re.search(r'data-count="evac.percent">40<', page)
    assert re.search(rf'data-count="evac.point.{evac.yard.pk}">1<', page)
    east = page[page.index(f'data-zone="{evac.east.pk}"'):]
    assert "Cleared" in east[:400]
    assert "Zones (1 not cleared)" in page
    assert "Pupil" not in page  # numbers only: the names are on the roll-call pages


def test_accounted_for_over_time_counts_each_person_once(evac):
    lead = evac.client(Role.LEAD)
    for status in ("need_help", "safe"):
        evac.post(lead, "status", {"membership_id": evac.pupils[0].pk, "status": status})
    series = rollcall.accounted_over_time(evac.alarm, points=4)
    assert [n for _t, n in series][-1] == 1 and len(series) == 5
    assert [t for t, _n in series] == sorted(t for t, _n in series)


def test_the_answer_link_of_an_evacuation_asks_for_the_status_and_works_once(evac):
    recipient = AlarmRecipient.objects.get(alarm=evac.alarm, membership=evac.teacher)
    url = f"/answer/{links.make_token(recipient)}"
    client = Client()
    page = client.get(url).content.decode()
    assert 'id="status-safe"' in page and 'id="answer-accept"' in page  # the crisis team still accepts
    assert not PersonState.objects.exists()  # opening the link changes nothing
    response = client.post(url, {"status": "need_help"})
    assert response.status_code == 200 and "Needs help" in response.content.decode()
    state = PersonState.objects.get(alarm=evac.alarm, membership=evac.teacher)
    assert (state.status, state.report.via) == ("need_help", "link")
    assert client.post(url, {"status": "safe"}).status_code == 410
    assert PersonState.objects.get(alarm=evac.alarm, membership=evac.teacher).status == "need_help"


def test_the_cockpit_colours_each_zone_on_its_floors_plan(evac):
    floor = evac.west.floor
    floor.plan, floor.plan_type, floor.plan_width, floor.plan_height = b"\x89PNG plan", "image/png", 100, 50
    floor.save()
    for zone, x in ((evac.west, 0.0), (evac.east, 0.5)):
        zone.area_x, zone.area_y, zone.area_w, zone.area_h = x, 0.0, 0.5, 1.0
        zone.save()
    evac.post(evac.client(Role.LEAD), f"zones/{evac.east.pk}", {"state": "cleared"})
    evac.post(evac.client(Role.LEAD), f"zones/{evac.west.pk}", {"state": "remaining", "remaining": 3})
    page = _client(evac, Role.MEMBER).get(f"/cockpit/{evac.alarm.pk}/").content.decode()
    assert f'<g class="zone-area zone-cleared" data-zone="{evac.east.pk}"><rect x="50.00%"' in page
    west = page[page.index(f'<g class="zone-area zone-remaining" data-zone="{evac.west.pk}">'):]
    assert ">3</text>" in west[:300]
    assert f"/structure/floors/{floor.pk}/plan?v=" in page
