"""Changes to a site's structure: buildings, floors and their plans, zones (with neighbours and helpers),
rooms, assembly points and the markers on a plan; the structure as CSV.

Every function checks the permission (``actor=None`` is the system: the demo seed, an import), checks that
every object it is given belongs to the site, and writes its rows and its audit entry in one transaction.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from rallypoint.alarms.models import Alarm
from rallypoint.audit.actions import diff, record
from rallypoint.evacuation import plans
from rallypoint.evacuation.models import AssemblyPoint, Building, Floor, Marker, Room, Zone, ZoneDuty
from rallypoint.people.models import Membership
from rallypoint.tenants.models import Site
from rallypoint.tenants.roles import Perm
from rallypoint.tenants.scoping import require_perm


def _check(actor, site: Site, *objects) -> None:
    """The actor may change the structure, and every object given belongs to ``site``."""
    require_perm(actor, site, Perm.MANAGE_STRUCTURE)
    for obj in objects:
        if obj is not None and obj.site_id != site.pk:
            raise PermissionDenied


def _check_all(site: Site, objects) -> list:
    objects = list(objects)
    if any(obj.site_id != site.pk for obj in objects):
        raise PermissionDenied
    return objects


def _audit(actor, site: Site, action: str, kind: str, pk: int, before: dict, after: dict) -> None:
    changes = diff(before, after)
    if changes:
        record(actor=actor, organization=site.organization, site=site, action=f"{kind}.{action}",
               object_type=kind, object_id=pk, changes=changes)


def _saved(actor, site: Site, kind: str, obj, before: dict, after: dict) -> None:
    _audit(actor, site, "updated" if before else "created", kind, obj.pk, before, after)


def _deleted(actor, site: Site, kind: str, obj, state: dict) -> None:
    pk = obj.pk
    obj.delete()
    record(actor=actor, organization=site.organization, site=site, action=f"{kind}.deleted",
           object_type=kind, object_id=pk, changes=diff(state, {}))


def _not_during_an_alarm(site: Site) -> None:
    """Places are not deleted while an alarm runs: helpers may be clearing them, and their reports are the
    alarm's record."""
    if Alarm.objects.for_site(site).filter(state=Alarm.State.ACTIVE).exists():
        raise ValidationError(_("While an alarm is active, buildings, floors and zones cannot be deleted. "
                                "Try again when it has ended."))


def _name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationError({"name": _("Give it a name.")})
    return name


def _unique(queryset, obj, message: str, field: str = "name") -> None:
    if obj is not None:
        queryset = queryset.exclude(pk=obj.pk)
    if queryset.exists():
        raise ValidationError({field: message})


# Buildings ---------------------------------------------------------------------------------------

def _building_state(b: Building) -> dict:
    return {"name": b.name, "code": b.code, "position": b.position}


def save_building(*, actor, site: Site, building: Building | None = None, name: str, code: str = "",
                  position: int | None = None) -> Building:
    """Create (``building=None``) or change a building of the site."""
    _check(actor, site, building)
    name, code = _name(name), code.strip()
    _unique(Building.objects.for_site(site).filter(name=name), building,
            _("A building with this name already exists."))
    with transaction.atomic():
        before = _building_state(building) if building else {}
        if building is None:
            if position is None:
                position = Building.objects.for_site(site).count() + 1
            building = Building(site=site)
        building.name, building.code = name, code
        if position is not None:
            building.position = position
        building.save()
        _saved(actor, site, "building", building, before, _building_state(building))
    return building


def delete_building(*, actor, building: Building) -> None:
    """Delete a building with its floors, zones, rooms and markers."""
    site = building.site
    _check(actor, site, building)
    _not_during_an_alarm(site)
    with transaction.atomic():
        _deleted(actor, site, "building", building, _building_state(building))


# Floors and plans --------------------------------------------------------------------------------

def _floor_state(f: Floor) -> dict:
    return {"building": f.building_id, "name": f.name, "level": f.level}


def save_floor(*, actor, building: Building, floor: Floor | None = None, name: str, level: int = 0) -> Floor:
    site = building.site
    _check(actor, site, building, floor)
    name = _name(name)
    _unique(Floor.objects.for_site(site).filter(building=building, name=name), floor,
            _("This building already has a floor with this name."))
    with transaction.atomic():
        before = _floor_state(floor) if floor else {}
        if floor is None:
            floor = Floor(site=site, building=building)
        floor.name, floor.level = name, level
        floor.save()
        _saved(actor, site, "floor", floor, before, _floor_state(floor))
    return floor


def delete_floor(*, actor, floor: Floor) -> None:
    site = floor.site
    _check(actor, site, floor)
    _not_during_an_alarm(site)
    with transaction.atomic():
        _deleted(actor, site, "floor", floor, _floor_state(floor))


def set_floor_plan(*, actor, floor: Floor, content: bytes) -> Floor:
    """Replace the floor's plan by the uploaded file (PNG, JPEG or PDF, checked and re-encoded by
    :func:`rallypoint.evacuation.plans.read_plan`; ``ValidationError`` for a file it refuses)."""
    site = floor.site
    _check(actor, site, floor)
    plan = plans.read_plan(content)
    with transaction.atomic():
        had_plan = bool(floor.plan_type)
        floor.plan, floor.plan_type = plan.content, plan.content_type
        floor.plan_width, floor.plan_height = plan.width, plan.height
        floor.plan_updated_at = timezone.now()
        floor.save(update_fields=["plan", "plan_type", "plan_width", "plan_height", "plan_updated_at"])
        record(actor=actor, organization=site.organization, site=site, action="floor.plan_set",
               object_type="floor", object_id=floor.pk,
               changes={"plan": ["replaced" if had_plan else None,
                                 f"{plan.content_type} {plan.width}×{plan.height}, {len(plan.content)} bytes"]})
    return floor


def remove_floor_plan(*, actor, floor: Floor) -> None:
    site = floor.site
    _check(actor, site, floor)
    if not floor.plan_type:
        return
    with transaction.atomic():
        floor.plan, floor.plan_type, floor.plan_width, floor.plan_height = None, "", 0, 0
        floor.plan_updated_at = timezone.now()
        floor.save(update_fields=["plan", "plan_type", "plan_width", "plan_height", "plan_updated_at"])
        record(actor=actor, organization=site.organization, site=site, action="floor.plan_removed",
               object_type="floor", object_id=floor.pk, changes={"plan": ["removed", None]})


# Zones, their helpers, rooms ---------------------------------------------------------------------

def _zone_state(z: Zone) -> dict:
    duties = list(z.duties.values_list("membership_id", "deputy"))
    return {"floor": z.floor_id, "name": z.name, "code": z.code, "area": list(z.area) if z.area else None,
            "neighbours": sorted(z.neighbours.values_list("pk", flat=True)),
            "helpers": sorted(m for m, deputy in duties if not deputy),
            "deputies": sorted(m for m, deputy in duties if deputy)}


def _check_zone(site: Site, zone: Zone | None, floor: Floor, name: str, code: str) -> None:
    _unique(Zone.objects.for_site(site).filter(floor=floor, name=name), zone,
            _("This floor already has a zone with this name."))
    if code:
        _unique(Zone.objects.for_site(site).filter(code=code), zone,
                _("Another zone of this site has this code."), field="code")


def _checked_area(area) -> tuple:
    """``(x, y, width, height)`` as fractions of the plan, inside it; ``()`` for none."""
    if not area:
        return (None, None, None, None)
    x, y, w, h = (float(v) for v in area)
    if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 - x + 1e-9 and 0 < h <= 1 - y + 1e-9):
        raise ValidationError({"area_x": _("The area must lie on the plan: left and top from 0 to 1, width and "
                                           "height more than 0, within the plan.")})
    return (x, y, w, h)


def save_zone(*, actor, floor: Floor, zone: Zone | None = None, name: str, code: str = "", neighbours=(),
              helpers=(), deputies=(), area=None) -> Zone:
    """Create or change a zone of ``floor``; ``neighbours`` are zones of the site, ``helpers`` and ``deputies``
    memberships of the site (their evacuation helpers and the helpers' deputies); ``area``: where it lies on
    the floor's plan, ``(x, y, width, height)`` as fractions, ``()`` for none, None to leave it."""
    site = floor.site
    _check(actor, site, floor, zone)
    neighbours, helpers, deputies = (_check_all(site, neighbours), _check_all(site, helpers),
                                     _check_all(site, deputies))
    if set(helpers) & set(deputies):
        raise ValidationError({"deputies": _("A person cannot be a helper and a deputy of the same zone.")})
    name, code = _name(name), code.strip()
    _check_zone(site, zone, floor, name, code)
    with transaction.atomic():
        before = _zone_state(zone) if zone else {}
        if zone is None:
            zone = Zone(site=site)
        zone.floor, zone.name, zone.code = floor, name, code
        if area is not None:
            zone.area_x, zone.area_y, zone.area_w, zone.area_h = _checked_area(area)
        zone.save()
        zone.neighbours.set([n for n in neighbours if n.pk != zone.pk])
        _set_duties(zone, helpers, deputies)
        _saved(actor, site, "zone", zone, before, _zone_state(zone))
    return zone


def _set_duties(zone: Zone, helpers: list[Membership], deputies: list[Membership]) -> None:
    wanted = {m.pk: False for m in helpers} | {m.pk: True for m in deputies}
    current = {d.membership_id: d for d in zone.duties.all()}
    ZoneDuty.objects.filter(zone=zone).exclude(membership_id__in=wanted).delete()
    for membership_id, deputy in wanted.items():
        duty = current.get(membership_id)
        if duty is None:
            ZoneDuty.objects.create(site_id=zone.site_id, zone=zone, membership_id=membership_id, deputy=deputy)
        elif duty.deputy != deputy:
            duty.deputy = deputy
            duty.save(update_fields=["deputy"])


def delete_zone(*, actor, zone: Zone) -> None:
    site = zone.site
    _check(actor, site, zone)
    _not_during_an_alarm(site)
    with transaction.atomic():
        _deleted(actor, site, "zone", zone, _zone_state(zone))


def _room_state(r: Room) -> dict:
    return {"zone": r.zone_id, "name": r.name}


def save_room(*, actor, zone: Zone, room: Room | None = None, name: str) -> Room:
    site = zone.site
    _check(actor, site, zone, room)
    name = _name(name)
    _unique(Room.objects.for_site(site).filter(zone=zone, name=name), room,
            _("This zone already has a room with this name."))
    with transaction.atomic():
        before = _room_state(room) if room else {}
        if room is None:
            room = Room(site=site)
        room.zone, room.name = zone, name
        room.save()
        _saved(actor, site, "room", room, before, _room_state(room))
    return room


def delete_room(*, actor, room: Room) -> None:
    site = room.site
    _check(actor, site, room)
    with transaction.atomic():
        _deleted(actor, site, "room", room, _room_state(room))


# Assembly points ---------------------------------------------------------------------------------

def _point_state(p: AssemblyPoint) -> dict:
    return {"name": p.name, "latitude": p.latitude, "longitude": p.longitude, "capacity": p.capacity,
            "zones": sorted(p.zones.values_list("pk", flat=True))}


def save_assembly_point(*, actor, site: Site, point: AssemblyPoint | None = None, name: str,
                        latitude: float | None = None, longitude: float | None = None,
                        capacity: int | None = None, zones=()) -> AssemblyPoint:
    _check(actor, site, point)
    zones = _check_all(site, zones)
    name = _name(name)
    if (latitude is None) != (longitude is None):
        raise ValidationError({"longitude": _("Give both latitude and longitude, or neither.")})
    _unique(AssemblyPoint.objects.for_site(site).filter(name=name), point,
            _("An assembly point with this name already exists."))
    with transaction.atomic():
        before = _point_state(point) if point else {}
        if point is None:
            point = AssemblyPoint(site=site)
        point.name, point.latitude, point.longitude, point.capacity = name, latitude, longitude, capacity
        point.full_clean(exclude=["site", "zones"])
        point.save()
        point.zones.set(zones)
        _saved(actor, site, "assembly_point", point, before, _point_state(point))
    return point


def delete_assembly_point(*, actor, point: AssemblyPoint) -> None:
    site = point.site
    _check(actor, site, point)
    with transaction.atomic():
        _deleted(actor, site, "assembly_point", point, _point_state(point))


# Markers on a plan -------------------------------------------------------------------------------

def _marker_state(m: Marker) -> dict:
    return {"floor": m.floor_id, "kind": m.kind, "x": round(m.x, 4), "y": round(m.y, 4), "label": m.label}


def save_marker(*, actor, floor: Floor, marker: Marker | None = None, kind: str, x: float, y: float,
                label: str = "") -> Marker:
    """Place (``marker=None``) or change a marker; ``x``, ``y`` are fractions (0–1) of the plan's size."""
    site = floor.site
    _check(actor, site, floor, marker)
    if kind not in Marker.Kind.values:
        raise ValidationError({"kind": _("Choose what the marker shows.")})
    if not (0 <= x <= 1 and 0 <= y <= 1):
        raise ValidationError(_("The marker must lie on the plan."))
    with transaction.atomic():
        before = _marker_state(marker) if marker else {}
        if marker is None:
            marker = Marker(site=site)
        marker.floor, marker.kind, marker.x, marker.y, marker.label = floor, kind, x, y, label.strip()
        marker.save()
        _saved(actor, site, "marker", marker, before, _marker_state(marker))
    return marker


def delete_marker(*, actor, marker: Marker) -> None:
    site = marker.site
    _check(actor, site, marker)
    with transaction.atomic():
        _deleted(actor, site, "marker", marker, _marker_state(marker))
