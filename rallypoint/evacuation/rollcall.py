"""Who is expected, who is accounted for, who is missing: read models for the roll call and the cockpit.

On site = a current presence (see :class:`~rallypoint.evacuation.models.Presence`), in the zones the
alarm evacuates (a presence without a known zone or building counts everywhere: better one name too many
on the missing list than one too few). Accounted for = anyone with a current status in the alarm
(:class:`~rallypoint.evacuation.models.PersonState`). Missing = on site and not accounted for.

Each is a few queries over ids; names are decrypted only for the people a page shows.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from rallypoint.alarms.models import Alarm, Scenario
from rallypoint.evacuation.models import (
    AssemblyPoint,
    Building,
    PersonState,
    Presence,
    Source,
    Status,
    StatusReport,
    Zone,
    ZoneReport,
)
from rallypoint.people.models import Group, Membership
from rallypoint.tenants.encryption import decrypt_values


@dataclass(frozen=True)
class Place:
    """Where a person on site was last known to be, and how that was learnt."""

    membership_id: int
    building_id: int | None
    zone_id: int | None
    source: str
    since: datetime


def affected_zone_ids(alarm: Alarm) -> set[int] | None:
    """The zones the alarm evacuates; None: the whole site."""
    evacuates = alarm.scenario.evacuates
    if evacuates == Scenario.Evacuates.ALL or (evacuates and not (alarm.zone_id or alarm.building_id)):
        return None
    zones = Zone.objects.for_site(alarm.site_id)
    if evacuates == Scenario.Evacuates.BUILDING:
        building = alarm.building_id or Zone.objects.filter(pk=alarm.zone_id).values_list(
            "floor__building_id", flat=True).first()
        return set(zones.filter(floor__building_id=building).values_list("pk", flat=True))
    if evacuates == Scenario.Evacuates.ZONE and alarm.zone_id:
        neighbours = Zone.neighbours.through.objects.filter(from_zone_id=alarm.zone_id).values_list(
            "to_zone_id", flat=True)
        return {alarm.zone_id, *neighbours}
    if evacuates == Scenario.Evacuates.ZONE:  # a building but no zone was given: all of the building
        return set(zones.filter(floor__building_id=alarm.building_id).values_list("pk", flat=True))
    return set()


#: The site's current places, read again only when a presence was added, ended or deleted, or the first of
#: them expired (at the latest after ``PLACES_SECONDS``): counts and the missing list are read again and again
#: during an alarm, and turning ten thousand rows into places took most of their time.
_places_cache: dict[int, tuple[tuple, float, dict[int, Place], datetime | None]] = {}
PLACES_SECONDS = 30.0


def forget_places() -> None:
    _places_cache.clear()


def _current_places(site_id: int, now=None) -> dict[int, Place]:
    """``{membership id: newest current place}`` of everyone on site (do not change the dict: it is shared)."""
    presences = Presence.objects.for_site(site_id)
    moment = now or timezone.now()
    stamp = presences.aggregate(rows=Count("pk"), newest=Max("pk"), left=Max("left_at"), people=Sum("membership_id"),
                                expiry=Min("expires_at", filter=Q(left_at__isnull=True, expires_at__gt=moment)))
    key = (stamp["rows"], stamp["newest"], stamp["left"], stamp["people"])
    cached = _places_cache.get(site_id)
    if (now is None and cached is not None and cached[0] == key and time.monotonic() - cached[1] < PLACES_SECONDS
            and (cached[3] is None or moment < cached[3])):
        return cached[2]
    places: dict[int, Place] = {}
    rows = presences.current(moment).values_list(
        "membership_id", "building_id", "zone_id", "source", "arrived_at")
    for membership_id, building_id, zone_id, source, arrived in rows:
        known = places.get(membership_id)
        if known is not None and known.since >= arrived:
            continue
        places[membership_id] = Place(membership_id, building_id, zone_id, source, arrived)
    if now is None:
        _places_cache[site_id] = (key, time.monotonic(), places, stamp["expiry"])
    return places


def on_site(alarm: Alarm, now=None) -> dict[int, Place]:
    """The people on site now whom the alarm concerns, with their last known place (newest presence)."""
    affected = affected_zone_ids(alarm)
    buildings: set[int] | None = None
    if affected is not None:
        buildings = set(Zone.objects.filter(pk__in=affected).values_list("floor__building_id", flat=True))
    places = _current_places(alarm.site_id, now)
    if affected is None:
        return dict(places)
    return {m: p for m, p in places.items()
            if (p.zone_id in affected) or (p.zone_id is None and (p.building_id is None or p.building_id in buildings))}


def states(alarm: Alarm) -> dict[int, tuple[str, int | None, int | None]]:
    """Each person's current status: ``{membership id: (status, assembly point id, zone id)}``."""
    return {m: (s, a, z) for m, s, a, z in PersonState.objects.for_site(alarm.site_id).filter(alarm=alarm)
            .values_list("membership_id", "status", "assembly_point_id", "zone_id")}


def zone_states(alarm: Alarm) -> dict[int, tuple[str, int]]:
    """Each reported zone's newest state: ``{zone id: (state, persons remaining)}``."""
    result: dict[int, tuple[str, int]] = {}
    for zone_id, state, remaining in ZoneReport.objects.for_site(alarm.site_id).filter(alarm=alarm).order_by(
            "at", "pk").values_list("zone_id", "state", "remaining"):
        result[zone_id] = (state, remaining)
    return result


def counts(alarm: Alarm) -> dict:
    """Numbers only, for the cockpit: people on site, statuses, accounted for, per zone and assembly point."""
    present = on_site(alarm)
    rows = PersonState.objects.for_site(alarm.site_id).filter(alarm=alarm)
    # The statuses tallied by the database, and only the ids of who has one: at 10,000 people, reading each
    # person's whole state took most of the counting's time (the cockpit is counted several times a second).
    by_status: Counter = Counter()
    by_point: Counter = Counter()
    for status, point, number in rows.values_list("status", "assembly_point_id").annotate(n=Count("pk")).order_by():
        by_status[status] += number
        if point is not None:
            by_point[str(point)] += number
    current = set(rows.values_list("membership_id", flat=True))
    no_status = [p for m, p in present.items() if m not in current]
    by_zone: dict[str, dict] = defaultdict(lambda: {"on_site": 0, "no_status": 0})
    for place in present.values():
        if place.zone_id is not None:
            by_zone[str(place.zone_id)]["on_site"] += 1
    for place in no_status:
        if place.zone_id is not None:
            by_zone[str(place.zone_id)]["no_status"] += 1
    for zone_id, (state, remaining) in zone_states(alarm).items():
        by_zone[str(zone_id)].update(state=state, remaining=remaining)
    accounted = len(current)  # everyone with a status, on the list or not
    expected = accounted + len(no_status)  # and everyone on the list without one
    return {"on_site": len(present), "no_status": len(no_status), "accounted": accounted,
            "percent": round(100 * accounted / expected) if expected else 100,
            "safe": by_status.get(Status.SAFE, 0), "need_help": by_status.get(Status.NEED_HELP, 0),
            "not_on_site": by_status.get(Status.NOT_ON_SITE, 0),
            "by_zone": dict(by_zone), "by_assembly_point": dict(by_point)}


@dataclass
class Missing:
    membership_id: int
    name: str
    place: Place
    building: str
    zone: str

    @property
    def source_label(self) -> str:
        return dict(Source.choices).get(self.place.source, self.place.source)


def _of_people(rows, field: str, wanted: set[int]):
    """``rows`` narrowed to the ``wanted`` people by an ``IN`` list, up to 500 of them; for more, the site's rows
    are read and the caller picks (a 10,000-parameter ``IN`` list took 145 ms to compile)."""
    return rows.filter(**{f"{field}__in": wanted}) if len(wanted) <= 500 else rows


def names(site_id: int, membership_ids) -> dict[int, str]:
    """``{membership id: name}``, decrypted straight from the rows (no model instance per person)."""
    wanted = set(membership_ids)
    rows = _of_people(Membership.records.filter(site_id=site_id), "pk", wanted).values_list(
        "pk", "site_id", "row_key", "full_name")
    found = decrypt_values(Membership, "full_name", (row for row in rows if row[0] in wanted))
    blank = [pk for pk, name in found.items() if not name]  # only a forgotten person has no name
    for person in Membership.records.filter(pk__in=blank).only("pk", "kind"):
        found[person.pk] = person.display_name
    return found


def missing(alarm: Alarm) -> list[Missing]:
    """On site, concerned, and without a status: with their last known place, sorted by building, zone and
    name."""
    present = on_site(alarm)
    current = states(alarm)
    absent = {m: p for m, p in present.items() if m not in current}
    named = names(alarm.site_id, absent)
    # A zone's name repeats on each floor ("West wing"): the list says which floor.
    zones = {pk: (f"{floor} · {name}", building) for pk, name, floor, building in Zone.objects.for_site(
        alarm.site_id).values_list("pk", "name", "floor__name", "floor__building__name")}
    buildings = dict(Building.objects.for_site(alarm.site_id).values_list("pk", "name"))
    rows = []
    for membership_id, place in absent.items():
        if membership_id not in named:
            continue
        zone, building = zones.get(place.zone_id, ("", buildings.get(place.building_id, "")))
        rows.append(Missing(membership_id, named[membership_id], place, building, zone))
    rows.sort(key=lambda r: (r.building == "", r.building, r.zone == "", r.zone, r.name.casefold()))
    return rows


def expected_at(alarm: Alarm, point: AssemblyPoint) -> list[int]:
    """Membership ids of the people on site whose last known zone evacuates to ``point`` (without a known
    zone: whose building has a zone that does)."""
    zone_ids = set(point.zones.values_list("pk", flat=True))
    buildings = set(Zone.objects.filter(pk__in=zone_ids).values_list("floor__building_id", flat=True))
    return [m for m, p in on_site(alarm).items()
            if p.zone_id in zone_ids or (p.zone_id is None and p.building_id in buildings)]


def roll_call_list(alarm: Alarm, point: AssemblyPoint) -> dict:
    """The lead's list at ``point``: everyone expected there or already marked there, then everyone else on
    site who is not accounted for (searchable, for those who came to the wrong point), each with their
    groups and current status; and the groups to filter by."""
    expected = set(expected_at(alarm, point))
    current = states(alarm)
    here = {m for m, (_status, point_id, _zone) in current.items() if point_id == point.pk}
    elsewhere = set(on_site(alarm)) - expected - set(current)
    wanted = expected | here | elsewhere
    named = names(alarm.site_id, wanted)
    groups_of: dict[int, list[int]] = defaultdict(list)
    group_names: dict[int, str] = {}
    links = _of_people(Group.members.through.objects.filter(group__site_id=alarm.site_id), "membership_id", wanted)
    for group_id, group_name, membership_id in links.values_list("group_id", "group__name", "membership_id"):
        if membership_id in wanted:
            groups_of[membership_id].append(group_id)
            group_names[group_id] = group_name
    people = []
    for membership_id, name in named.items():
        state = current.get(membership_id)
        people.append({"id": membership_id, "name": name, "groups": groups_of.get(membership_id, []),
                       "status": state[0] if state else "", "here": membership_id in here,
                       "expected": membership_id in expected or membership_id in here})
    people.sort(key=lambda p: (not p["expected"], p["name"].casefold(), p["id"]))
    return {"people": people, "groups": sorted(group_names.items(), key=lambda g: g[1].casefold())}


def accounted_over_time(alarm: Alarm, points: int = 24) -> list[tuple[float, int]]:
    """``[(seconds since the alarm began, people accounted for)]``: when each person's first report was made,
    counted up at ``points`` even steps up to now (for the cockpit's curve)."""
    first: dict[int, datetime] = {}
    for membership_id, at in StatusReport.objects.for_site(alarm.site_id).filter(alarm=alarm).values_list(
            "membership_id", "at"):
        if membership_id not in first or at < first[membership_id]:
            first[membership_id] = at
    end = alarm.ended_at or timezone.now()
    span = max((end - alarm.started_at).total_seconds(), 1.0)
    times = sorted((at - alarm.started_at).total_seconds() for at in first.values())
    series, index = [], 0
    for step in range(points + 1):
        moment = span * step / points
        while index < len(times) and times[index] <= moment:
            index += 1
        series.append((moment, index))
    return series


def cockpit_view(alarm: Alarm) -> dict:
    """The crisis team's picture of an evacuation (numbers and places, no names): the counts, every affected
    zone with its state, every assembly point with its arrivals, and accounted-for over time."""
    numbers = counts(alarm)
    affected = affected_zone_ids(alarm)
    zones = Zone.objects.for_site(alarm.site_id).select_related("floor__building").defer("floor__plan")
    if affected is not None:
        zones = zones.filter(pk__in=affected)
    zone_rows = []
    for zone in zones.order_by("floor__building__position", "floor__building__name", "-floor__level", "name"):
        row = numbers["by_zone"].get(str(zone.pk), {})
        zone_rows.append({"zone": zone, "state": row.get("state", ""), "remaining": row.get("remaining", 0),
                          "on_site": row.get("on_site", 0), "no_status": row.get("no_status", 0)})
    points = [{"point": p, "arrived": numbers["by_assembly_point"].get(str(p.pk), 0)}
              for p in AssemblyPoint.objects.for_site(alarm.site_id)]
    plans: dict[int, dict] = {}
    for row in zone_rows:
        zone = row["zone"]
        if zone.area is None or not zone.floor.plan_type:
            continue
        plan = plans.setdefault(zone.floor_id, {"floor": zone.floor, "zones": []})
        x, y, w, h = zone.area
        plan["zones"].append({**row, "x": f"{100 * x:.2f}%", "y": f"{100 * y:.2f}%", "w": f"{100 * w:.2f}%",
                              "h": f"{100 * h:.2f}%", "cx": f"{100 * (x + w / 2):.2f}%",
                              "cy": f"{100 * (y + h / 4):.2f}%"})  # above the corridor's own labels
    expected = max(numbers["on_site"], numbers["accounted"], 1)
    series = accounted_over_time(alarm)
    span = series[-1][0] or 1.0
    curve = " ".join(f"{100 * t / span:.1f},{40 - 40 * n / expected:.1f}" for t, n in series)
    return {"counts": numbers, "zones": zone_rows, "points": points, "curve": curve, "plans": list(plans.values()),
            "open_zones": sum(1 for z in zone_rows if z["state"] != ZoneReport.State.CLEARED)}
