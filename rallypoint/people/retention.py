"""Retention that an organisation chooses (within limits), and the purges that apply it.

Three kinds of data have a period the organisation may set on the page "Data retention" (a Super-admin asks,
a second one approves: four-eyes). The installation's ``RP_*`` settings are the defaults; docs/privacy.md
says why:

- ``alarm_record_days``: an ended alarm keeps who was alerted, how each person answered, the status reports,
  the messages and their attempts, and who did what on its timeline. Then :func:`purge_alarm_records` keeps
  the counts (answers per level and group, messages per channel and state, statuses) in ``Alarm.summary``
  and deletes the rest; the alarm itself (scenario, place, times, texts) stays as the incident record.
- ``push_idle_days``: a device's push subscription that received nothing for this long goes
  (:func:`purge_idle_push`).
- ``deactivated_days``: a person deactivated this long ago is forgotten (:func:`purge_deactivated`, through
  people.forget: their data key is destroyed too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rallypoint.alarms import actions as alarm_actions
from rallypoint.alarms.models import Alarm
from rallypoint.audit import approvals
from rallypoint.audit.actions import record
from rallypoint.evacuation.models import PersonState, StatusReport, ZoneReport
from rallypoint.notify.models import Delivery, PushSubscription
from rallypoint.people.forget import forget_person
from rallypoint.people.models import Membership, RetentionPolicy
from rallypoint.tenants.models import Organization

#: Alarms per purge run (the job runs every 15 minutes).
BATCH = 200


@dataclass(frozen=True)
class Period:
    field: str
    setting: str
    minimum: int
    maximum: int
    why: object


PERIODS = (
    Period("alarm_record_days", "ALARM_RECORD_DAYS", 30, 3650,
           gettext_lazy("Ended alarms keep who was alerted, how each person answered, status reports and messages "
                        "this long, for the after-action review and questions afterwards; then only the counts "
                        "and times stay.")),
    Period("push_idle_days", "PUSH_IDLE_DAYS", 7, 365,
           gettext_lazy("A device that received no push notification this long is probably gone; its "
                        "subscription is removed (the person turns it on again on a new device).")),
    Period("deactivated_days", "DEACTIVATED_DAYS", 30, 3650,
           gettext_lazy("A deactivated person is deleted this long after their deactivation; until then they can "
                        "be reactivated (parental leave, a contract ending and renewed).")),
)


def defaults() -> dict[str, int]:
    return {p.field: getattr(settings, p.setting) for p in PERIODS}


def policy_of(organization_id: int) -> dict[str, int]:
    row = RetentionPolicy.objects.filter(organization_id=organization_id).first()
    return {p.field: getattr(row, p.field) for p in PERIODS} if row else defaults()


def check(values: dict) -> dict[str, int]:
    """The periods as whole days within their limits; ValidationError naming each wrong one."""
    errors, clean = {}, {}
    for period in PERIODS:
        value = values.get(period.field)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if not isinstance(value, int) or isinstance(value, bool) or not period.minimum <= value <= period.maximum:
            errors[period.field] = _("Enter a number of days from %(min)d to %(max)d.") % {
                "min": period.minimum, "max": period.maximum}
        else:
            clean[period.field] = value
    if errors:
        raise ValidationError(errors)
    return clean


def request_change(*, actor, organization: Organization, values: dict, reason: str = ""):
    """Ask to change the periods (four-eyes unless the organisation turned it off for retention)."""
    clean = check(values)
    if approvals.required(organization, approvals.Process.CHANGE_RETENTION):
        return approvals.request(process=approvals.Process.CHANGE_RETENTION, actor=actor, organization=organization,
                                 site=None, subject={"values": clean}, reason=reason)
    if not approvals.may_act(actor, approvals.Process.CHANGE_RETENTION, organization_id=organization.pk, site=None):
        raise PermissionDenied
    _apply(organization.pk, clean, actor)
    return None


def change_approved(approval, approver) -> None:
    """The approved change (audit.approvals)."""
    _apply(approval.organization_id, check(approval.subject.get("values") or {}), approver)


def _apply(organization_id: int, values: dict[str, int], actor) -> None:
    before = policy_of(organization_id)
    with transaction.atomic():
        RetentionPolicy.objects.update_or_create(organization_id=organization_id,
                                                 defaults={**values, "updated_at": timezone.now()})
        changes = {k: [before[k], v] for k, v in values.items() if before[k] != v}
        if changes:
            record(actor=actor, organization=Organization.objects.get(pk=organization_id), site=None,
                   action="retention.changed", object_type="organization", object_id=organization_id,
                   changes=changes)


def _by_organization() -> dict[int, dict[str, int]]:
    return {org_id: policy_of(org_id) for org_id in Organization.objects.values_list("pk", flat=True)}


def purge_alarm_records(now: datetime) -> int:
    """Ended alarms past their organisation's ``alarm_record_days``: keep the counts, delete the personal
    parts. Returns how many alarms were reduced to their record."""
    done = 0
    for org_id, policy in _by_organization().items():
        cutoff = now - timedelta(days=policy["alarm_record_days"])
        for alarm in Alarm.objects.filter(site__organization_id=org_id, state=Alarm.State.ENDED,
                                          ended_at__lt=cutoff, personal_parts_removed_at__isnull=True)[:BATCH]:
            reduce_to_record(alarm, now)
            done += 1
    return done


def reduce_to_record(alarm, now: datetime) -> None:
    """Keep an ended alarm's numbers in ``summary``; delete who was alerted, their answers, status reports and
    messages, and who did what on the timeline."""
    with transaction.atomic():
        statuses = dict(PersonState.objects.filter(alarm=alarm).values_list("status").annotate(n=models.Count("pk")))
        alarm.summary = {"counts": alarm_actions.counts(alarm), "statuses": statuses}
        StatusReport.objects.filter(alarm=alarm).delete()
        PersonState.objects.filter(alarm=alarm).delete()
        ZoneReport.objects.filter(alarm=alarm).update(reported_by=None)
        Delivery.objects.filter(alarm=alarm).delete()
        alarm.recipients.all().delete()
        alarm.events.update(actor=None)
        alarm.triggered_by, alarm.personal_parts_removed_at = None, now
        alarm.save(update_fields=["summary", "triggered_by", "personal_parts_removed_at"])


def purge_idle_push(now: datetime) -> int:
    deleted = 0
    for org_id, policy in _by_organization().items():
        cutoff = now - timedelta(days=policy["push_idle_days"])
        idle = PushSubscription.objects.filter(site__organization_id=org_id).filter(
            models.Q(last_success_at__lt=cutoff) | models.Q(last_success_at__isnull=True, created_at__lt=cutoff))
        deleted += idle.delete()[0]
    return deleted


def purge_deactivated(now: datetime) -> int:
    done = 0
    for org_id, policy in _by_organization().items():
        cutoff = now - timedelta(days=policy["deactivated_days"])
        for membership in Membership.objects.filter(site__organization_id=org_id, is_active=False,
                                                    deactivated_at__lt=cutoff)[:BATCH]:
            forget_person(membership=membership, actor=None, why="deactivated")
            done += 1
    return done


def purge_message_log(now: datetime) -> int:
    """Messages of no alarm (password links, reminders, approval requests) after ``RP_MESSAGE_LOG_DAYS``, once
    settled (sent, failed, cancelled, skipped)."""
    cutoff = now - timedelta(days=settings.MESSAGE_LOG_DAYS)
    return Delivery.objects.filter(alarm__isnull=True, created_at__lt=cutoff).exclude(
        state__in=[Delivery.State.PENDING, Delivery.State.SENDING]).delete()[0]
