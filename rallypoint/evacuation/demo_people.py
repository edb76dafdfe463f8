"""The demo's people on site: a class of pupils listed without a login, led by the demo's employee (their
teacher), and everyone of the demo's first site present in a zone of the school, so that an evacuation can be
played right after the first start. Presence ends at midnight: each start of the demo checks people in again.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import pgettext

from rallypoint.evacuation import presence
from rallypoint.evacuation.models import Source, Zone
from rallypoint.people import actions
from rallypoint.people.models import Group, Membership
from rallypoint.tenants.models import Site

PUPILS = ["Ben Becker", "Clara Conrad", "David Demir", "Elif Engel", "Finn Fischer", "Greta Graf"]
#: Where the demo's people are, by their e-mail's local part: zone codes of the demo school.
WHERE = {"superadmin": "A-0-M", "admin": "A-2-E", "lead": "A-0-M", "member": "A-0-W", "employee": "A-1-W",
         "guest": "A-2-W"}
PUPILS_ZONE = "A-1-W"


def class_name() -> str:
    return pgettext("demo", "Class 5a")


def seed_demo_class(site: Site, people: dict[str, Membership]) -> Group:
    """The pupils (listed, no account) and their class, led by the demo's employee."""
    pupils = [Membership.objects.create(site=site, kind=Membership.Kind.LISTED, user=None, full_name=name)
              for name in PUPILS]
    group = actions.save_group(actor=None, site=site, group=None, name=class_name(),
                               description=pgettext("demo", "Pupils of the fifth grade, with their teacher."),
                               members=pupils)
    group.leaders.add(people["employee"])
    return group


def check_in_demo_people(site: Site, people: dict[str, Membership]) -> int:
    """Everyone of the demo's first site on site now, in their zone (those already present are left alone)."""
    zones = {z.code: z for z in Zone.objects.for_site(site).select_related("floor__building").exclude(code="")}
    pupils_zone = zones.get(PUPILS_ZONE)
    placed = [(people[local], zones.get(code)) for local, code in WHERE.items() if local in people]
    group = Group.objects.for_site(site).filter(name=class_name()).first()
    if group is not None:
        placed += [(pupil, pupils_zone) for pupil in group.members.all()]
    count = 0
    with transaction.atomic():
        for person, zone in placed:
            if not presence.is_present(person):
                presence.arrive(membership=person, source=Source.APP, zone=zone)
                count += 1
    return count
