"""Each site's append-only event stream.

Every event that clients see live is first a row here with the next sequence
number of its site, written in the transaction of the change it reports. A
client that reconnects says the last number it saw and gets every later row.
Payloads hold ids, counts and texts of the alarm itself, never personal data.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rallypoint.people.personal_data import declare
from rallypoint.tenants.models import Site, SiteScopedQuerySet


class SiteStream(models.Model):
    """The sequence counter of one site's stream (row-locked while an event is appended)."""

    site = models.OneToOneField(Site, on_delete=models.CASCADE, primary_key=True, related_name="+")
    last_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"Stream of site #{self.site_id}"


class StreamEvent(models.Model):
    class Audience(models.TextChoices):
        SITE = "site"  # everyone signed in at the site
        ALARM = "alarm"  # the alarm's recipients and the crisis team (alarms.view_cockpit)
        COCKPIT = "cockpit"  # the crisis team only
        PERM = "perm"  # holders of the permission in ``perm``
        PEOPLE = "people"  # the people (membership ids) in ``members``

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    seq = models.BigIntegerField()
    type = models.CharField(max_length=40)
    audience = models.CharField(max_length=8, choices=Audience.choices, default=Audience.SITE)
    #: Audience "perm": the permission (``tenants.roles.Perm``) a viewer must hold.
    perm = models.CharField(max_length=40, blank=True, default="")
    #: Audience "people": their membership ids (for the replay; live, the hub carries them).
    members = models.JSONField(null=True, blank=True)
    alarm_id = models.BigIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict)
    at = models.DateTimeField(default=timezone.now)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["site", "seq"]
        constraints = [models.UniqueConstraint(fields=["site", "seq"], name="stream_seq_unique_in_site")]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq} of site #{self.site_id}"


# --- Personal data: what these models hold about people, how long (rallypoint.people.personal_data) ---

declare(StreamEvent, fields=("payload", "members"), kept="STREAM_RETENTION_DAYS",
        why=_("live updates, for an app that reconnects"), erased=_("deleted after this time"),
        purge="rallypoint.realtime.events.purge_old")
