"""The people of a site: memberships (a person at a site, their role and personal data) and groups.

Moved here from ``tenants`` (their tables keep their names: ``tenants_membership``, ``tenants_group``,
``tenants_group_members``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rallypoint.tenants.encryption import EncryptedTextField, new_row_key
from rallypoint.tenants.models import Site, SiteScopedQuerySet
from rallypoint.tenants.roles import Role


class MembershipQuerySet(SiteScopedQuerySet):
    def active(self):
        return self.filter(is_active=True, user__is_active=True)

    def alertable(self):
        """The people an alarm may reach: active, and not the operator's support account (it is there to
        help set the site up, not to be alerted)."""
        return self.active().filter(user__is_support=False)

    def headcount(self) -> dict[str, int]:
        """How many people, the way every page counts them (one query): ``active`` — those an alarm can
        reach (:meth:`alertable`); ``deactivated`` — the person or their account switched off; ``support``
        — the operator's support accounts, which are counted in neither."""
        people, switched_on = models.Q(user__is_support=False), models.Q(is_active=True, user__is_active=True)
        return self.aggregate(active=models.Count("pk", filter=people & switched_on),
                              deactivated=models.Count("pk", filter=people & ~switched_on),
                              support=models.Count("pk", filter=models.Q(user__is_support=True)))

    def by_name(self) -> list:
        """The rows sorted by name: names are encrypted, so this sorts in Python."""
        return sorted(self, key=lambda m: (m.full_name.casefold(), m.pk))


class Membership(models.Model):
    """A person at a site: their role and their personal data as this site knows it."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    row_key = models.CharField(max_length=32, default=new_row_key, editable=False)
    full_name = EncryptedTextField(_("name"))
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.EMPLOYEE)
    phone = EncryptedTextField(_("phone"), blank=True)
    department = EncryptedTextField(_("department"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        db_table = "tenants_membership"
        constraints = [models.UniqueConstraint(fields=["site", "user"], name="one_membership_per_site")]

    def __str__(self) -> str:  # no personal data: used in places that may be logged
        return f"Membership #{self.pk}"


class Group(models.Model):
    """A named set of people at one site (e.g. "Evacuation helpers, building A")."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(_("name"), max_length=120)
    description = models.CharField(_("description"), max_length=500, blank=True)
    members = models.ManyToManyField(Membership, related_name="groups", blank=True, db_table="tenants_group_members")
    created_at = models.DateTimeField(default=timezone.now)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        db_table = "tenants_group"
        ordering = ["name", "pk"]
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="group_name_unique_in_site")]

    def __str__(self) -> str:
        return self.name
