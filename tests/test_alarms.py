"""The alarm core: triggering, recipients, the outbox, answers, escalation, ending."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from rallypoint.alarms import actions, links, scenario_actions
from rallypoint.alarms.models import Alarm, AlarmEvent, AlarmRecipient, Level
from rallypoint.audit.models import AuditEntry
from rallypoint.notify import messages
from rallypoint.notify.models import Delivery, time_ordered_key
from rallypoint.notify.worker import DeliveryWorker, claim
from rallypoint.people.models import Group, Membership
from rallypoint.realtime import hub
from rallypoint.realtime.models import StreamEvent
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario


@pytest.fixture
def published():
    frames = []
    unsubscribe = hub.subscribe(frames.append)
    yield frames
    unsubscribe()


def _trigger(world, scenario, role=Role.EMPLOYEE, **kwargs):
    return actions.trigger_alarm(site=world.a.site, scenario=scenario, user=world.a.people[role].user, **kwargs)


def _active_people(site) -> set[int]:
    """Everyone an alarm to all roles reaches: the active people, without the support account."""
    return set(Membership.objects.for_site(site).active().filter(user__is_support=False).values_list("pk", flat=True))


def test_an_alarm_writes_recipients_deliveries_timeline_and_audit_in_one_go(world):
    scenario = fire_scenario(world.a.site, channels=("inapp", "email", "sms"))
    alarm, created = _trigger(world, scenario, location_text="Lab 2",
                              answers=[{"question": "Is anyone hurt?", "answer": "No"}])
    assert created and alarm.level.name == "Pre-alarm" and alarm.is_active
    recipients = set(alarm.recipients.values_list("membership_id", flat=True))
    assert recipients == _active_people(world.a.site)
    assert Delivery.objects.filter(alarm=alarm).count() == 3 * len(recipients)
    assert set(Delivery.objects.filter(alarm=alarm).values_list("channel", flat=True)) == {"inapp", "email", "sms"}
    assert list(alarm.events.values_list("kind", flat=True)) == [AlarmEvent.Kind.TRIGGERED]
    assert AuditEntry.objects.filter(site=world.a.site, action="alarm.triggered", object_id=str(alarm.pk)).exists()
    event = StreamEvent.objects.get(site=world.a.site, type="alarm.raised")
    assert event.payload["alarm"]["location"] == "Lab 2" and event.audience == "alarm"
    assert not any(m in str(event.payload) for m in world.a.markers[3:])  # no names, no e-mail addresses


def test_delivery_keys_are_unique_uuids_of_version_7_that_carry_their_time(world):
    """Made in the database for a whole alarm at once, and in Python for a single row: the time in
    their first 48 bits keeps an alarm's keys together at the end of the unique index."""
    scenario = fire_scenario(world.a.site, channels=("inapp", "email", "sms"))
    before = time.time_ns() // 1_000_000
    alarm, _ = _trigger(world, scenario)
    single = time_ordered_key()
    after = time.time_ns() // 1_000_000
    keys = [*Delivery.objects.filter(alarm=alarm).values_list("key", flat=True), single]
    assert len(keys) == len(set(keys)) > 3
    for key in keys:
        assert key.version == 7 and key.variant == uuid.RFC_4122
        assert before <= key.int >> 80 <= after


@pytest.mark.django_db(transaction=True)
def test_the_event_reaches_the_hub_only_after_commit(world, published):
    scenario = fire_scenario(world.a.site)
    with pytest.raises(RuntimeError), transaction.atomic():
        _trigger(world, scenario)
        raise RuntimeError("rolled back")
    assert published == [] and not Alarm.objects.exists() and not Delivery.objects.exists()
    alarm, _ = _trigger(world, scenario)
    assert [f["type"] for f in published] == ["alarm.raised"]
    assert published[0]["alarm"] == alarm.pk and published[0]["seq"] == 1


def test_sequence_numbers_count_up_per_site(world):
    scenario_a, scenario_b = fire_scenario(world.a.site), fire_scenario(world.b.site)
    _trigger(world, scenario_a)
    alarm_b, _ = actions.trigger_alarm(site=world.b.site, scenario=scenario_b,
                                       user=world.b.people[Role.EMPLOYEE].user)
    alarm_a, _ = _trigger(world, scenario_a)
    actions.end_alarm(user=world.a.people[Role.LEAD].user, alarm=alarm_a, reason="False alarm")
    assert list(StreamEvent.objects.filter(site=world.a.site).values_list("seq", flat=True)) == [1, 2, 3]
    assert list(StreamEvent.objects.filter(site=world.b.site).values_list("seq", flat=True)) == [1]


def test_recipients_come_from_people_groups_and_roles_of_the_level(world):
    scenario = fire_scenario(world.a.site, roles=[Role.LEAD])
    level = scenario.levels.first()
    level.recipient_people.add(world.a.people[Role.GUEST])
    other = world.a.people[Role.MEMBER]
    level.recipient_groups.add(world.a.group)
    world.a.group.members.set([other])
    world.a.people[Role.EMPLOYEE].is_active = False
    world.a.people[Role.EMPLOYEE].save()
    second = Group.objects.create(site=world.a.site, name="Second responders")
    second.members.set([other, world.a.people[Role.LEAD], world.a.people[Role.EMPLOYEE]])
    level.recipient_groups.add(second)
    departed = world.a.people[Role.ADMIN]
    level.recipient_people.add(departed)
    departed.user.is_active = False
    departed.user.save()
    alarm, _created = _trigger(world, scenario, Role.LEAD)
    rows = {r.membership_id: sorted(r.group_ids) for r in alarm.recipients.all()}
    assert rows[world.a.people[Role.LEAD].pk] == [second.pk]
    assert rows[world.a.people[Role.GUEST].pk] == []
    assert rows[other.pk] == sorted([world.a.group.pk, second.pk])
    assert world.a.people[Role.EMPLOYEE].pk not in rows and departed.pk not in rows
    named_by_role = set(Membership.objects.filter(site=world.a.site, role__in=level.recipient_roles, is_active=True,
                                                  user__is_active=True).values_list("pk", flat=True))
    assert set(rows) == named_by_role | {world.a.people[Role.LEAD].pk, world.a.people[Role.GUEST].pk, other.pk}
    assert len({r.link_nonce for r in alarm.recipients.all()}) == len(rows)
    assert all(len(r.link_nonce) == 32 for r in alarm.recipients.all())


def test_who_may_trigger_follows_the_scenario(world):
    scenario = fire_scenario(world.a.site, trigger_roles=[Role.LEAD])
    with pytest.raises(PermissionDenied):
        _trigger(world, scenario, Role.EMPLOYEE)
    scenario.trigger_groups.add(world.a.group)  # the employee is in the group
    assert _trigger(world, scenario, Role.EMPLOYEE)[1]
    assert _trigger(world, scenario, Role.ADMIN)[1]
    foreign = fire_scenario(world.b.site)
    with pytest.raises(PermissionDenied):
        _trigger(world, foreign, Role.ADMIN)
    assert Alarm.objects.filter(site=world.b.site).count() == 0


def test_a_repeated_idempotency_key_returns_the_first_alarm(world):
    scenario = fire_scenario(world.a.site)
    first, created = _trigger(world, scenario, idempotency_key="panel-42")
    again, created_again = _trigger(world, scenario, idempotency_key="panel-42")
    assert created and not created_again and again.pk == first.pk
    assert Alarm.objects.count() == 1 and Delivery.objects.filter(alarm=first).count() == 2 * first.recipients.count()


def test_bad_trigger_input_is_refused_without_writing(world):
    scenario = fire_scenario(world.a.site, allow_drill=False)
    other_level = fire_scenario(world.a.site, name="Gas").levels.first()
    for kwargs in ({"is_drill": True}, {"latitude": 52.5}, {"latitude": 95.0, "longitude": 13.4},
                   {"answers": [{"question": "Unknown?", "answer": "x"}]}, {"level": other_level}):
        with pytest.raises(ValidationError):
            _trigger(world, scenario, **kwargs)
    assert not Alarm.objects.exists() and not Delivery.objects.exists() and not StreamEvent.objects.exists()


def test_answers_are_counted_per_group_and_replace_each_other(world, django_capture_on_commit_callbacks):
    scenario = fire_scenario(world.a.site)
    scenario.levels.first().recipient_groups.add(world.a.group)
    alarm, _ = _trigger(world, scenario)
    lead, member = world.a.people[Role.LEAD], world.a.people[Role.MEMBER]
    with django_capture_on_commit_callbacks(execute=True):  # the counts go out after each answer's commit
        actions.answer_alarm(alarm=alarm, membership=lead, answer="accepted", via="app")
        actions.answer_alarm(alarm=alarm, membership=member, answer="declined", via="link")
    counts = actions.counts(alarm)
    assert (counts["accepted"], counts["declined"], counts["none"]) == (1, 1, counts["total"] - 2)
    assert counts["by_group"][str(world.a.group.pk)]["accepted"] == 1
    assert counts["by_level"][str(alarm.level_id)] == {"accepted": 1, "declined": 1, "none": counts["total"] - 2}
    actions.answer_alarm(alarm=alarm, membership=member, answer="accepted", via="app")
    assert actions.counts(alarm)["accepted"] == 2
    kinds = list(alarm.events.values_list("kind", flat=True))
    assert kinds == ["triggered", "accepted", "declined", "accepted"]
    # Answers within a second: the counts go out once at once, the rest with the worker's next sweep.
    assert StreamEvent.objects.filter(type="alarm.counts", audience="cockpit").count() == 1
    worker = DeliveryWorker("sweeper", threads=1)
    try:
        worker.publish_counts(force=True)
    finally:
        worker.close()
    latest = StreamEvent.objects.filter(type="alarm.counts").latest("seq").payload["counts"]
    assert (latest["accepted"], latest["declined"]) == (2, 0)


def test_only_recipients_answer_and_not_after_the_end(world):
    scenario = fire_scenario(world.a.site, roles=[Role.LEAD])
    alarm, _ = _trigger(world, scenario)
    with pytest.raises(PermissionDenied):
        actions.answer_alarm(alarm=alarm, membership=world.a.people[Role.GUEST], answer="accepted", via="app")
    with pytest.raises(ValidationError):
        actions.answer_alarm(alarm=alarm, membership=world.a.people[Role.LEAD], answer="maybe", via="app")
    actions.end_alarm(user=world.a.people[Role.LEAD].user, alarm=alarm, reason="Drill over")
    with pytest.raises(ValidationError):
        actions.answer_alarm(alarm=alarm, membership=world.a.people[Role.LEAD], answer="accepted", via="app")


def test_ending_needs_a_reason_and_the_right_role_and_sends_the_all_clear(world):
    scenario = fire_scenario(world.a.site, channels=("inapp", "email"))
    alarm, _ = _trigger(world, scenario)
    with pytest.raises(ValidationError):
        actions.end_alarm(user=world.a.people[Role.LEAD].user, alarm=alarm, reason="  ")
    with pytest.raises(PermissionDenied):
        actions.end_alarm(user=world.a.people[Role.MEMBER].user, alarm=alarm, reason="Out")
    actions.end_alarm(user=world.a.people[Role.LEAD].user, alarm=alarm, reason="Fire put out")
    alarm.refresh_from_db()
    assert alarm.state == "ended" and alarm.end_reason == "Fire put out" and alarm.ended_at
    assert Delivery.objects.filter(alarm=alarm, event="triggered", channel="email", state="cancelled").exists()
    assert Delivery.objects.filter(alarm=alarm, event="ended", channel="email").count() == alarm.recipients.count()
    assert not Delivery.objects.filter(alarm=alarm, event="ended", channel="inapp").exists()
    with pytest.raises(ValidationError):
        actions.end_alarm(user=world.a.people[Role.LEAD].user, alarm=alarm, reason="Again")


def test_raising_the_level_adds_its_recipients_and_alerts_everyone_on_it(world):
    scenario = fire_scenario(world.a.site, roles=[Role.LEAD])
    alarm, _ = _trigger(world, scenario)
    assert alarm.recipients.count() == 1
    first = alarm.recipients.get()
    actions.answer_alarm(alarm=alarm, membership=first.membership, answer="accepted", via="app")
    evacuate = scenario.levels.get(name="Evacuate")
    evacuate.recipient_groups.add(world.a.group)
    world.a.group.members.set([world.a.people[Role.EMPLOYEE]])
    actions.raise_level(user=world.a.people[Role.LEAD].user, alarm=alarm, level=evacuate)
    alarm.refresh_from_db()
    assert alarm.level == evacuate
    assert set(alarm.recipients.values_list("membership_id", flat=True)) == _active_people(world.a.site)
    assert set(alarm.recipients.values_list("level", flat=True)) == {evacuate.pk}  # the first one moved too
    kept = alarm.recipients.get(pk=first.pk)  # the same row: its answer stands
    assert kept.answer == "accepted" and kept.link_nonce == first.link_nonce
    assert alarm.recipients.get(membership=world.a.people[Role.EMPLOYEE]).group_ids == [world.a.group.pk]
    assert Delivery.objects.filter(alarm=alarm, event="level_raised").count() == 2 * alarm.recipients.count()
    with pytest.raises(ValidationError):
        actions.raise_level(user=world.a.people[Role.LEAD].user, alarm=alarm, level=evacuate)


def test_a_silent_alarm_sends_nothing_to_the_phone_of_who_raised_it(world):
    scenario = fire_scenario(world.a.site, channels=("inapp", "push", "sms"), silent=True)
    employee = world.a.people[Role.EMPLOYEE]
    alarm, _ = _trigger(world, scenario)
    mine = Delivery.objects.filter(alarm=alarm, recipient__membership=employee)
    assert list(mine.values_list("channel", flat=True)) == ["inapp"]
    others = Delivery.objects.filter(alarm=alarm).exclude(recipient__membership=employee)
    assert others.filter(channel="sms").count() == alarm.recipients.count() - 1
    actions.end_alarm(user=world.a.people[Role.LEAD].user, alarm=alarm, reason="Police on site")
    assert list(mine.values_list("channel", flat=True)) == ["inapp"]
    assert actions.public_alarm(alarm)["sound"] == "none" and actions.public_alarm(alarm)["silent"]


def test_an_update_reaches_recipients_and_the_timeline(world):
    alarm, _ = _trigger(world, fire_scenario(world.a.site, channels=("inapp", "email", "voice")))
    actions.update_alarm(user=world.a.people[Role.LEAD].user, alarm=alarm, note="Use exit B", location_text="Lab 3")
    alarm.refresh_from_db()
    assert (alarm.note, alarm.location_text) == ("Use exit B", "Lab 3")
    updated = Delivery.objects.filter(alarm=alarm, event="updated")
    assert set(updated.values_list("channel", flat=True)) == {"email"}  # no calls, no in-app rows for an update
    assert alarm.events.filter(kind="updated", data__fields=["location", "note"]).exists()


def _escalating(world, escalation, name="Fire", **fields):
    scenario = fire_scenario(world.a.site, roles=[Role.LEAD, Role.MEMBER], name=name)
    level = scenario.levels.first()
    for name, value in dict(escalation=escalation, escalate_below=2, escalate_after_seconds=60, **fields).items():
        setattr(level, name, value)
    level.save()
    return scenario, level


def test_too_few_acceptances_in_time_resend_on_further_channels_once(world):
    scenario, level = _escalating(world, Level.Escalation.NEXT_CHANNEL, escalate_channels=["sms"])
    alarm, _ = _trigger(world, scenario)
    actions.answer_alarm(alarm=alarm, membership=world.a.people[Role.LEAD], answer="accepted", via="app")
    assert actions.run_escalations() == 0  # not yet due
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert actions.run_escalations() == 1
        assert actions.run_escalations() == 0
    sms = Delivery.objects.filter(alarm=alarm, channel="sms", event="escalated")
    assert list(sms.values_list("recipient__membership_id", flat=True)) == [world.a.people[Role.MEMBER].pk]
    assert alarm.events.filter(kind="escalated", data__accepted=1, data__needed=2).exists()


def test_enough_acceptances_stop_the_escalation(world):
    scenario, level = _escalating(world, Level.Escalation.NEXT_CHANNEL, escalate_channels=["sms"])
    alarm, _ = _trigger(world, scenario)
    for role in (Role.LEAD, Role.MEMBER):
        actions.answer_alarm(alarm=alarm, membership=world.a.people[role], answer="accepted", via="app")
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert actions.run_escalations() == 0
    assert not Delivery.objects.filter(alarm=alarm, event="escalated").exists()


def test_escalation_can_raise_the_level_or_alert_a_group(world):
    scenario, level = _escalating(world, Level.Escalation.RAISE_LEVEL)
    level.escalate_to_level = scenario.levels.get(name="Evacuate")
    level.save()
    alarm, _ = _trigger(world, scenario)
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert actions.run_escalations() == 1
    alarm.refresh_from_db()
    assert alarm.level.name == "Evacuate" and alarm.events.filter(kind="level_raised", data__escalated=True).exists()

    scenario2, level2 = _escalating(world, Level.Escalation.NOTIFY_GROUP, name="Gas",
                                    escalate_to_group=world.a.group)
    world.a.group.members.set([world.a.people[Role.GUEST]])
    alarm2, _ = _trigger(world, scenario2)
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert actions.run_escalations() == 1
    guest = alarm2.recipients.get(membership=world.a.people[Role.GUEST])
    assert guest.group_ids == [world.a.group.pk]
    assert Delivery.objects.filter(alarm=alarm2, recipient=guest, event="escalated").count() == 2


def _support(site) -> Membership:
    return Membership.objects.get(site=site, user__is_support=True)


def test_the_support_account_is_never_alerted(world, signed_in):
    """Not by role, group or name when raised, not when the level is raised, not through an escalation
    to a group; and the pages do not offer it as a recipient."""
    support = _support(world.a.site)
    assert support.role == Role.ADMIN and support.is_active
    world.a.group.members.add(support)
    scenario = fire_scenario(world.a.site, roles=[Role.ADMIN])
    first, second = scenario.levels.all()
    first.recipient_groups.add(world.a.group)
    first.recipient_people.add(support)  # as an older version could store it
    second.recipient_people.add(support)
    second.recipient_groups.add(world.a.group)
    alarm, _created = _trigger(world, scenario, Role.ADMIN)
    assert alarm.recipients.exists()
    assert not alarm.recipients.filter(membership=support).exists()
    actions.raise_level(user=world.a.people[Role.ADMIN].user, alarm=alarm, level=second)
    assert alarm.recipients.count() == len(_active_people(world.a.site))
    assert not alarm.recipients.filter(membership=support).exists()

    scenario2, level = _escalating(world, Level.Escalation.NOTIFY_GROUP, name="Gas",
                                   escalate_to_group=world.a.group)
    alarm2, _created = _trigger(world, scenario2)
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert actions.run_escalations() == 1
    assert alarm2.recipients.filter(group_ids=[world.a.group.pk]).exists()
    assert not alarm2.recipients.filter(membership=support).exists()

    scenario3, level3 = _escalating(world, Level.Escalation.RAISE_LEVEL, name="Smoke")
    level3.escalate_to_level = scenario3.levels.get(name="Evacuate")
    level3.save()
    second3 = level3.escalate_to_level
    second3.recipient_people.add(support)
    alarm3, _created = _trigger(world, scenario3)
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert actions.run_escalations() == 1
    alarm3.refresh_from_db()
    assert alarm3.level == second3 and alarm3.recipients.count() == len(_active_people(world.a.site))
    assert not alarm3.recipients.filter(membership=support).exists()
    assert not Delivery.objects.filter(recipient__membership=support).exists()

    # Nobody can name it: not on the level's page, not through the action, not as a group member.
    client = signed_in(Role.ADMIN)
    page = client.get(f"/scenarios/{scenario.pk}/levels/{first.pk}/").content.decode()
    assert f'name="recipient_people" value="{support.pk}"' not in page
    with pytest.raises(ValidationError):
        scenario_actions.save_level(actor=None, scenario=scenario, level=None, data={
            "name": "Support", "position": 3, "channels": ["inapp"], "recipient_people": [support]})
    assert f'name="members" value="{support.pk}"' not in client.get(f"/groups/{world.a.group.pk}/").content.decode()


def test_answer_links_work_once_and_expire(world):
    alarm, _ = _trigger(world, fire_scenario(world.a.site))
    recipient = alarm.recipients.first()
    token = links.make_token(recipient)
    assert links.check_token(token) == recipient
    assert links.check_token(token[:-1] + ("0" if token[-1] != "0" else "1")) is None
    assert links.check_token("1.2.3") is None and links.check_token("garbage") is None
    assert links.check_token(token, now=time.time() + 121 * 60) is None
    assert links.use_token(recipient)
    assert links.check_token(token) is None and not links.use_token(recipient)


def test_messages_mark_a_drill_and_speak_the_recipients_language(world):
    alarm, _ = _trigger(world, fire_scenario(world.a.site), is_drill=True, location_text="Hall")
    alarm = Alarm.objects.select_related("scenario", "level", "site").get(pk=alarm.pk)
    recipient = alarm.recipients.select_related("membership").get(membership=world.a.people[Role.EMPLOYEE])
    english = messages.render(alarm, recipient, event="triggered", delivery_key="k", language="en")
    german = messages.render(alarm, recipient, event="triggered", delivery_key="k", language="de")
    assert english.subject.startswith("DRILL") and "DRILL" in english.text and "DRILL" in english.short
    assert german.subject.startswith("ÜBUNG")
    assert "Fire at Hall. Leave the building." in english.text and "Leave by the nearest exit." in english.text
    assert english.answer_url.startswith("https://") and "/answer/" in english.answer_url
    assert english.answer_url in english.short and len(english.short) <= messages.SHORT_LIMIT


def test_two_workers_never_claim_the_same_delivery(world):
    alarm, _ = _trigger(world, fire_scenario(world.a.site, channels=("inapp", "email", "sms")))
    first = claim("worker-1", 5)
    second = claim("worker-2", 100)
    assert len(first) == 5 and not set(first) & set(second)
    assert len(first) + len(second) == 2 * alarm.recipients.count()  # in-app rows are not the worker's
    assert claim("worker-3", 100) == []


def test_a_claim_takes_each_persons_channels_together(world):
    """In an alarm to thousands, nobody's SMS waits behind everyone else's e-mail: a batch goes person by
    person, with all of each person's channels."""
    alarm, _ = _trigger(world, fire_scenario(world.a.site, channels=("email", "sms", "push")))
    people = alarm.recipients.count()
    assert people >= 4
    rows = Delivery.objects.in_bulk(claim("worker-1", 6))
    by_person: dict[int, set[str]] = {}
    for delivery in rows.values():
        by_person.setdefault(delivery.recipient_id, set()).add(delivery.channel)
    assert list(by_person.values()) == [{"email", "sms", "push"}] * 2


def test_a_dead_workers_claims_are_taken_over_after_the_lease(world, settings):
    settings.DELIVERY_LEASE_SECONDS = 30
    _trigger(world, fire_scenario(world.a.site))
    taken = claim("dead-worker", 100)
    assert claim("worker-2", 100) == []
    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        assert sorted(claim("worker-2", 100)) == sorted(taken)
    assert set(Delivery.objects.filter(pk__in=taken).values_list("claimed_by", flat=True)) == {"worker-2"}


def test_seen_marks_the_in_app_delivery_delivered(world):
    alarm, _ = _trigger(world, fire_scenario(world.a.site))
    employee = world.a.people[Role.EMPLOYEE]
    assert actions.mark_seen(alarm_id=alarm.pk, membership_id=employee.pk)
    assert not actions.mark_seen(alarm_id=alarm.pk, membership_id=employee.pk)
    inapp = Delivery.objects.get(alarm=alarm, channel="inapp", recipient__membership=employee)
    assert inapp.state == "delivered" and AlarmRecipient.objects.get(alarm=alarm, membership=employee).seen_at
    assert actions.counts(alarm)["seen"] == 1


def test_old_stream_events_are_purged_and_the_sequence_goes_on(world, settings):
    from rallypoint.realtime.events import purge_old

    settings.STREAM_RETENTION_DAYS = 7
    scenario = fire_scenario(world.a.site)
    with time_machine.travel(timezone.now() - timedelta(days=8)):
        _trigger(world, scenario)
    _trigger(world, scenario)
    assert purge_old() == 1
    assert list(StreamEvent.objects.filter(site=world.a.site).values_list("seq", flat=True)) == [2]
    _trigger(world, scenario)
    assert StreamEvent.objects.filter(site=world.a.site).latest("seq").seq == 3
