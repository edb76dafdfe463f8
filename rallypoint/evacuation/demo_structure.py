"""The demo's school: a main building with three floors and a sports hall, their zones, rooms, helpers,
two assembly points, and floor plans this code draws itself (rooms along a corridor, stairs, exit arrows).

Seeded in the installation's language, through the structure actions (so the audit trail shows it), in
well under a second: the plans are small PNGs drawn with Pillow.
"""

from __future__ import annotations

import io

from django.utils.translation import pgettext
from PIL import Image, ImageDraw, ImageFont

from rallypoint.evacuation import structure_actions as actions
from rallypoint.evacuation.models import Floor, Marker, Zone
from rallypoint.people.models import Membership
from rallypoint.tenants.models import Site

PLAN_SIZE = (1200, 640)
CORRIDOR = (280, 360)  # the corridor's top and bottom edge, in pixels
WALL, ROOM_FILL, CORRIDOR_FILL, INK, EXIT = "#1b2533", "#f4f7fb", "#e2e8f0", "#1b2533", "#1d6b3a"


def _school() -> list[dict]:
    """Buildings → floors → zones (name, code, rooms), in the installation's language."""
    room = pgettext("demo", "Room %(number)s")

    def numbered(*numbers):
        return [room % {"number": n} for n in numbers]

    def wings(level: int, west: list[str], east: list[str]) -> list[tuple[str, str, list[str]]]:
        return [(pgettext("demo", "West wing"), f"A-{level}-W", west),
                (pgettext("demo", "East wing"), f"A-{level}-E", east)]

    west, east = wings(0, [*numbered("001", "002"), pgettext("demo", "Staff room")],
                       [*numbered("003", "004"), pgettext("demo", "School office")])
    entrance = (pgettext("demo", "Entrance hall"), "A-0-M", [pgettext("demo", "Cafeteria"), pgettext("demo", "Foyer")])
    hall = (pgettext("demo", "Hall"), "B-0-H", [pgettext("demo", "Sports hall"), pgettext("demo", "Equipment room")])
    changing = (pgettext("demo", "Changing rooms"), "B-0-U",
                [pgettext("demo", "Changing room 1"), pgettext("demo", "Changing room 2"), pgettext("demo", "Showers")])
    return [
        {"name": pgettext("demo", "Building A"), "code": "A", "floors": [
            (pgettext("demo", "Ground floor"), 0, [west, entrance, east]),
            (pgettext("demo", "1st floor"), 1, wings(1, [*numbered("101", "102"), pgettext("demo", "Library")],
                                                     [*numbered("103", "104"), pgettext("demo", "Chemistry lab")])),
            (pgettext("demo", "2nd floor"), 2, wings(2, [*numbered("201", "202"), pgettext("demo", "Art room")],
                                                     [*numbered("203", "204"), pgettext("demo", "Music room")])),
        ]},
        {"name": pgettext("demo", "Building B – sports hall"), "code": "B", "floors": [
            (pgettext("demo", "Ground floor"), 0, [hall, changing]),
        ]},
    ]


def seed_demo_structure(site: Site, people: dict[str, Membership]) -> None:
    """The school above in ``site``; ``people`` are the demo's memberships by their e-mail's local part."""
    zones_by_building: dict[str, list[Zone]] = {}
    for position, spec in enumerate(_school(), start=1):
        building = actions.save_building(actor=None, site=site, name=spec["name"], code=spec["code"],
                                         position=position)
        zones_by_building[spec["code"]] = []
        for floor_name, level, zone_specs in spec["floors"]:
            floor = actions.save_floor(actor=None, building=building, name=floor_name, level=level)
            zones = _seed_zones(floor, zone_specs, people, spec["code"])
            zones_by_building[spec["code"]] += zones
            _seed_plan(floor, zone_specs, ground=level == 0)
    actions.save_assembly_point(actor=None, site=site, name=pgettext("demo", "Schoolyard (north)"),
                                latitude=52.52395, longitude=13.40212, capacity=600, zones=zones_by_building["A"])
    actions.save_assembly_point(actor=None, site=site, name=pgettext("demo", "Sports field"),
                                latitude=52.52301, longitude=13.40488, capacity=250, zones=zones_by_building["B"])


def _seed_zones(floor: Floor, zone_specs, people, building_code: str) -> list[Zone]:
    if building_code == "A":
        helpers, deputies = [people["member"]], [people["lead"]]
    else:
        helpers, deputies = [people["employee"]], [people["member"]]
    zones = []
    for index, (name, code, rooms) in enumerate(zone_specs):
        zone = actions.save_zone(actor=None, floor=floor, name=name, code=code, neighbours=zones[-1:],
                                 helpers=helpers, deputies=deputies, area=zone_area(index, len(zone_specs)))
        for room in rooms:
            actions.save_room(actor=None, zone=zone, name=room)
        zones.append(zone)
    return zones


def zone_area(index: int, count: int) -> tuple[float, float, float, float]:
    """Where :func:`draw_plan` draws the ``index``-th of ``count`` zones, as fractions of the plan."""
    width, height = PLAN_SIZE
    left, right = 60, width - 60
    span = (right - left - 160) / count
    return ((left + 80 + index * span) / width, 40 / height, span / width, (height - 80) / height)


def _seed_plan(floor: Floor, zone_specs, *, ground: bool) -> None:
    actions.set_floor_plan(actor=None, floor=floor, content=draw_plan(floor.name, zone_specs, ground=ground))
    middle = (CORRIDOR[0] + CORRIDOR[1]) / 2 / PLAN_SIZE[1]
    exit_label = pgettext("demo", "Exit %(n)d") if ground else pgettext("demo", "Stairs %(n)d")
    markers = [(Marker.Kind.EXIT, 0.03, middle, exit_label % {"n": 1}),
               (Marker.Kind.EXIT, 0.97, middle, exit_label % {"n": 2}),
               (Marker.Kind.EXTINGUISHER, 0.30, middle, ""),
               (Marker.Kind.EXTINGUISHER, 0.70, middle, "")]
    if ground:
        markers += [(Marker.Kind.FIRST_AID, 0.45, 0.26, pgettext("demo", "First-aid room")),
                    (Marker.Kind.DEFIBRILLATOR, 0.55, 0.5, ""),
                    (Marker.Kind.KEY_BOX, 0.57, 0.96, pgettext("demo", "Main entrance"))]
    for kind, x, y, label in markers:
        actions.save_marker(actor=None, floor=floor, kind=kind, x=x, y=y, label=label)


def _font(size: int):
    return ImageFont.load_default(size=size)


def draw_plan(title: str, zone_specs, *, ground: bool) -> bytes:
    """A plan of one floor: for each zone a stretch of the corridor with its rooms above and below, the
    zone's code in the corridor, stairs at both ends, green arrows to the exits, the title in a corner."""
    width, height = PLAN_SIZE
    top, bottom = CORRIDOR
    image = Image.new("RGB", PLAN_SIZE, "white")
    draw = ImageDraw.Draw(image)
    left, right = 60, width - 60
    draw.rectangle((left, 40, right, height - 40), fill=ROOM_FILL, outline=WALL, width=6)
    draw.rectangle((left, top, right, bottom), fill=CORRIDOR_FILL, outline=WALL, width=3)
    span = (right - left - 160) / len(zone_specs)
    small, label_font = _font(18), _font(22)
    for i, (_name, code, rooms) in enumerate(zone_specs):
        x0 = left + 80 + i * span
        if i:  # where one zone ends and the next begins
            draw.line((x0, top + 4, x0, bottom - 4), fill="#8593a6", width=2)
        _draw_rooms(draw, rooms, x0, x0 + span, top, bottom, height, small)
        draw.text((x0 + span / 2, (top + bottom) / 2), code, fill="#556275", font=label_font, anchor="mm")
    for x0 in (left, right - 80):  # stairs at both ends
        for step in range(8):
            draw.line((x0 + step * 10, top + 6, x0 + step * 10, bottom - 6), fill=WALL, width=2)
    _arrow(draw, left + 20, (top + bottom) / 2, -1)
    _arrow(draw, right - 20, (top + bottom) / 2, 1)
    if ground:
        draw.rectangle((width / 2 - 50, height - 46, width / 2 + 50, height - 34), fill="white")
        _arrow_down(draw, width / 2, height - 40)
    draw.text((left + 10, 10), title, fill=INK, font=_font(24))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _draw_rooms(draw, rooms, x0, x1, top, bottom, height, font) -> None:
    above, below = rooms[: (len(rooms) + 1) // 2], rooms[(len(rooms) + 1) // 2:]
    for row, (y0, y1) in ((above, (40, top)), (below, (bottom, height - 40))):
        if not row:
            continue
        step = (x1 - x0) / len(row)
        for j, name in enumerate(row):
            box = (x0 + j * step, y0, x0 + (j + 1) * step, y1)
            draw.rectangle(box, outline=WALL, width=3)
            draw.text(((box[0] + box[2]) / 2, (y0 + y1) / 2), name, fill=INK, font=font, anchor="mm")
            door = box[0] + step / 2
            door_y = y1 if y1 == top else y0
            draw.line((door - 18, door_y, door + 18, door_y), fill=CORRIDOR_FILL, width=5)


def _arrow(draw, x, y, direction: int) -> None:
    """A green arrow pointing out of the building at the corridor's end (``direction`` −1 left, 1 right)."""
    tip = x + direction * 50
    draw.line((x - direction * 10, y, tip - direction * 18, y), fill=EXIT, width=12)
    draw.polygon(((tip, y), (tip - direction * 24, y - 20), (tip - direction * 24, y + 20)), fill=EXIT)


def _arrow_down(draw, x, y) -> None:
    draw.line((x, y - 20, x, y + 14), fill=EXIT, width=12)
    draw.polygon(((x, y + 36), (x - 20, y + 12), (x + 20, y + 12)), fill=EXIT)
