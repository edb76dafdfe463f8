"""Changes to the people of a site: create, invite, edit, (de)activate, import, export (moved here from
``accounts``: people and their lifecycle belong to the people app; ``accounts`` keeps sign-in).

A person at a site is a :class:`~rallypoint.people.models.Membership` (name,
role, phone, department) of a :class:`~rallypoint.accounts.models.User` (the
e-mail they sign in with). Every function checks permission and writes its audit entries in the
same transaction as the change.
"""

from __future__ import annotations

import csv
import io
import uuid

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from rallypoint.accounts import apptokens, messages
from rallypoint.accounts.forms import PersonForm
from rallypoint.accounts.models import AppToken, User, email_index, normalize_email
from rallypoint.accounts.sessions import end_sessions
from rallypoint.audit import approvals
from rallypoint.audit.actions import diff, record, record_security_event
from rallypoint.audit.models import SecurityEvent
from rallypoint.lib.csvfile import ImportErrors, read_csv
from rallypoint.lib.csvfile import csv_safe as _csv_safe
from rallypoint.notify import outbox
from rallypoint.people.models import NOT_SUPPORT, Group, Membership
from rallypoint.tenants.models import Site, SuperAdmin
from rallypoint.tenants.roles import Perm, Role
from rallypoint.tenants.scoping import require_perm

CSV_COLUMNS = ("full_name", "email", "phone", "department", "role", "groups")
#: Several groups in one CSV cell ("Class 5a|Choir").
GROUP_SEPARATOR = "|"


def person_state(membership: Membership) -> dict:
    return {"email": membership.email, "full_name": membership.full_name, "phone": membership.phone,
            "department": membership.department, "role": membership.role, "active": membership.is_active}


def _audit(actor, membership: Membership, action: str, changes: dict, batch=None) -> None:
    site = membership.site
    record(actor=actor, organization=site.organization, site=site, action=action,
           object_type="person", object_id=membership.pk, changes=changes, batch=batch)


def identity_editable_by(user: User, site: Site) -> bool:
    """The e-mail is the one thing shared across sites; only change it within one organisation.

    A person who also belongs to another organisation's site keeps their e-mail
    under their own control, so one customer cannot change another's sign-in.
    """
    org_id = site.organization_id
    foreign_site = user.memberships.exclude(site__organization_id=org_id).exists()
    foreign_org = SuperAdmin.objects.filter(user=user).exclude(organization_id=org_id).exists()
    return not (foreign_site or foreign_org)


def create_person(*, actor, site: Site, data: dict, batch=None) -> Membership:
    """Add a person to the site; an existing account (same e-mail) gets a membership here. Without an e-mail
    address the person is listed without a login (a pupil, a patient, a contractor): counted in an evacuation,
    never alerted, until an address is added and they are invited."""
    require_perm(actor, site, Perm.MANAGE_PEOPLE)
    email = normalize_email(data.get("email") or "")
    if not email:
        return _create_listed(actor, site, data, batch)
    with transaction.atomic():
        user = User.objects.by_email(email).first()
        if user is None:
            user = User.objects.create_user(email)
        elif Membership.objects.filter(site=site, user=user).exists():
            raise ValidationError({"email": _("This person already belongs to this site.")})
        role = data["role"]
        asks_for_admin = role == Role.ADMIN and actor is not None
        membership = Membership.objects.create(
            site=site, user=user, role=Role.EMPLOYEE if asks_for_admin else role, full_name=data["full_name"],
            phone=data.get("phone", ""), department=data.get("department", ""),
        )
        _audit(actor, membership, "person.created", diff({}, person_state(membership)), batch)
        record_security_event(SecurityEvent.Kind.ROLE_GRANTED, user=user, site=site, actor=actor,
                              detail={"role": membership.role})
        if asks_for_admin:
            membership.pending_approval = _ask_for_admin(actor, membership)
    return membership


def _ask_for_admin(actor, membership: Membership):
    """The Administrator role is granted only after a second administrator approves (four-eyes)."""
    return approvals.request(process=approvals.Process.GRANT_ADMIN, actor=actor,
                             organization=membership.site.organization, site=membership.site,
                             subject={"membership": membership.pk})


def grant_admin_approved(approval, approver) -> None:
    """The approved grant (audit.approvals): the person becomes an Administrator of the site."""
    membership = Membership.objects.select_for_update().filter(
        pk=approval.subject.get("membership"), site_id=approval.site_id).first()
    if membership is None or not membership.is_active or membership.user_id is None:
        raise ValidationError(_("The person is no longer active at the site."))
    before = membership.role
    if before == Role.ADMIN:
        return
    membership.role = Role.ADMIN
    membership.save(update_fields=["role"])
    _audit(approver, membership, "role.granted", {"role": [before, Role.ADMIN], "approval": [None, approval.pk]})
    record_security_event(SecurityEvent.Kind.ROLE_GRANTED, user=membership.user, site=membership.site,
                          actor=approver, detail={"role": Role.ADMIN, "previous": before, "approval": approval.pk})


def _no_admin_without_sign_in(data: dict) -> None:
    if data.get("role") == Role.ADMIN:
        raise ValidationError({"role": _("An Administrator signs in: enter an e-mail address.")})


def _create_listed(actor, site: Site, data: dict, batch) -> Membership:
    _no_admin_without_sign_in(data)
    with transaction.atomic():
        membership = Membership.objects.create(
            site=site, kind=Membership.Kind.LISTED, user=None, role=data["role"], full_name=data["full_name"],
            phone=data.get("phone", ""), department=data.get("department", ""))
        _audit(actor, membership, "person.created", diff({}, person_state(membership)), batch)
    return membership


def _update_listed(actor, membership: Membership, data: dict, batch) -> Membership:
    """A person without a login: their fields; with an e-mail address they get an account (and can be invited)."""
    site = membership.site
    before = person_state(membership)
    email = normalize_email(data.get("email") or "")
    if not email:
        _no_admin_without_sign_in(data)
    asks_for_admin = data["role"] == Role.ADMIN and actor is not None
    with transaction.atomic():
        if email:
            user = User.objects.by_email(email).first()
            if user is not None and Membership.objects.filter(site=site, user=user).exists():
                raise ValidationError({"email": _("Another person of this site already uses this e-mail address.")})
            if user is not None:
                raise ValidationError({"email": _("Another account already uses this e-mail address.")})
            membership.user, membership.kind = User.objects.create_user(email), Membership.Kind.MEMBER
        membership.full_name = data["full_name"]
        membership.role = before["role"] if asks_for_admin else data["role"]
        membership.phone, membership.department = data.get("phone", ""), data.get("department", "")
        membership.save(update_fields=["user", "kind", "full_name", "phone", "department", "role"])
        changes = diff(before, person_state(membership))
        if changes:
            _audit(actor, membership, "person.updated", changes, batch)
        if asks_for_admin:
            membership.pending_approval = _ask_for_admin(actor, membership)
    return membership


def update_own_details(*, user: User, membership: Membership, full_name: str, phone: str) -> Membership:
    """A person changes their own name and phone in a site (My account); audited like an administrator's
    change. Role, e-mail and department stay with the administrators."""
    if membership.user_id != user.pk:
        raise PermissionDenied
    full_name = full_name.strip()
    if not full_name:
        raise ValidationError({"full_name": _("Enter your name.")})
    before = person_state(membership)
    with transaction.atomic():
        membership.full_name, membership.phone = full_name, phone.strip()
        membership.save(update_fields=["full_name", "phone"])
        changes = diff(before, person_state(membership))
        if changes:
            _audit(user, membership, "person.updated", changes)
    return membership


def update_person(*, actor, membership: Membership, data: dict, batch=None) -> Membership:
    site = membership.site
    require_perm(actor, site, Perm.MANAGE_PEOPLE)
    if membership.user_id is None:
        return _update_listed(actor, membership, data, batch)
    if not (data.get("email") or "").strip():
        raise ValidationError({"email": _("Someone who signs in keeps an e-mail address; deactivate them instead.")})
    user = membership.user
    before = person_state(membership)
    data = {**data, "email": normalize_email(data["email"])}
    if data["email"] != before["email"] and not identity_editable_by(user, site):
        raise ValidationError({"email": _("This person also belongs to another organisation, so only they "
                                          "can change their e-mail address.")})
    if data["email"] != user.email and User.objects.by_email(data["email"]).exists():
        raise ValidationError({"email": _("Another account already uses this e-mail address.")})
    if actor is not None and actor.pk == user.pk and data["role"] != before["role"]:
        raise ValidationError({"role": _("You cannot change your own role.")})
    asks_for_admin = data["role"] == Role.ADMIN and before["role"] != Role.ADMIN and actor is not None
    with transaction.atomic():
        if data["email"] != user.email:
            user.email = data["email"]
            user.save(update_fields=["email"])
        membership.full_name = data["full_name"]
        membership.role = before["role"] if asks_for_admin else data["role"]
        membership.phone, membership.department = data.get("phone", ""), data.get("department", "")
        membership.save(update_fields=["full_name", "phone", "department", "role"])
        after = person_state(membership)
        role_change = diff({"role": before["role"]}, {"role": after["role"]})
        if role_change:
            _audit(actor, membership, "role.granted", role_change, batch)
            record_security_event(SecurityEvent.Kind.ROLE_GRANTED, user=user, site=site, actor=actor,
                                  detail={"role": after["role"], "previous": before["role"]})
        changes = diff({k: v for k, v in before.items() if k != "role"},
                       {k: v for k, v in after.items() if k != "role"})
        if changes:
            _audit(actor, membership, "person.updated", changes, batch)
        if asks_for_admin:
            membership.pending_approval = _ask_for_admin(actor, membership)
    return membership


def set_people_active(*, actor, site: Site, memberships, active: bool) -> int:
    """Deactivate or reactivate several people at once (one audit batch)."""
    require_perm(actor, site, Perm.MANAGE_PEOPLE)
    memberships = [m for m in memberships if m.is_active != active]
    if any(m.site_id != site.pk for m in memberships):
        raise PermissionDenied
    if not active and actor is not None and any(m.user_id == actor.pk for m in memberships):
        raise ValidationError(_("You cannot deactivate yourself."))
    batch = uuid.uuid4() if len(memberships) > 1 else None
    kind = SecurityEvent.Kind.ROLE_GRANTED if active else SecurityEvent.Kind.ROLE_REVOKED
    with transaction.atomic():
        for membership in memberships:
            membership.is_active = active
            membership.deactivated_at = None if active else timezone.now()
            membership.save(update_fields=["is_active", "deactivated_at"])
            _audit(actor, membership, "person.activated" if active else "person.deactivated",
                   {"active": [not active, active]}, batch)
            if membership.user_id is None:
                continue  # listed without a login: no sign-in to grant or end
            record_security_event(kind, user=membership.user, site=site, actor=actor,
                                  detail={"role": membership.role})
            if not active:
                apptokens.revoke(AppToken.objects.filter(user=membership.user, site=site), actor=actor)
                if not has_any_access(membership.user):
                    end_sessions(membership.user)  # nothing left to work in: signed out at once
    return len(memberships)


def has_any_access(user: User) -> bool:
    return (Membership.objects.filter(user=user, is_active=True).exists()
            or SuperAdmin.objects.filter(user=user).exists())


def end_person_sessions(*, actor, membership: Membership) -> int:
    """An administrator signs a person out on every device (e.g. a lost phone)."""
    require_perm(actor, membership.site, Perm.MANAGE_PEOPLE)
    if membership.user_id is None:
        return 0
    # Sessions are not per site: only an organisation that holds all of the person's access ends them.
    ended = end_sessions(membership.user) if identity_editable_by(membership.user, membership.site) else 0
    ended += apptokens.revoke(AppToken.objects.filter(user=membership.user, site=membership.site), actor=actor)
    record_security_event(SecurityEvent.Kind.SESSION_REVOKED, user=membership.user, site=membership.site,
                          actor=actor, detail={"all": True, "count": ended})
    return ended


def delete_support_account(*, actor, membership: Membership) -> None:
    """The customer may remove the operator's support account at any time; it is not re-created."""
    site = membership.site
    require_perm(actor, site, Perm.MANAGE_PEOPLE)
    if not membership.is_support:
        raise ValidationError(_("Only the support account can be deleted; deactivate other people."))
    with transaction.atomic():
        before = person_state(membership)
        user, membership_id = membership.user, membership.pk
        membership.delete()
        if not user.memberships.exists():
            user.delete()
        record(actor=actor, organization=site.organization, site=site, action="person.deleted",
               object_type="person", object_id=membership_id, changes=diff(before, {}))


def invite_person(*, actor, membership: Membership) -> None:
    """Queue an e-mail with which the person gets in: a single-use link (24 h) to set their password, or,
    for someone who already signs in with an account of another organisation, a note that this site is
    now theirs too. The administrator is answered the same either way: whether an address has an account
    elsewhere is not theirs to learn. The worker sends it (and retries when the mail server fails)."""
    site = membership.site
    require_perm(actor, site, Perm.MANAGE_PEOPLE)
    user = membership.user
    if user is None:
        raise ValidationError(_("Add an e-mail address first: this person is listed without a login."))
    if not (membership.is_active and user.is_active) or user.is_support:
        raise ValidationError(_("Only active people can be invited."))
    kind = messages.INVITATION
    if user.has_usable_password() and not identity_editable_by(user, site):
        kind = messages.SITE_ACCESS  # their password is not this organisation's to set
    with transaction.atomic():
        outbox.queue(kind, site=site, membership=membership, context={"language": translation.get_language()})
        _audit(actor, membership, "person.invited", {})


# --- Groups -----------------------------------------------------------------------------------------


def _group_state(group: Group) -> dict:
    return {"name": group.name, "description": group.description,
            "members": sorted(group.members.values_list("pk", flat=True))}


def _check_members(site: Site, members) -> list[Membership]:
    members = list(members)
    if any(m.site_id != site.pk for m in members):
        raise PermissionDenied
    return members


def save_group(*, actor, site: Site, group: Group | None, name: str, description: str,
               members) -> Group:
    """Create (``group=None``) or change a group of the site."""
    require_perm(actor, site, Perm.MANAGE_GROUPS)
    members = _check_members(site, members)
    name = name.strip()
    clash = Group.objects.for_site(site).filter(name=name)
    if group is not None:
        if group.site_id != site.pk:
            raise PermissionDenied
        clash = clash.exclude(pk=group.pk)
    if clash.exists():
        raise ValidationError({"name": _("A group with this name already exists.")})
    with transaction.atomic():
        before = _group_state(group) if group else {}
        if group is None:
            group = Group.objects.create(site=site, name=name, description=description)
        else:
            group.name, group.description = name, description
            group.save(update_fields=["name", "description"])
        group.members.set(members)
        changes = diff(before, _group_state(group))
        if changes:
            record(actor=actor, organization=site.organization, site=site,
                   action="group.updated" if before else "group.created",
                   object_type="group", object_id=group.pk, changes=changes)
    return group


def delete_group(*, actor, group: Group) -> None:
    site = group.site
    require_perm(actor, site, Perm.MANAGE_GROUPS)
    with transaction.atomic():
        before = _group_state(group)
        group_id = group.pk
        group.delete()
        record(actor=actor, organization=site.organization, site=site, action="group.deleted",
               object_type="group", object_id=group_id, changes=diff(before, {}))


def _read_csv(text: str) -> list[tuple[int, dict]]:
    return read_csv(text, required={"full_name"}, columns=CSV_COLUMNS)


def _group_names(cell: str) -> list[str]:
    return [name.strip() for name in (cell or "").split(GROUP_SEPARATOR) if name.strip()]


def _join_groups(membership: Membership, site: Site, names: list[str], batch) -> None:
    """Add the person to the named groups of the site, creating a group that does not exist yet."""
    for name in names:
        group = Group.objects.for_site(site).filter(name=name).first()
        if group is None:
            group = Group.objects.create(site=site, name=name)
            record(actor=None, organization=site.organization, site=site, action="group.created",
                   object_type="group", object_id=group.pk, changes={"name": [None, name]}, batch=batch)
        group.members.add(membership)


def _listed_match(site: Site, name: str):
    """A person without a login is known by name only: the listed person of the site with this name, if one."""
    for membership in Membership.objects.for_site(site).filter(kind=Membership.Kind.LISTED):
        if membership.full_name == name:
            return membership
    return None


def import_people(*, actor, site: Site, text: str) -> dict:
    """Create or update the site's people from CSV; all rows or none.

    Returns counts. Raises :class:`ImportErrors` with (line, message) pairs when any
    row is invalid, and then nothing is written.
    """
    require_perm(actor, site, Perm.MANAGE_PEOPLE)
    rows = _read_csv(text)
    errors, cleaned, seen = [], [], set()
    for line, row in rows:
        form = PersonForm({**row, "role": row.get("role") or "employee"})
        if not form.is_valid():
            for field, messages in form.errors.items():
                errors.extend((line, f"{field}: {message}") for message in messages)
            continue
        key = form.cleaned_data["email"] or ("name", form.cleaned_data["full_name"])
        if key in seen:
            errors.append((line, _("This e-mail address appears twice in the file.") if form.cleaned_data["email"]
                           else _("This name without an e-mail address appears twice in the file.")))
        seen.add(key)
        groups = _group_names(row.get("groups", ""))
        if any(len(name) > 120 for name in groups):
            errors.append((line, _("A group's name may have at most 120 characters.")))
        cleaned.append((line, {**form.cleaned_data, "groups": groups}))
    if errors:
        raise ImportErrors(errors)
    batch = uuid.uuid4()
    created = updated = 0
    with transaction.atomic():
        for line, row in cleaned:
            groups = row.pop("groups")
            data = {**row, "email": row["email"] or ""}
            if data["email"]:
                existing = Membership.objects.for_site(site).filter(
                    user__email_index=email_index(data["email"])).first()
            else:
                existing = _listed_match(site, data["full_name"])
            try:
                if existing is None:
                    existing = create_person(actor=actor, site=site, data=data, batch=batch)
                    created += 1
                elif person_state(existing) | data != person_state(existing):
                    update_person(actor=actor, membership=existing, data=data, batch=batch)
                    updated += 1
                _join_groups(existing, site, groups, batch)
            except ValidationError as exc:
                raise ImportErrors([(line, " ".join(exc.messages))]) from None
    return {"created": created, "updated": updated, "unchanged": len(cleaned) - created - updated}


def export_people(*, actor, site: Site) -> str:
    """The site's people (without the support account) as CSV, which :func:`import_people` reads back.

    Every cell is defused against spreadsheet formulas (:func:`_csv_safe`)."""
    require_perm(actor, site, Perm.MANAGE_PEOPLE)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*CSV_COLUMNS, "active"])
    people = (Membership.objects.for_site(site).people().select_related("user").filter(NOT_SUPPORT)
              .prefetch_related("groups"))
    for m in people.by_name():
        groups = GROUP_SEPARATOR.join(sorted(g.name for g in m.groups.all()))
        cells = [m.full_name, m.email, m.phone, m.department, m.role, groups, "yes" if m.is_active else "no"]
        writer.writerow([_csv_safe(cell) for cell in cells])
    record(actor=actor, organization=site.organization, site=site, action="people.exported",
           object_type="site", object_id=site.pk, changes={"count": [None, people.count()]})
    return out.getvalue()


def request_second_factor_reset(*, actor, membership: Membership):
    """An administrator asks to reset a person's second factor (the phone is lost, no recovery code left); a
    second administrator approves (four-eyes), then :func:`second_factor_reset_approved` removes every factor
    and the person sets a new one at their next sign-in."""
    require_perm(actor, membership.site, Perm.MANAGE_PEOPLE)
    _check_resettable(actor, membership)
    organization = membership.site.organization
    if approvals.required(organization, approvals.Process.RESET_SECOND_FACTOR):
        return approvals.request(process=approvals.Process.RESET_SECOND_FACTOR, actor=actor,
                                 organization=organization, site=membership.site, subject={"membership": membership.pk})
    _reset_second_factor(actor, membership)
    return None


def _check_resettable(actor, membership: Membership) -> None:
    user = membership.user
    if user is None or not (user.totp_devices.exists() or user.passkeys.exists()):
        raise ValidationError(_("This person has no second factor."))
    if actor is not None and user.pk == actor.pk:
        raise ValidationError(_("You manage your own second factor in My account."))
    if not identity_editable_by(user, membership.site):
        raise ValidationError(_("This person also belongs to another organisation: their second factor is theirs "
                                "to manage."))


def second_factor_reset_approved(approval, approver) -> None:
    membership = Membership.objects.filter(pk=approval.subject.get("membership"), site_id=approval.site_id).first()
    if membership is None:
        raise ValidationError(_("The person was deleted meanwhile."))
    _check_resettable(None, membership)
    _reset_second_factor(approver, membership)


def _reset_second_factor(actor, membership: Membership) -> None:
    user = membership.user
    with transaction.atomic():
        user.totp_devices.all().delete()
        user.passkeys.all().delete()
        user.recovery_codes.all().delete()
        record_security_event(SecurityEvent.Kind.SECOND_FACTOR_REMOVED, user=user, site=membership.site, actor=actor,
                              detail={"reset": True})
        _audit(actor, membership, "second_factor.reset", {"second_factor": ["set", None]})
        end_sessions(user)
