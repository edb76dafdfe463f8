"""Links for wall screens: the cockpit's numbers of a site, read-only, without names and without signing in.

A crisis room or a gatehouse shows the site's active alarms on a screen that nobody signs in to and that must
not be signed out after half an hour. A link made by the crisis team (``alarms.manage``) opens that view; it
names one site and nothing else, and shows counts and zone states only (no person's name, no floor plan, no
way to act). Only a hash of its secret is stored; revoking it ends the screen's view at its next refresh.
Making and revoking are audited; the link records when it was last used.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from rallypoint.alarms.actions import counts as alarm_counts
from rallypoint.alarms.actions import membership_of
from rallypoint.alarms.models import Alarm, DisplayLink
from rallypoint.audit.actions import record
from rallypoint.evacuation import rollcall
from rallypoint.tenants.models import Site
from rallypoint.tenants.roles import Perm
from rallypoint.tenants.scoping import require_perm

#: A screen refreshes every few seconds; its last use is written at most this often.
TOUCH_EVERY = timedelta(minutes=1)
MAX_LINKS = 50


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_link(*, actor, site: Site, name: str) -> tuple[DisplayLink, str]:
    """A new link for ``site``; the secret part of its address is returned only here."""
    require_perm(actor, site, Perm.MANAGE_ALARMS)
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({"name": _("Give the screen a name, for example “Crisis room”.")})
    if len(name) > 80:
        raise ValidationError({"name": _("A name may have at most 80 characters.")})
    if DisplayLink.objects.for_site(site).filter(revoked_at__isnull=True).count() >= MAX_LINKS:
        raise ValidationError(_("This site has %(n)d display links already: revoke one first.") % {"n": MAX_LINKS})
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        link = DisplayLink.objects.create(site=site, name=name, token_hash=_digest(token),
                                          created_by=membership_of(actor, site))
        record(actor=actor, organization=site.organization, site=site, action="display_link.created",
               object_type="display_link", object_id=link.pk, changes={"name": [None, name]})
    return link, token


def revoke_link(*, actor, link: DisplayLink) -> DisplayLink:
    require_perm(actor, link.site, Perm.MANAGE_ALARMS)
    with transaction.atomic():
        link = DisplayLink.objects.select_for_update().select_related("site__organization").get(pk=link.pk)
        if link.revoked_at is None:
            link.revoked_at = timezone.now()
            link.save(update_fields=["revoked_at"])
            record(actor=actor, organization=link.site.organization, site=link.site, action="display_link.revoked",
                   object_type="display_link", object_id=link.pk, changes={"name": [link.name, None]})
    return link


def link_for(token: str) -> DisplayLink | None:
    """The active link with this secret (and its site), or None; notes its use."""
    if not token or len(token) > 100:
        return None
    link = (DisplayLink.objects.select_related("site").filter(token_hash=_digest(token), revoked_at__isnull=True)
            .first())
    if link is None:
        return None
    now = timezone.now()
    if link.last_used_at is None or now - link.last_used_at > TOUCH_EVERY:
        DisplayLink.objects.filter(pk=link.pk).update(last_used_at=now)
    return link


def screen(site: Site) -> list[dict]:
    """What the screen shows: per active alarm its heading and numbers, and for an evacuation the numbers,
    zones and assembly points (no names: the cockpit's picture without its plans, lists and actions)."""
    alarms = (Alarm.objects.for_site(site).filter(state=Alarm.State.ACTIVE).select_related("scenario", "level")
              .order_by("-started_at"))
    panels = []
    for alarm in alarms:
        evacuation = None
        if alarm.scenario.evacuates:
            evacuation = {**rollcall.cockpit_view(alarm), "plans": []}
        panels.append({"alarm": alarm, "counts": alarm_counts(alarm), "evacuation": evacuation})
    return panels
