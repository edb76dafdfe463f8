"""One schema per live event type (rallypoint/realtime/schemas.py): each type is raised here through the real
actions and what a client would receive is checked against its schema; the pages listen only for types
that exist. (Zulip's event schemas and test_events.py are the model.)"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from rallypoint.alarms import actions
from rallypoint.alarms.models import Scenario
from rallypoint.evacuation import status
from rallypoint.evacuation.models import Building, Floor, Presence, Zone, ZoneDuty
from rallypoint.realtime import events, hub, schemas
from rallypoint.tenants.roles import Perm, Role
from tests.alarm_fixtures import fire_scenario

STATIC = Path(__file__).resolve().parent.parent / "rallypoint"
#: Messages of the stream's protocol and of the page's own script, which are no stream events.
PROTOCOL = {"ready", "heartbeat", "pong", "ack", "refused", "stream.open", "stream.closed"}


@pytest.fixture
def raised(world, django_capture_on_commit_callbacks):
    """Every frame published while the block runs, as the hub hands it to the stream endpoints."""
    frames: list[dict] = []

    class Capture:
        def __enter__(self):
            self.unsubscribe = hub.subscribe(frames.append)
            self.commits = django_capture_on_commit_callbacks(execute=True)
            self.commits.__enter__()
            return frames

        def __exit__(self, *exc):
            self.commits.__exit__(*exc)
            self.unsubscribe()

    return Capture


def as_client_sees(frame: dict) -> dict:
    """What the endpoints send: the frame without the recipients they were told."""
    return {k: v for k, v in frame.items() if k != events.MEMBERS}


def check(frame: dict) -> None:
    seen = as_client_sees(frame)
    assert set(seen) >= {"seq", "site", "type", "audience", "alarm", "at", "data"}
    schemas.check(seen["type"], seen["audience"], seen["data"])


def evacuation(world):
    site = world.a.site
    floor = Floor.objects.create(site=site, building=Building.objects.create(site=site, name="Main"), name="G")
    zone = Zone.objects.create(site=site, floor=floor, name="West")
    ZoneDuty.objects.create(site=site, zone=zone, membership=world.a.people[Role.MEMBER])
    Presence.objects.create(site=site, membership=world.a.people[Role.EMPLOYEE], zone=zone, source="app",
                            expires_at=timezone.now() + timedelta(hours=1))
    scenario = fire_scenario(site, evacuates=Scenario.Evacuates.ALL)
    alarm, _ = actions.trigger_alarm(site=site, scenario=scenario, level=scenario.levels.last())
    return alarm, zone


@schemas.register("test.people", "people")
class _ForPeople(schemas.Payload):
    n: int


# One test per event type: TRIGGERS names them all, and a test below fails for a type without one.

def _alarm_events(world, raised):
    scenario = fire_scenario(world.a.site)
    lead = world.persona(Role.LEAD)
    with raised() as frames:
        alarm, _ = actions.trigger_alarm(site=world.a.site, scenario=scenario, user=lead)
        actions.update_alarm(user=lead, alarm=alarm, note="Smoke on the 2nd floor")
        actions.raise_level(user=lead, alarm=alarm, level=scenario.levels.last())
        actions.answer_alarm(alarm=alarm, membership=world.a.people[Role.EMPLOYEE], answer="accepted", via="app")
        actions.publish_counts(alarm)
        actions.end_alarm(user=lead, alarm=alarm, reason="false alarm")
    return frames


def _evacuation_events(world, raised):
    alarm, zone = evacuation(world)
    member = world.a.people[Role.MEMBER]
    with raised() as frames:
        status.report_status(alarm=alarm, person=world.a.people[Role.EMPLOYEE], status="safe",
                             reporter=status.Reporter(world.a.people[Role.EMPLOYEE]))
        status.report_zone(alarm=alarm, zone=zone, state="cleared", reporter=status.Reporter(member))
        status.publish_counts(alarm.pk)
    return frames


TRIGGERS = {"alarm.raised": _alarm_events, "alarm.changed": _alarm_events, "alarm.ended": _alarm_events,
            "alarm.counts": _alarm_events, "evacuation.statuses": _evacuation_events,
            "evacuation.zone": _evacuation_events, "evacuation.counts": _evacuation_events}


def test_every_event_type_has_a_test_that_raises_it():
    product_types = {name for name in schemas.types() if not name.startswith("test.")}
    assert product_types == set(TRIGGERS)


@pytest.mark.parametrize("kind", sorted(TRIGGERS))
def test_an_event_type_raised_by_its_action_matches_its_schema(world, raised, kind):
    frames = [f for f in TRIGGERS[kind](world, raised) if f.get("type") == kind]
    assert frames, f"the action published no {kind}"
    for frame in frames:
        check(frame)


def test_an_event_for_named_people_reaches_only_them_and_never_shows_their_ids(world, raised):
    people = [world.a.people[Role.EMPLOYEE].pk]
    with raised() as frames, transaction.atomic():
        events.append(world.a.site.pk, "test.people", {"n": 1}, audience="people", members=people)
    [frame] = [f for f in frames if f["type"] == "test.people"]
    assert frame[events.MEMBERS] == people and events.MEMBERS not in as_client_sees(frame)


def test_append_refuses_an_unknown_type_a_wrong_audience_and_a_bad_payload(world):
    site = world.a.site.pk
    with transaction.atomic():
        for type_, payload, audience, perm in [("alarm.bogus", {}, "alarm", ""),
                                               ("alarm.counts", {"alarm_id": 1, "counts": {}}, "site", ""),
                                               ("alarm.counts", {"alarm_id": "one", "counts": {}}, "cockpit", ""),
                                               ("evacuation.statuses", {"alarm_id": 1, "changes": []}, "perm", "")]:
            with pytest.raises(schemas.SchemaError):
                events.append(site, type_, payload, audience=audience, perm=perm)
    with transaction.atomic():
        events.append(site, "evacuation.statuses", {"alarm_id": 1, "changes": []}, audience="perm",
                      perm=Perm.ROLL_CALL)


def test_the_pages_listen_only_for_event_types_that_exist():
    listened = set()
    for script in STATIC.rglob("static/**/*.js"):
        if "swagger" in script.name or "vendor" in script.parts:
            continue
        text = script.read_text()
        listened |= set(re.findall(r'"rp:([a-z]+\.[a-z_.]+|[a-z]+)"', text))
        listened |= set(re.findall(r'\bon\("([a-z]+\.[a-z_]+)"', text))
    assert listened, "no listeners found: the pattern is broken"
    unknown = listened - set(schemas.types()) - PROTOCOL
    assert not unknown, f"the pages listen for event types that do not exist: {sorted(unknown)}"
