"""Presence through the API: a time-recording or door-access system reports people arriving and leaving, with a
site API key that may report presence (``reports_presence``). Bulk: up to 1,000 entries a request, answered
per entry; a person is named by membership id or by the e-mail address they sign in with."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema

from rallypoint.accounts.models import email_index
from rallypoint.api.alarms import ERRORS, ApiKeyAuth, _key, _require_site
from rallypoint.evacuation import presence
from rallypoint.evacuation.models import Building, Source, Zone
from rallypoint.integrations.actions import record_api_key_use
from rallypoint.people.models import Membership

router = Router(tags=["presence"])
MAX_ENTRIES = 1000


class PresenceIn(Schema):
    membership_id: int | None = Field(None, description="The person, by id …")
    email: str | None = Field(None, max_length=254, description="… or by the e-mail address they sign in with.")
    state: str = Field(description="`in` (arrived) or `out` (left).")
    building_id: int | None = Field(None, description="With `in`: the building entered …")
    zone_code: str | None = Field(None, max_length=40, description="… or the zone, by its external code.")
    at: datetime | None = Field(None, description="When (with its time zone); default: now. At most a day back.")


class PresenceBatchIn(Schema):
    entries: list[PresenceIn] = Field(max_length=MAX_ENTRIES, description=f"At most {MAX_ENTRIES} entries.")


class PresenceItemOut(Schema):
    ok: bool
    detail: str | dict | None = None


def _people(site, entries: list[PresenceIn]) -> tuple[dict, dict]:
    """``({membership id: person}, {e-mail's blind index: person})`` of the people the entries name."""
    ids = {e.membership_id for e in entries if e.membership_id is not None}
    indexes = {email_index(e.email) for e in entries if e.email}  # the address itself is encrypted
    people = Membership.objects.for_site(site).active()
    by_index = dict(people.filter(user__email_index__in=indexes).values_list("user__email_index", "pk"))
    found = people.in_bulk([*ids, *by_index.values()])
    return ({pk: found[pk] for pk in ids if pk in found},
            {index: found[pk] for index, pk in by_index.items()})


def _when(at: datetime | None, now: datetime) -> datetime:
    if at is None:
        return now
    if timezone.is_naive(at):
        raise ValidationError({"at": _("Give the time with its time zone.")})
    if at > now + timedelta(minutes=5) or at < now - timedelta(days=1):
        raise ValidationError({"at": _("The time must lie within the last day.")})
    return min(at, now)


def _apply(site, entry: PresenceIn, person: Membership | None, places: dict, now: datetime) -> None:
    if person is None:
        raise ValidationError({"membership_id": _("There is no such person at this site.")})
    when = _when(entry.at, now)
    if entry.state == "out":
        presence.leave(membership=person, now=when)
        return
    if entry.state != "in":
        raise ValidationError({"state": _("Report “in” or “out”.")})
    zone = places["zones"].get((entry.zone_code or "").strip()) if entry.zone_code else None
    building = places["buildings"].get(entry.building_id) if entry.building_id is not None else None
    if (entry.zone_code and zone is None) or (entry.building_id is not None and building is None):
        raise ValidationError({"building_id": _("There is no such place at this site.")})
    presence.arrive(membership=person, source=Source.API, building=building, zone=zone, now=when)


@router.post("/presence", response={200: list[PresenceItemOut], **ERRORS}, auth=[ApiKeyAuth()])
def report_presence(request, payload: PresenceBatchIn):
    """People arriving (`in`) and leaving (`out`), from a time-recording or door-access system; answered per
    entry, in order. A presence ends when the person leaves, at the latest at midnight (the site's time)."""
    _require_site(request)
    key = _key(request)
    if key is None or not key.reports_presence:
        raise PermissionDenied
    site = request.site
    by_id, by_email = _people(site, payload.entries)
    places = {"buildings": Building.objects.for_site(site).in_bulk(),
              "zones": {z.code: z for z in Zone.objects.for_site(site).exclude(code="").select_related(
                  "floor__building")}}
    now = timezone.now()
    out = []
    for entry in payload.entries:
        person = by_id.get(entry.membership_id) if entry.membership_id is not None else (
            by_email.get(email_index(entry.email)) if entry.email else None)
        try:
            _apply(site, entry, person, places, now)
        except ValidationError as exc:
            out.append({"ok": False, "detail": exc.message_dict})
        else:
            out.append({"ok": True})
    record_api_key_use(key, action="presence", count=sum(1 for o in out if o["ok"]))
    return out
