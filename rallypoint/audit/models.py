"""The audit trail (seed: Eingabekontrolle).

An entry says who changed which structure or personal data, when (UTC), and
field-level old → new. Values of personal fields are stored as keyed
fingerprints, never in clear. Entries belong to a site (or, for org-level
changes such as a new site or a Super-admin grant, to the organisation only).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rallypoint.tenants.models import Organization, Site


class AuditEntry(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    action = models.CharField(_("action"), max_length=64)
    object_type = models.CharField(_("object type"), max_length=32)
    object_id = models.CharField(_("object"), max_length=64)
    changes = models.JSONField(default=dict, blank=True)
    batch = models.UUIDField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["site", "-at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type} #{self.object_id}"
