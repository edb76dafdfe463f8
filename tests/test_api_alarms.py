"""Alarms through the JSON API: with the site's API key (another system) or as a person.

Covers the idempotency key (a retried request never raises a second alarm, also when two
arrive at once), the key's scope, and that a key of one site never reaches another's alarms.
"""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection
from django.test import Client

from rallypoint.accounts import apptokens
from rallypoint.alarms import actions as alarm_actions
from rallypoint.alarms.models import Alarm, AlarmEvent
from rallypoint.audit.models import AuditEntry
from rallypoint.integrations import actions as key_actions
from rallypoint.integrations.models import ApiKey
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario


@pytest.fixture
def fire(world):
    return fire_scenario(world.a.site)


@pytest.fixture
def gas(world):
    return fire_scenario(world.a.site, name="Gas")


@pytest.fixture
def panel(world, fire):
    """``(key, raw)``: site a's key that may trigger "Fire" only."""
    return key_actions.create_api_key(actor=None, site=world.a.site, name="Panel", scenarios=[fire])


def call(client, method: str, path: str, body=None, *, key: str | None = None, **headers):
    if key is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    if method == "get":
        return client.get(f"/api/v1/{path}", body or {}, **headers)
    return client.post(f"/api/v1/{path}", json.dumps(body or {}), content_type="application/json", **headers)


def trigger(client, scenario, key=None, idem=None, **body):
    headers = {"HTTP_IDEMPOTENCY_KEY": idem} if idem is not None else {}
    return call(client, "post", "alarms", {"scenario_id": scenario.pk, **body}, key=key, **headers)


def kinds(alarm) -> list[str]:
    return list(AlarmEvent.objects.filter(alarm=alarm).values_list("kind", flat=True))


# Triggering with a key --------------------------------------------------------------------------

def test_a_key_triggers_a_scenario_in_its_scope(client, world, fire, panel):
    key, raw = panel
    response = trigger(client, fire, raw, location="Hall 3", note="Detector 17",
                       answers=[{"question": "Is anyone hurt?", "answer": "No"}])
    assert response.status_code == 201, response.content
    data = response.json()
    alarm = Alarm.objects.get(pk=data["id"])
    assert data["scenario"] == "Fire" and data["level"] == "Pre-alarm" and data["location"] == "Hall 3"
    assert data["triggered_by"] is None and data["answers"] == [{"question": "Is anyone hurt?", "answer": "No"}]
    assert alarm.api_key == key and alarm.source == Alarm.Source.API and alarm.triggered_by is None
    assert kinds(alarm) == ["triggered"] and alarm.recipients.count() > 0
    key.refresh_from_db()
    assert key.use_count == 1 and key.last_used_at is not None
    used = AuditEntry.objects.get(site=world.a.site, action="api_key.used")
    assert used.changes["key"] == [None, key.prefix] and used.changes["alarm"] == [None, alarm.pk]
    assert raw.split("_", 2)[2] not in str(used.changes)


def test_the_key_also_works_in_the_x_api_key_header(client, fire, panel):
    response = call(client, "post", "alarms", {"scenario_id": fire.pk}, HTTP_X_API_KEY=panel[1])
    assert response.status_code == 201


def test_a_scenario_outside_the_scope_is_refused(client, fire, gas, panel):
    response = trigger(client, gas, panel[1])
    assert response.status_code == 403 and "may not trigger" in response.json()["detail"]
    assert not Alarm.objects.exists()


def test_revoked_and_rotated_away_keys_are_unauthorised(client, world, fire, panel):
    key, old = panel
    key, new = key_actions.rotate_api_key(actor=None, key=key)
    assert trigger(client, fire, old).status_code == 401
    assert trigger(client, fire, new).status_code == 201
    key_actions.revoke_api_key(actor=None, key=key)
    assert trigger(client, fire, new).status_code == 401
    assert call(client, "get", "scenarios", key=new).status_code == 401
    assert Alarm.objects.count() == 1


def test_a_key_lists_only_its_scenarios_with_levels_and_questions(client, fire, gas, panel):
    scenarios = call(client, "get", "scenarios", key=panel[1]).json()
    assert [s["name"] for s in scenarios] == ["Fire"]
    assert [lv["name"] for lv in scenarios[0]["levels"]] == ["Pre-alarm", "Evacuate"]
    assert scenarios[0]["questions"][0] == {"id": fire.questions.get().pk, "text": "Is anyone hurt?",
                                            "answers": ["Yes", "No", "Unknown"]}


def test_a_person_lists_what_their_role_may_trigger(world, signed_in, fire, gas):
    gas.trigger_roles = [Role.LEAD]
    gas.save()
    names = [s["name"] for s in call(signed_in(Role.EMPLOYEE), "get", "scenarios").json()]
    assert names == ["Fire"]


# Idempotency ------------------------------------------------------------------------------------

def test_the_same_idempotency_key_twice_raises_one_alarm(client, fire, panel):
    first = trigger(client, fire, panel[1], idem="panel-event-4711")
    again = trigger(client, fire, panel[1], idem="panel-event-4711")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert Alarm.objects.count() == 1
    assert trigger(client, fire, panel[1], idem="panel-event-4712").status_code == 201
    assert Alarm.objects.count() == 2


def test_the_same_idempotency_key_for_another_scenario_is_a_conflict(client, world, fire, gas):
    _key, raw = key_actions.create_api_key(actor=None, site=world.a.site, name="Both", scenarios=[fire, gas])
    assert trigger(client, fire, raw, idem="k1").status_code == 201
    conflict = trigger(client, gas, raw, idem="k1")
    assert conflict.status_code == 409 and "another scenario" in conflict.json()["detail"]
    assert Alarm.objects.count() == 1


def test_idempotency_keys_of_different_callers_never_meet(client, world, signed_in, fire, panel):
    other, other_raw = key_actions.create_api_key(actor=None, site=world.a.site, name="Other", scenarios=[fire])
    ids = {trigger(client, fire, panel[1], idem="1").json()["id"],
           trigger(client, fire, other_raw, idem="1").json()["id"],
           trigger(signed_in(Role.EMPLOYEE), fire, idem="1").json()["id"]}
    assert len(ids) == 3


@pytest.mark.django_db(transaction=True)
def test_two_requests_with_the_same_key_at_once_raise_one_alarm(world, fire, panel):
    raw = panel[1]
    barrier = threading.Barrier(2)
    results: list = []

    def send():
        try:
            barrier.wait(timeout=10)
            response = trigger(Client(), fire, raw, idem="simultaneous")
            results.append((response.status_code, response.json().get("id")))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(code for code, _id in results) == [200, 201], results
    assert len({alarm_id for _code, alarm_id in results}) == 1
    assert Alarm.objects.count() == 1 and AlarmEvent.objects.filter(kind="triggered").count() == 1


# Bad input --------------------------------------------------------------------------------------

def test_bad_input_is_a_clear_4xx_and_writes_no_alarm(client, world, fire, panel):
    raw = panel[1]
    foreign = fire_scenario(world.b.site)
    cases = [
        (call(client, "post", "alarms", {"scenario_id": 999999}, key=raw), 404, "no such scenario"),
        (trigger(client, foreign, raw), 404, "no such scenario"),
        (trigger(client, fire, raw, level_id=999999), 404, "no such level"),
        (trigger(client, fire, raw, level_id=fire_scenario(world.a.site, name="Gas").levels.first().pk), 400,
         "does not belong"),
        (trigger(client, fire, raw, idem="x" * 129), 400, "128"),
        (trigger(client, fire, raw, idem=""), 400, "printable"),
        (trigger(client, fire, raw, latitude=52.5), 400, "both latitude and longitude"),
        (trigger(client, fire, raw, latitude=152.5, longitude=13.4), 400, "position on earth"),
        (trigger(client, fire, raw, answers=[{"question": "Who?", "answer": "x"}]), 400, "Unknown question"),
        (trigger(client, fire, raw, location="x" * 301), 422, "300"),
        (trigger(client, fire, raw, scenario_id="fire"), 422, "integer"),
        (client.post("/api/v1/alarms", "{", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}"),
         400, "parse"),
    ]
    for response, status, text in cases:
        assert response.status_code == status, (text, response.status_code, response.content)
        assert text.lower() in json.dumps(response.json()).lower(), (text, response.content)
    assert not Alarm.objects.exists()


def test_a_switched_off_scenario_cannot_be_triggered(client, fire, panel):
    fire.is_active = False
    fire.save()
    response = trigger(client, fire, panel[1])
    assert response.status_code == 403 and "switched off" in response.json()["detail"]
    assert not Alarm.objects.exists()


# Following and changing alarms ------------------------------------------------------------------

def test_a_key_follows_updates_raises_and_ends_the_alarm_it_raised(client, world, fire, panel):
    raw = panel[1]
    alarm_id = trigger(client, fire, raw).json()["id"]
    by_person = alarm_actions.trigger_alarm(site=world.a.site, scenario=fire, user=world.persona(Role.LEAD))[0]
    assert [a["id"] for a in call(client, "get", "alarms", key=raw).json()] == [alarm_id]
    assert call(client, "get", f"alarms/{by_person.pk}", key=raw).status_code == 404
    detail = call(client, "get", f"alarms/{alarm_id}", key=raw).json()
    assert detail["state"] == "active" and detail["counts"] is None  # numbers are for the cockpit
    updated = call(client, "post", f"alarms/{alarm_id}/update", {"note": "Smoke on floor 2"}, key=raw)
    assert updated.status_code == 200 and updated.json()["note"] == "Smoke on floor 2"
    evacuate = fire.levels.get(name="Evacuate")
    assert call(client, "post", f"alarms/{alarm_id}/level", {"level_id": evacuate.pk}, key=raw).json()["level"] == \
        "Evacuate"
    ended = call(client, "post", f"alarms/{alarm_id}/end", {"reason": "Detector reset"}, key=raw)
    assert ended.json()["state"] == "ended" and ended.json()["end_reason"] == "Detector reset"
    assert kinds(Alarm.objects.get(pk=alarm_id)) == ["triggered", "updated", "level_raised", "ended"]
    uses = AuditEntry.objects.filter(site=world.a.site, action="api_key.used")
    assert sorted(e.changes["action"][1] for e in uses) == ["end", "level", "trigger", "update"]
    assert call(client, "get", "alarms", {"state": "ended"}, key=raw).json()[0]["id"] == alarm_id


def test_the_lead_updates_raises_and_ends_an_alarm_and_everything_is_on_the_timeline(world, signed_in, fire):
    alarm = alarm_actions.trigger_alarm(site=world.a.site, scenario=fire, user=world.persona(Role.EMPLOYEE))[0]
    lead = signed_in(Role.LEAD)
    listed = call(lead, "get", "alarms").json()
    assert [a["id"] for a in listed] == [alarm.pk]
    assert call(lead, "post", f"alarms/{alarm.pk}/update", {"location": "Hall 4"}).json()["location"] == "Hall 4"
    evacuate = fire.levels.get(name="Evacuate")
    assert call(lead, "post", f"alarms/{alarm.pk}/level", {"level_id": evacuate.pk}).status_code == 200
    assert call(lead, "post", f"alarms/{alarm.pk}/level", {"level_id": evacuate.pk}).status_code == 400
    assert call(lead, "post", f"alarms/{alarm.pk}/answer", {"answer": "accepted"}).status_code == 200
    detail = call(lead, "get", f"alarms/{alarm.pk}").json()
    assert detail["counts"]["accepted"] == 1 and detail["counts"]["total"] == alarm.recipients.count()
    assert [e["kind"] for e in detail["timeline"]] == ["triggered", "updated", "level_raised", "accepted"]
    missing = call(lead, "post", f"alarms/{alarm.pk}/end", {})
    empty = call(lead, "post", f"alarms/{alarm.pk}/end", {"reason": "  "})
    assert missing.status_code == 422 and "reason" in json.dumps(missing.json())
    assert empty.status_code == 400 and "reason" in empty.json()["detail"]
    assert Alarm.objects.get(pk=alarm.pk).is_active
    assert call(lead, "post", f"alarms/{alarm.pk}/end", {"reason": "False alarm"}).json()["state"] == "ended"
    late = call(lead, "post", f"alarms/{alarm.pk}/update", {"note": "too late"})
    assert late.status_code == 400 and "already ended" in json.dumps(late.json())
    assert kinds(alarm) == ["triggered", "updated", "level_raised", "accepted", "ended"]
    assert call(lead, "get", "alarms").json() == []


def test_a_recipient_answers_with_an_app_token_but_may_not_end_the_alarm(client, world, fire):
    alarm = alarm_actions.trigger_alarm(site=world.a.site, scenario=fire, user=world.persona(Role.LEAD))[0]
    _row, token = apptokens.issue(user=world.persona(Role.EMPLOYEE), site=world.a.site, name="Phone")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    seen = call(client, "get", "alarms", **headers).json()
    assert [a["id"] for a in seen] == [alarm.pk]
    assert call(client, "get", f"alarms/{alarm.pk}", **headers).json()["counts"] is None
    declined = call(client, "post", f"alarms/{alarm.pk}/answer", {"answer": "declined"}, **headers)
    assert declined.status_code == 200 and declined.json()["answer"] == "declined"
    wrong = call(client, "post", f"alarms/{alarm.pk}/answer", {"answer": "maybe"}, **headers)
    assert wrong.status_code == 400 and "accepted" in json.dumps(wrong.json())
    assert call(client, "post", f"alarms/{alarm.pk}/end", {"reason": "x"}, **headers).status_code == 403
    assert Alarm.objects.get(pk=alarm.pk).is_active and kinds(alarm) == ["triggered", "declined"]


def test_a_key_cannot_answer_and_someone_not_alerted_cannot_see_the_alarm(client, world, signed_in, panel):
    fire = panel[0].scenarios.get()
    only_leads = fire_scenario(world.a.site, name="Leads only", roles=[Role.LEAD])
    alarm = alarm_actions.trigger_alarm(site=world.a.site, scenario=only_leads, user=world.persona(Role.LEAD))[0]
    own = trigger(client, fire, panel[1]).json()["id"]
    assert call(client, "post", f"alarms/{own}/answer", {"answer": "accepted"}, key=panel[1]).status_code == 401
    employee = signed_in(Role.EMPLOYEE)
    assert call(employee, "get", f"alarms/{alarm.pk}").status_code == 404
    assert call(employee, "post", f"alarms/{alarm.pk}/answer", {"answer": "accepted"}).status_code == 404
    assert alarm.pk not in [a["id"] for a in call(employee, "get", "alarms").json()]


def test_a_key_loses_its_hold_on_an_alarm_when_the_scenario_leaves_its_scope(client, world, fire, gas, panel):
    key, raw = panel
    alarm_id = trigger(client, fire, raw).json()["id"]
    key_actions.set_api_key_scenarios(actor=None, key=key, scenarios=[gas])
    assert call(client, "post", f"alarms/{alarm_id}/end", {"reason": "x"}, key=raw).status_code == 403
    assert Alarm.objects.get(pk=alarm_id).is_active


# Tenant isolation -------------------------------------------------------------------------------

def test_another_sites_key_cannot_touch_this_sites_alarms(client, world, fire, panel):
    alarm_id = trigger(client, fire, panel[1]).json()["id"]
    _foreign, raw_b = key_actions.create_api_key(actor=None, site=world.b.site, name="B",
                                                 scenarios=[fire_scenario(world.b.site)])
    assert call(client, "get", "alarms", key=raw_b).json() == []
    assert call(client, "get", f"alarms/{alarm_id}", key=raw_b).status_code == 404
    for action, body in (("update", {"note": "x"}), ("level", {"level_id": fire.levels.last().pk}),
                         ("end", {"reason": "x"})):
        assert call(client, "post", f"alarms/{alarm_id}/{action}", body, key=raw_b).status_code == 404
    assert trigger(client, fire, raw_b).status_code == 404  # site a's scenario does not exist for site b
    assert [s["name"] for s in call(client, "get", "scenarios", key=raw_b).json()] == ["Fire"]
    alarm = Alarm.objects.get(pk=alarm_id)
    assert alarm.is_active and alarm.note == "" and kinds(alarm) == ["triggered"]
    assert Alarm.objects.filter(site=world.b.site).count() == 0


def test_another_sites_people_cannot_see_or_change_this_sites_alarms(client, world, fire, panel):
    alarm_id = trigger(client, fire, panel[1]).json()["id"]
    client.force_login(world.super_b)
    assert call(client, "get", "alarms").json() == []
    assert call(client, "get", f"alarms/{alarm_id}").status_code == 404
    assert call(client, "post", f"alarms/{alarm_id}/end", {"reason": "x"}).status_code == 404
    assert call(client, "post", f"alarms/{alarm_id}/answer", {"answer": "accepted"}).status_code == 404
    assert Alarm.objects.get(pk=alarm_id).is_active


# Description ------------------------------------------------------------------------------------

def test_the_openapi_document_describes_the_alarm_endpoints(client, db):
    spec = client.get("/api/openapi.json").json()
    paths = {"/api/v1/scenarios", "/api/v1/alarms", "/api/v1/alarms/{alarm_id}", "/api/v1/alarms/{alarm_id}/update",
             "/api/v1/alarms/{alarm_id}/level", "/api/v1/alarms/{alarm_id}/end", "/api/v1/alarms/{alarm_id}/answer"}
    assert paths <= set(spec["paths"])
    post = spec["paths"]["/api/v1/alarms"]["post"]
    assert {"201", "200", "409", "403"} <= set(post["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in post["parameters"])
    alarm_in = spec["components"]["schemas"]["AlarmIn"]
    assert "Idempotency-Key" in alarm_in["description"]
    assert all(field.get("description") for field in alarm_in["properties"].values())
    assert spec["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": spec["components"]["securitySchemes"]["ApiKeyAuth"]["description"]}


def test_the_secret_of_a_key_is_not_what_is_stored(world, panel):
    key, raw = panel
    stored = ApiKey.objects.values_list("prefix", "secret_hash", "name").get(pk=key.pk)
    assert raw not in " ".join(stored) and raw.split("_", 2)[2] not in " ".join(stored)
