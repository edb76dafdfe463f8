"""During an evacuation: status reports (own, for one's class, by the roll call), zone reports, counts and
the missing list, through the API and the actions."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from rallypoint.accounts import apptokens
from rallypoint.alarms.actions import end_alarm, trigger_alarm
from rallypoint.alarms.models import Scenario
from rallypoint.evacuation import presence, rollcall, status
from rallypoint.evacuation.models import (
    AssemblyPoint,
    Building,
    Floor,
    PersonState,
    Presence,
    StatusReport,
    Zone,
    ZoneDuty,
    ZoneReport,
)
from rallypoint.people.models import Group, Membership
from rallypoint.realtime import hub
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario


class Evacuation:
    def __init__(self, world):
        site = world.a.site
        self.world, self.site = world, site
        building = Building.objects.create(site=site, name="Main building")
        floor = Floor.objects.create(site=site, building=building, name="Ground floor")
        self.west = Zone.objects.create(site=site, floor=floor, name="West wing", code="MG-01")
        self.east = Zone.objects.create(site=site, floor=floor, name="East wing", code="MG-02")
        self.yard = AssemblyPoint.objects.create(site=site, name="School yard")
        self.yard.zones.add(self.west, self.east)
        self.pupils = [Membership.objects.create(site=site, kind="listed", full_name=f"Pupil {n}zq") for n in range(3)]
        self.teacher = world.a.people[Role.EMPLOYEE]
        self.klass = Group.objects.create(site=site, name="Class 5a")
        self.klass.members.add(*self.pupils)
        self.klass.leaders.add(self.teacher)
        until = timezone.now() + timedelta(hours=8)
        for person in [*self.pupils, self.teacher]:
            Presence.objects.create(site=site, membership=person, zone=self.west, source="app", expires_at=until)
        self.guest = world.a.people[Role.GUEST]
        Presence.objects.create(site=site, membership=self.guest, zone=self.east, source="qr", expires_at=until)
        scenario = fire_scenario(site, evacuates=Scenario.Evacuates.ALL)
        self.alarm, _ = trigger_alarm(site=site, scenario=scenario, level=scenario.levels.last())

    def client(self, role: str) -> Client:
        membership = self.world.a.people[role]
        _row, token = apptokens.issue(user=membership.user, site=self.site, name="phone")
        client = Client()
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        return client

    def post(self, client: Client, path: str, body: dict):
        return client.post(f"/api/v1/alarms/{self.alarm.pk}/{path}", json.dumps(body, default=str),
                           content_type="application/json")


@pytest.fixture
def evac(world):
    return Evacuation(world)


def test_a_person_reports_themselves_safe_and_is_no_longer_missing(evac):
    missing = {row.membership_id for row in rollcall.missing(evac.alarm)}
    assert missing == {*(p.pk for p in evac.pupils), evac.teacher.pk, evac.guest.pk}
    response = evac.post(evac.client(Role.EMPLOYEE), "status", {"status": "safe", "assembly_point_id": evac.yard.pk})
    assert response.status_code == 200, response.content
    state = PersonState.objects.get(alarm=evac.alarm, membership=evac.teacher)
    assert (state.status, state.assembly_point) == ("safe", evac.yard)
    assert evac.teacher.pk not in {row.membership_id for row in rollcall.missing(evac.alarm)}
    counts = rollcall.counts(evac.alarm)
    assert (counts["on_site"], counts["accounted"], counts["no_status"], counts["safe"]) == (5, 1, 4, 1)
    assert counts["by_assembly_point"] == {str(evac.yard.pk): 1}


def test_a_teacher_marks_her_whole_class_at_once_but_nobody_elses(evac):
    teacher = evac.client(Role.EMPLOYEE)
    reports = [{"status": "safe", "membership_id": p.pk, "assembly_point_id": evac.yard.pk} for p in evac.pupils]
    reports.append({"status": "safe", "membership_id": evac.guest.pk})  # not in her class
    response = evac.post(teacher, "statuses", {"reports": reports})
    assert response.status_code == 200
    assert [item["ok"] for item in response.json()] == [True, True, True, False]
    assert set(PersonState.objects.filter(alarm=evac.alarm).values_list("membership_id", flat=True)) == {
        p.pk for p in evac.pupils}
    missing = rollcall.missing(evac.alarm)
    assert [(row.membership_id, row.zone, row.place.source) for row in missing] == [
        (evac.guest.pk, "Ground floor · East wing", "qr"),
        (evac.teacher.pk, "Ground floor · West wing", "app")]  # sorted by zone


def test_the_crisis_team_reports_for_anyone_and_the_mark_made_last_wins(evac):
    lead = evac.client(Role.LEAD)
    pupil = evac.pupils[0]
    now = timezone.now()
    late = {"status": "need_help", "membership_id": pupil.pk, "at": now.isoformat(), "client_key": "lead-1"}
    early = {"status": "safe", "membership_id": pupil.pk, "at": (now - timedelta(seconds=40)).isoformat(),
             "client_key": "offline-7"}  # marked earlier on a phone without network, synced afterwards
    assert evac.post(lead, "statuses", {"reports": [late]}).status_code == 200
    assert evac.post(lead, "statuses", {"reports": [early]}).status_code == 200
    assert evac.post(lead, "statuses", {"reports": [early]}).json()[0]["ok"]  # sent twice: counted once
    assert PersonState.objects.get(alarm=evac.alarm, membership=pupil).status == "need_help"
    assert StatusReport.objects.filter(alarm=evac.alarm, membership=pupil).count() == 2  # both on record


def test_bad_reports_are_refused_with_a_message_and_nothing_written(evac):
    employee = evac.client(Role.EMPLOYEE)
    for body in ({"status": "fine"}, {"status": "safe", "at": "2001-01-01T00:00:00Z"},
                 {"status": "safe", "assembly_point_id": 999999}, {"status": "safe", "client_key": "a b"}):
        response = evac.post(employee, "status", body)
        assert response.status_code in (400, 422), (body, response.status_code)
    assert not StatusReport.objects.exists()


def test_a_report_for_an_alarm_that_ended_a_moment_ago_is_refused_although_the_alarm_was_remembered(evac):
    """The API reads the alarm of a burst of reports from memory (up to two seconds old); the writer checks
    in its transaction that the alarm is still active."""
    employee = evac.client(Role.EMPLOYEE)
    assert evac.post(employee, "status", {"status": "need_help"}).status_code == 200  # the alarm is remembered now
    end_alarm(user=evac.world.a.people[Role.LEAD].user, alarm=evac.alarm, reason="All clear")
    response = evac.post(employee, "status", {"status": "safe"})
    assert response.status_code == 400 and "ended" in response.content.decode()
    assert PersonState.objects.get(alarm=evac.alarm, membership=evac.teacher).status == "need_help"
    assert StatusReport.objects.filter(alarm=evac.alarm).count() == 1


def test_no_status_is_asked_for_an_alarm_that_is_no_evacuation(world):
    scenario = fire_scenario(world.a.site)  # evacuates nobody
    alarm, _ = trigger_alarm(site=world.a.site, scenario=scenario)
    membership = world.a.people[Role.EMPLOYEE]
    with pytest.raises(Exception, match="no evacuation"):
        status.report_status(alarm=alarm, person=membership, status="safe", reporter=status.Reporter(membership))


def test_helpers_report_their_zone_and_others_may_not(evac):
    ZoneDuty.objects.create(site=evac.site, zone=evac.west, membership=evac.world.a.people[Role.MEMBER])
    member, employee = evac.client(Role.MEMBER), evac.client(Role.EMPLOYEE)
    refused = evac.post(employee, f"zones/{evac.west.pk}", {"state": "cleared"})
    assert refused.status_code == 403
    assert evac.post(member, f"zones/{evac.west.pk}", {"state": "remaining", "remaining": 2,
                                                      "where": "Room 12, locked"}).status_code == 200
    assert evac.post(member, f"zones/{evac.west.pk}", {"state": "remaining"}).status_code == 400  # how many?
    assert rollcall.zone_states(evac.alarm) == {evac.west.pk: ("remaining", 2)}
    assert ZoneReport.objects.get().where == "Room 12, locked"
    counts = rollcall.counts(evac.alarm)["by_zone"][str(evac.west.pk)]
    assert counts == {"on_site": 4, "no_status": 4, "state": "remaining", "remaining": 2}


def test_the_missing_list_and_counts_are_for_the_crisis_team_only(evac):
    assert evac.client(Role.EMPLOYEE).get(f"/api/v1/alarms/{evac.alarm.pk}/missing").status_code == 403
    assert evac.client(Role.EMPLOYEE).get(f"/api/v1/alarms/{evac.alarm.pk}/evacuation").status_code == 403
    rows = evac.client(Role.LEAD).get(f"/api/v1/alarms/{evac.alarm.pk}/missing").json()
    assert {r["name"] for r in rows} == {"Pupil 0zq", "Pupil 1zq", "Pupil 2zq", evac.teacher.full_name,
                                         evac.guest.full_name}
    assert evac.client(Role.LEAD).get(f"/api/v1/alarms/{evac.alarm.pk}/evacuation").json()["on_site"] == 5


def test_the_roll_call_pages_hear_of_new_statuses_by_ids_and_the_cockpit_gets_counts(
        evac, django_capture_on_commit_callbacks):
    frames = []
    unsubscribe = hub.subscribe(frames.append)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            evac.post(evac.client(Role.EMPLOYEE), "status", {"status": "safe"})
    finally:
        unsubscribe()
    statuses = [f for f in frames if f["type"] == "evacuation.statuses"]
    assert statuses and statuses[0]["audience"] == "perm" and statuses[0]["perm"] == "evacuation.roll_call"
    assert statuses[0]["data"]["changes"][0]["membership"] == evac.teacher.pk
    assert "zq" not in json.dumps(statuses)  # ids, no names
    counts = [f for f in frames if f["type"] == "evacuation.counts"]
    assert counts and counts[-1]["audience"] == "cockpit" and counts[-1]["data"]["counts"]["safe"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_crowd_reporting_at_the_same_moment_is_all_recorded(world):
    """Reports from many threads at once go through the group writer: every one is written."""
    evac = Evacuation(world)
    people = [Membership.objects.create(site=evac.site, kind="listed", full_name=f"Crowd {n}") for n in range(60)]
    lead = world.a.people[Role.LEAD]
    reporter = status.Reporter(lead, frozenset({"evacuation.roll_call"}))
    errors = []

    def report(person):
        try:
            status.report_status(alarm=evac.alarm, person=person, status="safe", reporter=reporter)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=report, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert PersonState.objects.filter(alarm=evac.alarm).count() == 60


@pytest.mark.django_db(transaction=True)
def test_counts_changed_twice_at_once_publishes_now_and_once_more_after_the_interval(world):
    """A burst of reports is counted at once and again when the interval is over: the last report of a burst
    reaches the cockpit without waiting for the worker's sweep."""
    evac = Evacuation(world)
    frames = []
    unsubscribe = hub.subscribe(frames.append)
    try:
        status.counts_changed(evac.alarm.pk)
        PersonState.objects.all().delete()
        status.report_status(alarm=evac.alarm, person=evac.teacher, status="safe",
                             reporter=status.Reporter(evac.teacher))
        status.counts_changed(evac.alarm.pk)  # within the interval: later, once
        status.counts_changed(evac.alarm.pk)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len([f for f in frames if f["type"] == "evacuation.counts"]) < 2:
            time.sleep(0.05)
    finally:
        unsubscribe()
    counts = [f["data"]["counts"] for f in frames if f["type"] == "evacuation.counts"]
    assert [c["safe"] for c in counts][:1] == [0] and counts[-1]["safe"] == 1


def test_counts_follow_every_arrival_and_departure_at_once(evac):
    """The places of the people on site are kept between reads, and read again on any change."""
    before = rollcall.counts(evac.alarm)["on_site"]
    newcomer = Membership.objects.create(site=evac.site, kind="listed", full_name="Newcomer")
    presence.arrive(membership=newcomer, source="app", zone=evac.east)
    assert rollcall.counts(evac.alarm)["on_site"] == before + 1
    presence.leave(membership=evac.guest)
    assert rollcall.counts(evac.alarm)["on_site"] == before
    assert newcomer.pk in {row.membership_id for row in rollcall.missing(evac.alarm)}
