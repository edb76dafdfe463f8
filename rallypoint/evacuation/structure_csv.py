"""The site's structure as CSV, one row per zone: building, floor, level, zone, code, rooms (separated by
``|``), assembly_point. The export reads back through the import, which creates what is missing (a
building, floor, zone, room or assembly point named in a row), sets a zone's code and level, and adds the
zone to its assembly point. Nothing is deleted by an import. All rows or none: a bad row is reported by
its line and nothing is written."""

from __future__ import annotations

import csv
import io

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from rallypoint.audit.actions import record
from rallypoint.evacuation import structure_actions as actions
from rallypoint.evacuation.models import AssemblyPoint, Building, Floor, Zone
from rallypoint.lib.csvfile import ImportErrors, csv_safe, read_csv
from rallypoint.tenants.models import Site
from rallypoint.tenants.roles import Perm
from rallypoint.tenants.scoping import require_perm

COLUMNS = ("building", "floor", "level", "zone", "code", "rooms", "assembly_point")
ROOM_SEPARATOR = "|"
MAX_NAME = 120

__all__ = ["COLUMNS", "ImportErrors", "export_structure", "import_structure"]


def export_structure(*, actor, site: Site) -> str:
    """Every zone of the site as one row (a floor without zones as a row with an empty zone)."""
    require_perm(actor, site, Perm.MANAGE_STRUCTURE)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    floors = (Floor.objects.for_site(site).defer("plan").select_related("building")
              .order_by("building__position", "building__name", "-level", "name")
              .prefetch_related("zones__rooms", "zones__assembly_points"))
    rows = 0
    for floor in floors:
        zones = list(floor.zones.all()) or [None]
        for zone in zones:
            cells = [floor.building.name, floor.name, str(floor.level)]
            if zone is None:
                cells += ["", "", "", ""]
            else:
                points = sorted(p.name for p in zone.assembly_points.all())
                cells += [zone.name, zone.code, ROOM_SEPARATOR.join(r.name for r in zone.rooms.all()),
                          points[0] if points else ""]
            writer.writerow([csv_safe(cell) for cell in cells])
            rows += 1
    record(actor=actor, organization=site.organization, site=site, action="structure.exported",
           object_type="site", object_id=site.pk, changes={"rows": [None, rows]})
    return out.getvalue()


def _check_row(row: dict) -> list[str]:
    problems = []
    for column in ("building", "floor"):
        if not row.get(column):
            problems.append(_("The column “%(column)s” is empty.") % {"column": column})
    if row.get("code") and not row.get("zone"):
        problems.append(_("A code needs a zone name."))
    if row.get("rooms") and not row.get("zone"):
        problems.append(_("Rooms need a zone name."))
    level = row.get("level", "")
    if level and not level.lstrip("-").isdigit():
        problems.append(_("The level must be a whole number (0 is the ground floor)."))
    names = [row.get(c, "") for c in ("building", "floor", "zone", "code", "assembly_point")]
    names += _rooms(row)
    if any(len(name) > MAX_NAME for name in names):
        problems.append(_("A name is longer than %(n)d characters.") % {"n": MAX_NAME})
    return problems


def _rooms(row: dict) -> list[str]:
    return [name.strip() for name in row.get("rooms", "").split(ROOM_SEPARATOR) if name.strip()]


def _codes_unique(rows) -> list[tuple[int, str]]:
    seen, errors = {}, []
    for line, row in rows:
        code, place = row.get("code"), (row.get("building"), row.get("floor"), row.get("zone"))
        if code and seen.setdefault(code, place) != place:
            errors.append((line, _("The code “%(code)s” is given to two zones in this file.") % {"code": code}))
    return errors


def import_structure(*, actor, site: Site, text: str) -> dict:
    """Create what the rows name and is missing; returns ``{"created": n, "updated": n}``. Raises
    :class:`ImportErrors` with (line, message) pairs, and then nothing is written."""
    require_perm(actor, site, Perm.MANAGE_STRUCTURE)
    rows = read_csv(text, required={"building", "floor", "zone"}, columns=COLUMNS)
    errors = [(line, problem) for line, row in rows for problem in _check_row(row)]
    errors += _codes_unique(rows)
    if errors:
        raise ImportErrors(sorted(errors))
    importer = _Importer(actor, site)
    with transaction.atomic():
        for line, row in rows:
            try:
                importer.row(row)
            except ValidationError as exc:
                raise ImportErrors([(line, " ".join(exc.messages))]) from None
        record(actor=actor, organization=site.organization, site=site, action="structure.imported",
               object_type="site", object_id=site.pk,
               changes={"created": [None, importer.created], "updated": [None, importer.updated]})
    return {"created": importer.created, "updated": importer.updated}


class _Importer:
    """Applies rows one by one through the actions, each of which writes its own audit entry."""

    def __init__(self, actor, site: Site):
        self.actor, self.site = actor, site
        self.created = self.updated = 0

    def row(self, row: dict) -> None:
        building = self._building(row["building"])
        floor = self._floor(building, row["floor"], row.get("level", ""))
        if not row.get("zone"):
            return
        zone = self._zone(floor, row["zone"], row.get("code", ""))
        existing = set(zone.rooms.values_list("name", flat=True))
        for name in _rooms(row):
            if name not in existing:
                actions.save_room(actor=self.actor, zone=zone, name=name)
                existing.add(name)
                self.created += 1
        if row.get("assembly_point"):
            self._point(row["assembly_point"], zone)

    def _building(self, name: str) -> Building:
        building = Building.objects.for_site(self.site).filter(name=name).first()
        if building is None:
            building = actions.save_building(actor=self.actor, site=self.site, name=name)
            self.created += 1
        return building

    def _floor(self, building: Building, name: str, level: str) -> Floor:
        floor = Floor.objects.for_site(self.site).defer("plan").filter(building=building, name=name).first()
        if floor is None:
            self.created += 1
            return actions.save_floor(actor=self.actor, building=building, name=name, level=int(level or 0))
        if level and int(level) != floor.level:
            self.updated += 1
            return actions.save_floor(actor=self.actor, building=building, floor=floor, name=name,
                                      level=int(level))
        return floor

    def _zone(self, floor: Floor, name: str, code: str) -> Zone:
        zone = Zone.objects.for_site(self.site).filter(floor=floor, name=name).first()
        if zone is None:
            self.created += 1
            return actions.save_zone(actor=self.actor, floor=floor, name=name, code=code)
        if code and code != zone.code:
            duties = list(zone.duties.all())
            self.updated += 1
            return actions.save_zone(actor=self.actor, floor=floor, zone=zone, name=name, code=code,
                                     neighbours=list(zone.neighbours.all()),
                                     helpers=[d.membership for d in duties if not d.deputy],
                                     deputies=[d.membership for d in duties if d.deputy])
        return zone

    def _point(self, name: str, zone: Zone) -> None:
        point = AssemblyPoint.objects.for_site(self.site).filter(name=name).first()
        if point is None:
            actions.save_assembly_point(actor=self.actor, site=self.site, name=name, zones=[zone])
            self.created += 1
        elif not point.zones.filter(pk=zone.pk).exists():
            zones = [*point.zones.all(), zone]
            actions.save_assembly_point(actor=self.actor, site=self.site, point=point, name=point.name,
                                        latitude=point.latitude, longitude=point.longitude,
                                        capacity=point.capacity, zones=zones)
            self.updated += 1


