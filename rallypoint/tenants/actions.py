"""Changes to organisations, sites, groups and the Super-admin role.

Each function checks permission (``actor=None`` is the system itself: the
demo seed, a management command), writes its rows and its audit entry in one
transaction.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from rallypoint.accounts.models import User
from rallypoint.audit.actions import diff, record, record_security_event
from rallypoint.audit.models import SecurityEvent
from rallypoint.people.actions import create_person
from rallypoint.people.models import Membership
from rallypoint.tenants.models import Organization, Site, SuperAdmin
from rallypoint.tenants.roles import SUPER_ADMIN, Perm, Role
from rallypoint.tenants.scoping import require_perm

SUPPORT_NAME = "Rallypoint Support"


def _is_super_admin(user, organization: Organization) -> bool:
    return SuperAdmin.objects.filter(organization=organization, user=user).exists()


def create_organization(*, name: str) -> Organization:
    return Organization.objects.create(name=name.strip())


def set_up_organization(*, name: str, site_name: str, time_zone: str, email: str, full_name: str) -> Membership:
    """An organisation with its first site and first Super-admin, who is also that site's Administrator.

    Done by the system (``rallypoint setup``), in one transaction. An existing account with this
    e-mail (from another organisation) gets the membership and the role; nothing else of it changes.
    Returns the Super-admin's membership.
    """
    if Organization.objects.filter(name=name.strip()).exists():
        raise ValidationError({"organization": _("An organisation with this name already exists.")})
    with transaction.atomic():
        organization = create_organization(name=name)
        site = create_site(actor=None, organization=organization, name=site_name, time_zone=time_zone)
        membership = create_person(actor=None, site=site, data={"email": email, "full_name": full_name,
                                                                 "role": Role.ADMIN})
        grant_super_admin(actor=None, organization=organization, user=membership.user)
    return membership


def create_site(*, actor, organization: Organization, name: str, time_zone: str = "Europe/Berlin") -> Site:
    """Create a site and its support account (an Administrator without a usable password)."""
    if actor is not None and not _is_super_admin(actor, organization):
        raise PermissionDenied
    name = name.strip()
    if Site.objects.filter(organization=organization, name=name).exists():
        raise ValidationError({"name": _("A site with this name already exists.")})
    with transaction.atomic():
        site = Site.objects.create(organization=organization, name=name, time_zone=time_zone)
        record(actor=actor, organization=organization, site=site, action="site.created",
               object_type="site", object_id=site.pk, changes=diff({}, {"name": name, "time_zone": time_zone}))
        support = User.objects.create_user(
            f"support+site{site.pk}@{settings.SUPPORT_EMAIL_DOMAIN}", is_support=True
        )
        membership = Membership.objects.create(site=site, user=support, role=Role.ADMIN, full_name=SUPPORT_NAME)
        record(actor=actor, organization=organization, site=site, action="person.created",
               object_type="person", object_id=membership.pk,
               changes=diff({}, {"email": support.email, "full_name": SUPPORT_NAME, "role": Role.ADMIN,
                                 "support_account": True}))
    return site


def update_site(*, actor, site: Site, name: str, time_zone: str) -> Site:
    require_perm(actor, site, Perm.MANAGE_SITE)
    name = name.strip()
    if Site.objects.filter(organization=site.organization, name=name).exclude(pk=site.pk).exists():
        raise ValidationError({"name": _("A site with this name already exists.")})
    before = {"name": site.name, "time_zone": site.time_zone}
    with transaction.atomic():
        site.name, site.time_zone = name, time_zone
        site.save(update_fields=["name", "time_zone"])
        changes = diff(before, {"name": name, "time_zone": time_zone})
        if changes:
            record(actor=actor, organization=site.organization, site=site, action="site.updated",
                   object_type="site", object_id=site.pk, changes=changes)
    return site


def delete_site(*, actor, site: Site) -> None:
    """Delete a site with everything in it. The organisation keeps one audit entry of it."""
    organization = site.organization
    if actor is not None and not _is_super_admin(actor, organization):
        raise PermissionDenied
    if organization.sites.count() <= 1:
        raise ValidationError(_("The last site of an organisation cannot be deleted."))
    with transaction.atomic():
        site_id, name = site.pk, site.name
        support_users = list(User.objects.filter(is_support=True, memberships__site=site))
        site.delete()
        for user in support_users:
            if not user.memberships.exists():
                user.delete()
        record(actor=actor, organization=organization, site=None, action="site.deleted",
               object_type="site", object_id=site_id, changes=diff({"name": name}, {}))


def grant_super_admin(*, actor, organization: Organization, user) -> SuperAdmin:
    if actor is not None and not _is_super_admin(actor, organization):
        raise PermissionDenied
    if not Membership.objects.filter(site__organization=organization, user=user).exists():
        raise ValidationError(_("Only people of one of the organisation's sites can become Super-admins."))
    with transaction.atomic():
        row, created = SuperAdmin.objects.get_or_create(organization=organization, user=user)
        if created:
            record(actor=actor, organization=organization, site=None, action="role.granted",
                   object_type="user", object_id=user.pk, changes={"role": [None, SUPER_ADMIN]})
            record_security_event(SecurityEvent.Kind.ROLE_GRANTED, user=user, organization=organization,
                                  actor=actor, detail={"role": SUPER_ADMIN})
    return row


def revoke_super_admin(*, actor, organization: Organization, user) -> None:
    if actor is not None and not _is_super_admin(actor, organization):
        raise PermissionDenied
    if actor is not None and actor.pk == user.pk:
        raise ValidationError(_("You cannot revoke your own Super-admin role."))
    with transaction.atomic():
        deleted, _unused = SuperAdmin.objects.filter(organization=organization, user=user).delete()
        if deleted:
            record(actor=actor, organization=organization, site=None, action="role.revoked",
                   object_type="user", object_id=user.pk, changes={"role": [SUPER_ADMIN, None]})
            record_security_event(SecurityEvent.Kind.ROLE_REVOKED, user=user, organization=organization,
                                  actor=actor, detail={"role": SUPER_ADMIN})


def grant_super_admin_approved(approval, approver) -> None:
    """The approved grant (audit.approvals)."""
    user = User.objects.filter(pk=approval.subject.get("user")).first()
    if user is None:
        raise ValidationError(_("The account no longer exists."))
    grant_super_admin(actor=approver, organization=approval.organization, user=user)


def delete_site_approved(approval, approver) -> None:
    """The approved deletion of a site (audit.approvals)."""
    site = Site.objects.filter(pk=approval.subject.get("site"), organization_id=approval.organization_id).first()
    if site is None:
        raise ValidationError(_("The site was already deleted."))
    delete_site(actor=approver, site=site)
