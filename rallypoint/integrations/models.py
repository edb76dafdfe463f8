"""API keys with which other systems (a fire-alarm panel, a building system) trigger alarms.

A key belongs to one site and may trigger only the scenarios it is scoped to.
Only a SHA-256 hash of the secret is stored; the secret is shown once.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rallypoint.alarms.models import Scenario
from rallypoint.people.models import Membership
from rallypoint.people.personal_data import declare
from rallypoint.tenants.models import Site, SiteScopedQuerySet


class ApiKey(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(_("name"), max_length=120)
    #: Public first part of the key ("rpk_" + 8 characters), shown in lists and logs.
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scenarios = models.ManyToManyField(Scenario, related_name="api_keys", verbose_name=_("scenarios"))
    #: May report who is on site (a time-recording or door-access system): POST /api/v1/presence.
    reports_presence = models.BooleanField(_("reports presence"), default=False)
    created_by = models.ForeignKey(Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    use_count = models.PositiveIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True)
    #: A key that may raise alarms works only once a second administrator approved it (four-eyes).
    approved = models.BooleanField(default=True)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return f"API key {self.prefix}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.approved


# --- Personal data: what these models hold about people, how long (rallypoint.people.personal_data) ---

declare(ApiKey, person=("created_by",), why=_("as long as the key exists"),
        erased=_("who created it is removed with the person; the key stays"),
        forget="keep")
