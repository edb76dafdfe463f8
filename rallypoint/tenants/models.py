"""Organisations, sites (the tenant boundary) and Super-admins.

Every row of tenant data carries its site. Code reaches tenant rows through
``for_site(site)`` querysets and the helpers in :mod:`rallypoint.tenants.scoping`.
The people of a site (memberships) and their groups live in :mod:`rallypoint.people`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rallypoint.people.personal_data import declare


class SiteScopedQuerySet(models.QuerySet):
    site_field = "site"

    def for_site(self, site):
        return self.filter(**{self.site_field: site})


class Organization(models.Model):
    """A customer. Holds sites; its Super-admins administer all of them."""

    name = models.CharField(_("name"), max_length=120)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class Site(models.Model):
    """One instance of Rallypoint for a customer: the tenant boundary."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="sites")
    name = models.CharField(_("name"), max_length=120)
    time_zone = models.CharField(_("time zone"), max_length=64, default="Europe/Berlin")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization__name", "name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="site_name_unique_in_org")
        ]

    def __str__(self) -> str:
        return self.name


class SuperAdmin(models.Model):
    """Org-level role: Administrator rights on every site of the organisation."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="super_admins")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="super_admin_of")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="one_super_admin_row")]

    def __str__(self) -> str:
        return f"Super-admin #{self.user_id} of organisation #{self.organization_id}"


# --- Personal data: what these models hold about people, how long (rallypoint.people.personal_data) ---

declare(SuperAdmin, person=("user",), why=_("as long as the person is Super-admin"),
        erased=_("deleted when revoked, and with the account"),
        forget="delete")
