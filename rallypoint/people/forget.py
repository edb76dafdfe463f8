"""Forget this person: their personal data goes at once, their documented actions a while later.

:func:`forget_person` forgets a person at one site (an administrator's deletion, after a second
administrator approved it); :func:`forget_account` forgets a person everywhere (their own deletion in My
account). Both run the registry of personal data (:mod:`rallypoint.people.personal_data`): each declared
reference to the person is deleted, detached or kept, as its model declares. Then:

- the membership keeps only what the alarms' records need: its number and site. Name, phone, department and
  company are emptied, the account is unlinked, and it is listed, counted and alerted nowhere (the default
  manager leaves it out). Answers, status reports and the timeline show "deleted person #N".
- the person's data key is destroyed in the key store (after the transaction commits), so the values a
  backup holds can no longer be read either (crypto-shredding);
- an account without another site is deleted: its sessions, app tokens and second factors go with it, and its
  data key is destroyed too.

:func:`purge_forgotten` (the registry's purge) deletes a forgotten membership ``RP_FORGOTTEN_DAYS`` after
its deletion, and with it the documented actions that still named it. :func:`reapply` forgets again, after an
old backup was restored, everyone whose data key the key store lists as destroyed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from rallypoint.accounts.models import User
from rallypoint.audit import approvals
from rallypoint.audit.actions import record
from rallypoint.people.models import Membership
from rallypoint.people.personal_data import declarations
from rallypoint.tenants.encryption import destroy_data_keys, store
from rallypoint.tenants.roles import Perm
from rallypoint.tenants.scoping import require_perm

log = logging.getLogger("rallypoint.people")


def _apply_registry(target: models.Model) -> dict[str, int]:
    """Each declared reference to ``target`` (a Membership or a User): delete, detach or keep. Returns the
    rows touched per table, for the audit entry (counts, never content)."""
    touched: dict[str, int] = {}
    for declared in declarations():
        for ref in declared.person:
            field = declared.model._meta.get_field(ref)
            if field.related_model is not type(target):
                continue
            op = declared.forget_op(ref)
            if op == "keep":
                continue
            if field.many_to_many:
                through = field.remote_field.through
                count, _ = through.objects.filter(**{field.m2m_reverse_field_name(): target}).delete()
            elif op == "delete":
                count, _ = declared.model._base_manager.filter(**{ref: target}).delete()
            else:
                count = declared.model._base_manager.filter(**{ref: target}).update(**{ref: None})
            if count:
                touched[declared.model._meta.db_table] = touched.get(declared.model._meta.db_table, 0) + count
    return touched


def _cancel_messages(membership: Membership) -> int:
    # A message not yet sent to a forgotten person is not sent: there is no one to send it to.
    from rallypoint.notify.models import Delivery  # notify depends on people; this way round only here

    return Delivery.objects.filter(models.Q(recipient__membership=membership) | models.Q(membership=membership),
                                   state=Delivery.State.PENDING).update(state=Delivery.State.CANCELLED)


def _erase(membership: Membership, now: datetime) -> list[str]:
    """Empty the membership; returns the data keys to destroy once the transaction commits."""
    handles = [membership.data_key]
    membership.full_name = membership.phone = membership.department = membership.company = ""
    membership.kind, membership.user, membership.is_active = Membership.Kind.FORGOTTEN, None, False
    membership.host, membership.expires_at, membership.forgotten_at = None, None, now
    membership.save()
    return handles


def _forget_membership(membership: Membership, *, actor: User | None, why: str, now: datetime) -> list[str]:
    touched = _apply_registry(membership)
    cancelled = _cancel_messages(membership)
    user_id = membership.user_id
    handles = _erase(membership, now)
    record(actor=actor, organization=membership.site.organization, site=membership.site,
           action="person.forgotten", object_type="person", object_id=membership.pk,
           changes={"why": [None, why], "rows": [None, touched], "messages_cancelled": [None, cancelled],
                    "account": [None, "kept" if user_id and Membership.objects.filter(user_id=user_id).exists()
                                else ("deleted" if user_id else "none")]})
    return handles


def _delete_account(user: User) -> list[str]:
    _apply_registry(user)
    handles = [user.data_key]
    user.delete()
    return handles


def _destroy_on_commit(handles: list[str]) -> None:
    transaction.on_commit(lambda: destroy_data_keys(handles))


def forget_person(*, membership: Membership, actor: User | None, why: str) -> None:
    """Forget a person at one site (see the module's description). Their account goes too when it belongs
    to no other site. Permission is the caller's business: an administrator's request needs a second
    administrator's approval (four-eyes) before this runs."""
    now = timezone.now()
    with transaction.atomic():
        membership = Membership.records.select_for_update().select_related("site__organization").get(
            pk=membership.pk)
        if membership.kind == Membership.Kind.FORGOTTEN:
            return
        user = membership.user
        handles = _forget_membership(membership, actor=actor, why=why, now=now)
        if user is not None and not Membership.objects.filter(user=user).exists():
            handles += _delete_account(user)
        _destroy_on_commit(handles)


def forget_account(*, user: User, why: str) -> None:
    """A person deletes themselves: every membership is forgotten, the account deleted."""
    now = timezone.now()
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        handles: list[str] = []
        for membership in Membership.objects.select_for_update().select_related("site__organization").filter(
                user=user):
            handles += _forget_membership(membership, actor=user, why=why, now=now)
        handles += _delete_account(user)
        _destroy_on_commit(handles)


def purge_forgotten(now: datetime) -> int:
    """Forgotten memberships older than ``RP_FORGOTTEN_DAYS`` go, with the records that still name them;
    first, whoever a restored backup brought back is forgotten again (:func:`reapply`)."""
    reapply()
    cutoff = now - timedelta(days=settings.FORGOTTEN_DAYS)
    deleted = 0
    for pk in Membership.records.filter(kind=Membership.Kind.FORGOTTEN, forgotten_at__lt=cutoff).values_list(
            "pk", flat=True)[:1000]:
        with transaction.atomic():
            Membership.records.filter(pk=pk).delete()
            deleted += 1
    return deleted


def reapply() -> int:
    """Forget again whoever the key store lists as forgotten but the database still holds (a backup from
    before their deletion was restored). Their data cannot be read any more; this removes what is left."""
    gone = store().all_forgotten()
    if not gone:
        return 0
    done = 0
    members = list(Membership.objects.filter(data_key__in=gone))
    for membership in members:
        forget_person(membership=membership, actor=None, why="restored backup")
        done += 1
    for user in User.objects.filter(data_key__in=gone):
        with transaction.atomic():
            for membership in Membership.objects.filter(user=user):
                forget_person(membership=membership, actor=None, why="restored backup")
            if User.objects.filter(pk=user.pk).exists():
                _delete_account(user)
        done += 1
    return done


def request_deletion(*, actor: User, membership: Membership, reason: str):
    """An administrator asks to delete a person of their site. Under four eyes (the default) this returns the
    request, and a second administrator's approval carries it out (:func:`delete_person_approved`); else the
    person is forgotten at once and this returns None."""
    require_perm(actor, membership.site, Perm.MANAGE_PEOPLE)
    if membership.user_id is not None and membership.user_id == actor.pk:
        raise ValidationError(_("To delete yourself, use “Delete my data” in My account."))
    if membership.is_support:
        raise ValidationError(_("The support account is deleted with its own button."))
    organization = membership.site.organization
    if approvals.required(organization, approvals.Process.DELETE_PERSON):
        return approvals.request(process=approvals.Process.DELETE_PERSON, actor=actor, organization=organization,
                                 site=membership.site, subject={"membership": membership.pk}, reason=reason)
    forget_person(membership=membership, actor=actor, why="deleted by an administrator")
    return None


def delete_person_approved(approval, approver) -> None:
    """The approved deletion (audit.approvals)."""
    membership = Membership.objects.filter(pk=approval.subject.get("membership"), site_id=approval.site_id).first()
    if membership is None:
        raise ValidationError(_("The person was already deleted."))
    forget_person(membership=membership, actor=approver, why="deleted by an administrator")
