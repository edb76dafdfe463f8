"""Four-eyes approvals (seed: "Vier-Augen-Prinzip für vordefinierte Prozesse").

A predefined process (:class:`~rallypoint.audit.models.Approval.Process`) that the organisation has put under
four eyes is not carried out when it is asked for: :func:`request` writes an :class:`Approval` and e-mails
everyone who may approve it, through the outbox. A second authorised person approves (:func:`decide`), and
only then does the process run, in the same transaction, through the handler named in :data:`PROCESSES`; or
refuses; or nobody answers within ``RP_APPROVAL_HOURS`` (24) and it expires (:func:`expire_due`). The
requester can never approve their own request, and every step is an audit entry.

Who may approve: for a site's process, the site's other Administrators and the organisation's Super-admins;
for an organisation's own (a Super-admin grant, deleting a site, the second-factor rule), its other
Super-admins. When nobody else may approve, the requester may carry it out alone with
``without_second_person`` — it is recorded, and the Art. 32 report flags it.

Which processes need approval is an organisation's setting (``OrganizationSecurity.four_eyes``); granting
the Administrator role always does.

Handlers are named by dotted path (as the registry of personal data names its purges): the apps that carry
the processes out import this module, not the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from rallypoint.accounts.mfa_models import OrganizationSecurity
from rallypoint.audit.actions import record_many
from rallypoint.audit.models import Approval, AuditEntry
from rallypoint.notify import outbox
from rallypoint.people.models import Membership
from rallypoint.tenants.models import Organization, Site, SuperAdmin
from rallypoint.tenants.roles import Perm, Role
from rallypoint.tenants.scoping import has_perm

Process = Approval.Process
State = Approval.State
#: The kind of the message that asks for an approval (rendered in rallypoint.audit.approval_messages).
ASK = "audit.approval"


@dataclass(frozen=True)
class ProcessRule:
    #: Who may ask for it and approve it at a site; ``None``: an organisation's process, for Super-admins.
    perm: Perm | None
    #: ``handler(approval, approver) -> None``, run when approved; raises ValidationError to refuse.
    handler: str


PROCESSES: dict[str, ProcessRule] = {
    Process.GRANT_ADMIN: ProcessRule(Perm.MANAGE_PEOPLE, "rallypoint.people.actions.grant_admin_approved"),
    Process.DELETE_PERSON: ProcessRule(Perm.MANAGE_PEOPLE, "rallypoint.people.forget.delete_person_approved"),
    Process.EXPORT_PEOPLE: ProcessRule(Perm.MANAGE_PEOPLE, "rallypoint.audit.approvals.ready_to_use"),
    Process.RESET_SECOND_FACTOR: ProcessRule(Perm.MANAGE_PEOPLE,
                                             "rallypoint.people.actions.second_factor_reset_approved"),
    Process.EXPORT_PERSON: ProcessRule(Perm.MANAGE_PEOPLE, "rallypoint.audit.approvals.ready_to_use"),
    Process.CHANGE_RETENTION: ProcessRule(None, "rallypoint.people.retention.change_approved"),
    Process.GRANT_SUPER_ADMIN: ProcessRule(None, "rallypoint.tenants.actions.grant_super_admin_approved"),
    Process.DELETE_SITE: ProcessRule(None, "rallypoint.tenants.actions.delete_site_approved"),
    Process.CHANGE_SECOND_FACTOR_RULE: ProcessRule(None, "rallypoint.accounts.mfa.set_policy_approved"),
    Process.CREATE_TRIGGER_KEY: ProcessRule(Perm.MANAGE_API_KEYS,
                                            "rallypoint.integrations.actions.trigger_key_approved"),
}
#: Always under four eyes, whatever the organisation chose.
ALWAYS = frozenset({Process.GRANT_ADMIN})


def ready_to_use(approval: Approval, approver) -> None:
    """A process whose approval is a one-time permission (an export): the requester uses it once."""


def required(organization: Organization, process: str) -> bool:
    """Does ``process`` need a second person's approval in this organisation?"""
    if process in ALWAYS:
        return True
    chosen = organization_processes(organization)
    return process in chosen


def organization_processes(organization: Organization) -> set[str]:
    security = getattr(organization, "security", None) if organization.pk else None
    chosen = getattr(security, "four_eyes", None)
    return set(Process.values if chosen is None else chosen) | ALWAYS


def _is_super_admin(user, organization_id: int) -> bool:
    return SuperAdmin.objects.filter(organization_id=organization_id, user=user).exists()


def may_act(user, approval_or_rule, *, organization_id: int, site: Site | None) -> bool:
    """May ``user`` ask for or approve this process here?"""
    rule = PROCESSES[approval_or_rule] if isinstance(approval_or_rule, str) else approval_or_rule
    if user is None or not user.is_authenticated:
        return False
    if rule.perm is None or site is None:
        return _is_super_admin(user, organization_id)
    return has_perm(user, site, rule.perm)


def approvers(approval: Approval) -> list[Membership]:
    """Who may approve, but the requester: the site's active Administrators and the organisation's
    Super-admins (through one of their memberships in the organisation, for the message)."""
    supers = set(SuperAdmin.objects.filter(organization_id=approval.organization_id).values_list("user_id", flat=True))
    people = Membership.objects.filter(user__is_active=True, is_active=True, user__is_support=False).exclude(
        user_id=approval.requested_by_id).select_related("user")
    result: dict[int, Membership] = {}
    if approval.site_id is not None and PROCESSES[approval.process].perm is not None:
        for m in people.filter(site_id=approval.site_id, role=Role.ADMIN):
            result[m.user_id] = m
    for m in people.filter(site__organization_id=approval.organization_id, user_id__in=supers).order_by("pk"):
        result.setdefault(m.user_id, m)
    return list(result.values())


def _audit(approval: Approval, actor, action: str, **changes) -> None:
    record_many([AuditEntry(
        organization_id=approval.organization_id, site_id=approval.site_id,
        actor=actor if actor is not None and actor.pk else None, action=action, object_type="approval",
        object_id=str(approval.pk), changes={"process": [None, approval.process], "subject": [None, approval.subject],
                                             **{k: [None, v] for k, v in changes.items() if v is not None}})])


def request(*, process: str, actor, organization: Organization, site: Site | None, subject: dict,
            reason: str = "") -> Approval:
    """Ask for ``process``; a second person is e-mailed. Raises PermissionDenied when ``actor`` may not ask."""
    if process not in PROCESSES:
        raise ValueError(f"no such process {process!r}")
    if not may_act(actor, process, organization_id=organization.pk, site=site):
        raise PermissionDenied
    reason = (reason or "").strip()
    if len(reason) > 500:
        raise ValidationError({"reason": _("Use at most 500 characters.")})
    now = timezone.now()
    with transaction.atomic():
        approval = Approval.objects.create(
            organization=organization, site=site, process=process, subject=subject, reason=reason,
            requested_by=actor, requested_at=now, expires_at=now + timedelta(hours=settings.APPROVAL_HOURS))
        _audit(approval, actor, "approval.requested")
        for person in approvers(approval):
            outbox.queue(ASK, site=person.site, membership=person, context={"approval": approval.pk})
    return approval


def _pending(approval: Approval) -> Approval:
    approval = Approval.objects.select_for_update().get(pk=approval.pk)
    if approval.state != State.PENDING:
        raise ValidationError(_("This request was already decided."))
    if approval.expires_at <= timezone.now():
        raise ValidationError(_("This request has expired."))
    return approval


def _carry_out(approval: Approval, approver) -> None:
    """Run the handler in a savepoint: a refusal (ValidationError) leaves nothing half-done and marks the
    request FAILED with the reason."""
    try:
        with transaction.atomic():
            import_string(PROCESSES[approval.process].handler)(approval, approver)
    except ValidationError as exc:
        approval.state, approval.result = State.FAILED, "; ".join(exc.messages)[:500]
    else:
        approval.state = State.DONE


def decide(*, approval: Approval, approver, approve: bool, note: str = "") -> Approval:
    """Approve (and carry out) or refuse. The requester cannot decide their own request."""
    with transaction.atomic():
        approval = _pending(approval)
        if approver is not None and approver.pk == approval.requested_by_id:
            raise PermissionDenied(_("You cannot approve your own request."))
        site = Site.objects.filter(pk=approval.site_id).first()
        if not may_act(approver, approval.process, organization_id=approval.organization_id, site=site):
            raise PermissionDenied
        approval.decided_by, approval.decided_at, approval.note = approver, timezone.now(), (note or "")[:500]
        if approve:
            _carry_out(approval, approver)
        else:
            approval.state = State.REFUSED
        approval.save()
        _audit(approval, approver, f"approval.{approval.state}", result=approval.result or None)
    return approval


def carry_out_alone(*, approval: Approval, actor) -> Approval:
    """Nobody else may approve (a site with a single administrator and no Super-admin): the requester
    carries it out, and the record says so."""
    with transaction.atomic():
        approval = _pending(approval)
        if actor is None or actor.pk != approval.requested_by_id:
            raise PermissionDenied
        if approvers(approval):
            raise ValidationError(_("Someone else can approve this request: ask them."))
        approval.without_second_person, approval.decided_by, approval.decided_at = True, actor, timezone.now()
        _carry_out(approval, actor)
        approval.save()
        _audit(approval, actor, f"approval.{approval.state}", without_second_person=True)
    return approval


def cancel(*, approval: Approval, actor) -> Approval:
    with transaction.atomic():
        approval = _pending(approval)
        if actor is None or actor.pk != approval.requested_by_id:
            raise PermissionDenied
        approval.state, approval.decided_at = State.CANCELLED, timezone.now()
        approval.save(update_fields=["state", "decided_at"])
        _audit(approval, actor, "approval.cancelled")
    return approval


def expire_due(now: datetime | None = None) -> int:
    """Requests nobody decided in time expire (a job, every 15 minutes)."""
    now = now or timezone.now()
    expired = 0
    for approval in Approval.objects.filter(state=State.PENDING, expires_at__lte=now):
        with transaction.atomic():
            if Approval.objects.filter(pk=approval.pk, state=State.PENDING).update(state=State.EXPIRED,
                                                                                     decided_at=now):
                _audit(approval, None, "approval.expired")
                expired += 1
    return expired


def use_once(*, approval: Approval, actor) -> Approval:
    """Use an approved one-time permission (an export): the requester, once."""
    with transaction.atomic():
        approval = Approval.objects.select_for_update().get(pk=approval.pk)
        if approval.requested_by_id != getattr(actor, "pk", None):
            raise PermissionDenied
        if approval.state != State.DONE:
            raise ValidationError(_("This is not approved (yet)."))
        if approval.used_at is not None:
            raise ValidationError(_("This approval was already used."))
        approval.used_at = timezone.now()
        approval.save(update_fields=["used_at"])
        _audit(approval, actor, "approval.used")
    return approval


def purge_decided(now: datetime) -> int:
    """Decided requests go with the audit trail's retention."""
    cutoff = now - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    deleted, _unused = Approval.objects.exclude(state=State.PENDING).filter(requested_at__lt=cutoff).delete()
    return deleted


def set_processes(*, organization: Organization, processes: list[str], actor) -> None:
    """Which processes the organisation puts under four eyes (Super-admins; granting Administrator stays)."""
    if not may_act(actor, Process.CHANGE_RETENTION, organization_id=organization.pk, site=None):
        raise PermissionDenied
    unknown = set(processes) - set(PROCESSES)
    if unknown:
        raise ValidationError(_("Unknown process."))
    chosen = sorted(set(processes) | ALWAYS)
    before = sorted(organization_processes(organization) & set(PROCESSES))
    with transaction.atomic():
        OrganizationSecurity.objects.update_or_create(organization=organization, defaults={"four_eyes": chosen})
        if chosen != before:
            record_many([AuditEntry(organization=organization, site=None, actor=actor, action="four_eyes.changed",
                                    object_type="organization", object_id=str(organization.pk),
                                    changes={"four_eyes": [before, chosen]})])
