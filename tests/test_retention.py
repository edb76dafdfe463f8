"""Retention an organisation chooses: ended alarms keep their counts and lose their personal parts, unused
push devices go, deactivated people are forgotten, the message log is emptied; the periods change on a page,
within limits, after a second Super-admin's approval."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from rallypoint.alarms.actions import answer_alarm, counts, end_alarm, trigger_alarm
from rallypoint.alarms.models import Alarm, AlarmRecipient, Scenario
from rallypoint.audit import approvals
from rallypoint.audit.models import Approval
from rallypoint.evacuation import status
from rallypoint.evacuation.models import PersonState, StatusReport
from rallypoint.notify import outbox
from rallypoint.notify.models import Delivery, PushSubscription
from rallypoint.people import actions as people
from rallypoint.people import retention
from rallypoint.people.models import Membership, RetentionPolicy
from rallypoint.people.personal_data import purge_all as run_purges
from rallypoint.tenants import actions as tenants
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario


def _ended_alarm(world, days_ago: int) -> Alarm:
    site, lead = world.a.site, world.a.people[Role.LEAD]
    scenario = fire_scenario(site, name=f"Fire {days_ago}", evacuates=Scenario.Evacuates.ALL)
    alarm, _ = trigger_alarm(site=site, scenario=scenario, user=lead.user)
    answer_alarm(alarm=alarm, membership=world.a.people[Role.EMPLOYEE], answer="accepted", via="app")
    answer_alarm(alarm=alarm, membership=lead, answer="declined", via="app")
    status.report_status(alarm=alarm, person=world.a.people[Role.EMPLOYEE], status="safe",
                         reporter=status.Reporter(membership=world.a.people[Role.EMPLOYEE]))
    end_alarm(user=lead.user, alarm=alarm, reason="over")
    Alarm.objects.filter(pk=alarm.pk).update(ended_at=timezone.now() - timedelta(days=days_ago))
    return Alarm.objects.get(pk=alarm.pk)


@pytest.mark.django_db(transaction=True)
def test_an_old_alarm_keeps_its_counts_and_loses_its_personal_parts(world):
    old, recent = _ended_alarm(world, 400), _ended_alarm(world, 10)
    before = counts(old)
    assert (before["accepted"], before["declined"]) == (1, 1)

    assert retention.purge_alarm_records(timezone.now()) == 1
    old.refresh_from_db()
    assert old.personal_parts_removed_at is not None and old.triggered_by is None
    assert counts(old) == before  # the record still says how many were alerted and answered
    assert old.summary["statuses"] == {"safe": 1}
    for model in (AlarmRecipient, StatusReport, PersonState, Delivery):
        assert not model.objects.filter(alarm=old).exists(), model
    assert not old.events.exclude(actor=None).exists()
    assert AlarmRecipient.objects.filter(alarm=recent).count() == before["total"]  # not yet due

    RetentionPolicy.objects.create(organization=world.org_a, alarm_record_days=30, push_idle_days=60,
                                   deactivated_days=180)
    assert retention.purge_alarm_records(timezone.now()) == 0  # 10 days: still within 30
    Alarm.objects.filter(pk=recent.pk).update(ended_at=timezone.now() - timedelta(days=31))
    assert retention.purge_alarm_records(timezone.now()) == 1


def test_unused_push_devices_and_long_deactivated_people_go(world):
    site, employee, guest = world.a.site, world.a.people[Role.EMPLOYEE], world.a.people[Role.GUEST]
    now = timezone.now()
    stale = PushSubscription.objects.create(site=site, membership=employee, endpoint="https://push.example/1",
                                            endpoint_hash="1" * 64, p256dh="k", auth="a",
                                            last_success_at=now - timedelta(days=61))
    fresh = PushSubscription.objects.create(site=site, membership=employee, endpoint="https://push.example/2",
                                            endpoint_hash="2" * 64, p256dh="k", auth="a",
                                            last_success_at=now - timedelta(days=59))
    assert retention.purge_idle_push(now) == 1
    assert not PushSubscription.objects.filter(pk=stale.pk).exists()
    assert PushSubscription.objects.filter(pk=fresh.pk).exists()

    people.set_people_active(actor=None, site=site, memberships=[guest], active=False)
    assert retention.purge_deactivated(now + timedelta(days=179)) == 0
    assert retention.purge_deactivated(now + timedelta(days=181)) == 1
    assert Membership.records.get(pk=guest.pk).kind == "forgotten"


def test_the_message_log_keeps_only_recent_settled_messages(world):
    old = outbox.queue("people.access_review", site=world.a.site, membership=world.a.people[Role.ADMIN],
                       context={"review": 0}, sendable=False)
    Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    waiting = outbox.queue("people.access_review", site=world.a.site, membership=world.a.people[Role.ADMIN],
                           context={"review": 0})
    Delivery.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(days=31))
    assert retention.purge_message_log(timezone.now()) == 1
    assert Delivery.objects.filter(pk=waiting.pk).exists()  # not sent yet: kept


def test_the_periods_change_within_limits_after_a_second_super_admin_approves(world):
    tenants.grant_super_admin(actor=None, organization=world.org_a, user=world.a.people[Role.LEAD].user)
    client = Client()
    client.force_login(world.super_a)
    session = client.session
    session["rp_site_id"] = world.a.site.pk
    session.save()
    page = client.get("/retention/").content.decode()
    assert 'value="365"' in page and "From 30 to 3650 days." in page
    wrong = client.post("/retention/", {"alarm_record_days": "5", "push_idle_days": "60", "deactivated_days": "180"})
    assert wrong.status_code == 400 and "Ensure this value is greater than or equal to 30." in wrong.content.decode()
    asked = client.post("/retention/", {"alarm_record_days": "730", "push_idle_days": "30",
                                        "deactivated_days": "90", "reason": "works council"})
    assert asked.status_code == 302 and asked["Location"] == "/audit/approvals/"
    assert retention.policy_of(world.org_a.pk)["alarm_record_days"] == 365  # not yet
    approval = Approval.objects.get(process="change_retention")
    assert approval.site is None and "works council" in client.get("/audit/approvals/").content.decode()
    approvals.decide(approval=approval, approver=world.a.people[Role.LEAD].user, approve=True)
    assert retention.policy_of(world.org_a.pk) == {"alarm_record_days": 730, "push_idle_days": 30,
                                                   "deactivated_days": 90}
    assert retention.policy_of(world.org_b.pk)["alarm_record_days"] == 365  # another organisation's own
    admin = Client()
    admin.force_login(world.a.people[Role.ADMIN].user)
    session = admin.session
    session["rp_site_id"] = world.a.site.pk
    session.save()
    assert admin.get("/retention/").status_code == 403  # Super-admins only


def test_every_declared_purge_runs(world):
    done = run_purges()
    assert {"rallypoint.people.retention.purge_alarm_records", "rallypoint.people.retention.purge_idle_push",
            "rallypoint.people.retention.purge_deactivated", "rallypoint.people.retention.purge_message_log",
            "rallypoint.people.forget.purge_forgotten", "rallypoint.audit.approvals.purge_decided"} <= set(done)
