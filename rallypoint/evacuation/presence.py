"""Who is on site: arrivals and departures from the app, an entrance's QR code, the visitor registration, the
roll call (a walk-in), and time-recording or door-access systems through the API.

A presence ends when the person leaves or at the end of the site's day (``expires_at``); the rows are kept
``settings.PRESENCE_HISTORY_DAYS`` as each person's last known place, then purged.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, time, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from rallypoint.audit.actions import record
from rallypoint.evacuation.models import Building, Presence, Source, StatusReport, Zone
from rallypoint.lib.text import clean_text
from rallypoint.people.models import Membership
from rallypoint.tenants.models import Site
from rallypoint.tenants.roles import Role


def end_of_day(site: Site, now: datetime | None = None) -> datetime:
    """Midnight after ``now`` in the site's time zone: when a presence or a visit ends unless it ends earlier."""
    local = timezone.localtime(now or timezone.now(), zoneinfo.ZoneInfo(site.time_zone))
    return datetime.combine(local.date() + timedelta(days=1), time.min, tzinfo=local.tzinfo)


def arrive(*, membership: Membership, source: str, building: Building | None = None, zone: Zone | None = None,
           now: datetime | None = None) -> Presence:
    """Record that ``membership`` is on site now (a new row: the history is the last known place)."""
    now = now or timezone.now()
    for place in (building, zone):
        if place is not None and place.site_id != membership.site_id:
            raise ValidationError(_("There is no such place at this site."))
    if zone is not None and building is None:
        building = zone.floor.building
    return Presence.objects.create(site_id=membership.site_id, membership=membership, source=source,
                                   building=building, zone=zone, arrived_at=now,
                                   expires_at=end_of_day(membership.site, now))


def leave(*, membership: Membership, now: datetime | None = None) -> int:
    """End ``membership``'s current presences; returns how many were open."""
    now = now or timezone.now()
    return Presence.objects.for_site(membership.site_id).current(now).filter(membership=membership).update(left_at=now)


def is_present(membership: Membership, now: datetime | None = None) -> bool:
    return Presence.objects.for_site(membership.site_id).current(now).filter(membership=membership).exists()


def register_visitor(*, site: Site, full_name: str, company: str = "", host: Membership | None = None,
                     source: str = Source.VISITOR, actor=None) -> Membership:
    """A visitor (or a walk-in at the assembly point): listed without an account, present until the end of the
    day, signed out then."""
    full_name, company = clean_text(full_name).strip(), clean_text(company).strip()
    if not full_name:
        raise ValidationError({"full_name": _("Enter the name.")})
    if len(full_name) > 120 or len(company) > 120:
        raise ValidationError({"full_name": _("Use at most 120 characters.")})
    if host is not None and host.site_id != site.pk:
        raise ValidationError({"host": _("There is no such person at this site.")})
    with transaction.atomic():
        visitor = Membership.objects.create(site=site, kind=Membership.Kind.VISITOR, user=None, full_name=full_name,
                                            company=company, host=host, role=Role.GUEST,
                                            expires_at=end_of_day(site))
        arrive(membership=visitor, source=source)
        record(actor=actor, organization=site.organization, site=site, action="visitor.registered",
               object_type="person", object_id=visitor.pk,
               changes={"kind": [None, Membership.Kind.VISITOR], "registered_through": [None, source]})
    return visitor


def purge_expired(now: datetime | None = None) -> int:
    """Delete presences older than the history kept (``RP_PRESENCE_HISTORY_DAYS``), and visitors whose visit
    ended that long ago, unless an alarm's record names them (a status report: kept with the alarm)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.PRESENCE_HISTORY_DAYS)
    deleted, _per_model = Presence.objects.filter(arrived_at__lt=cutoff).delete()
    recorded = StatusReport.objects.values("membership_id")
    visitors = (Membership.objects.filter(kind=Membership.Kind.VISITOR, expires_at__lt=cutoff)
                .exclude(pk__in=recorded).exclude(presences__isnull=False))
    gone, _per_model = visitors.delete()
    return deleted + gone
