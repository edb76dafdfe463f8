"""The demo organisation seeded on first start of the embedded installation."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import translation
from django.utils.translation import pgettext

from rallypoint.accounts.models import User
from rallypoint.alarms.models import Level, Question, Scenario
from rallypoint.evacuation.demo_people import check_in_demo_people, seed_demo_class
from rallypoint.evacuation.demo_structure import seed_demo_structure
from rallypoint.people.actions import create_person, save_group
from rallypoint.tenants import actions
from rallypoint.tenants.models import Organization
from rallypoint.tenants.roles import Role

DEMO_DOMAIN = "demo.rallypoint.example"
CREDENTIALS_FILE = "demo-credentials.txt"

# (e-mail local part, name, role at headquarters or "superadmin", phone)
DEMO_PEOPLE = [
    ("superadmin", "Sabine Oberhuber", "superadmin", "+49 30 5550100"),
    ("admin", "Anton Adler", Role.ADMIN, "+49 30 5550101"),
    ("lead", "Lena Leitner", Role.LEAD, "+49 30 5550102"),
    ("member", "Mehmet Yilmaz", Role.MEMBER, "+49 30 5550103"),
    ("employee", "Emma Schneider", Role.EMPLOYEE, "+49 30 5550104"),
    ("guest", "Gustav Gast", Role.GUEST, ""),
]


def _department(local: str) -> str:
    return {"superadmin": pgettext("demo", "Management"), "admin": pgettext("demo", "IT"),
            "lead": pgettext("demo", "Health and safety"), "member": pgettext("demo", "Facility management"),
            "employee": pgettext("demo", "Accounting")}.get(local, "")


def credentials_path() -> Path:
    return settings.DATA_DIR / CREDENTIALS_FILE


def seed_demo() -> list[tuple[str, str, str]] | None:
    """Create the demo organisation unless any organisation exists. Returns (e-mail, password, role).

    Written in the installation's language (``RP_LANGUAGE``): names of sites, groups, scenarios,
    levels, questions and the messages are data, stored once, so they are seeded in the language the
    site will mostly be used in."""
    if Organization.objects.exists():
        return None
    with translation.override(settings.LANGUAGE_CODE), transaction.atomic():
        logins = _seed()
    _write_credentials(logins)
    return logins


def _seed() -> list[tuple[str, str, str]]:
    logins = []
    org = actions.create_organization(name=pgettext("demo", "Demo Organisation"))
    hq = actions.create_site(actor=None, organization=org, name=pgettext("demo", "Headquarters"))
    warehouse = actions.create_site(actor=None, organization=org, name=pgettext("demo", "Warehouse"))
    people = {}
    for local, name, role, phone in DEMO_PEOPLE:
        password = secrets.token_urlsafe(12)
        site_role = Role.ADMIN if role == "superadmin" else role
        people[local] = create_person(actor=None, site=hq, data={
            "email": f"{local}@{DEMO_DOMAIN}", "full_name": name, "role": site_role, "phone": phone,
            "department": _department(local)})
        user = people[local].user
        user.set_password(password)
        user.save(update_fields=["password"])
        if role == "superadmin":
            actions.grant_super_admin(actor=None, organization=org, user=user)
        logins.append((user.email, password, role))
    create_person(actor=None, site=warehouse, data={
        "email": people["employee"].user.email, "full_name": people["employee"].full_name,
        "role": Role.EMPLOYEE})
    crisis = save_group(actor=None, site=hq, group=None, name=pgettext("demo", "Crisis team"),
                                description=pgettext("demo", "Leads the response to an incident."),
                                members=[people["lead"], people["member"], people["admin"]])
    save_group(actor=None, site=hq, group=None, name=pgettext("demo", "Evacuation helpers"),
                       description=pgettext("demo", "Clear their zones and report them cleared."),
                       members=[people["member"], people["employee"]])
    seed_demo_scenarios(hq, crisis)
    seed_demo_structure(hq, people)
    seed_demo_class(hq, people)
    check_in_demo_people(hq, people)
    return logins


def refresh_demo_presence() -> int:
    """Check the demo's people in again (presence ends at midnight): at each start of a demo installation."""
    people = {}
    for local, *_rest in DEMO_PEOPLE:
        user = User.objects.by_email(f"{local}@{DEMO_DOMAIN}").first()
        membership = user and user.memberships.select_related("site").order_by("site_id").first()
        if membership is not None:
            people[local] = membership
    if "lead" not in people:
        return 0
    site = people["lead"].site
    return check_in_demo_people(site, {k: m for k, m in people.items() if m.site_id == site.pk})


def seed_demo_scenarios(site, crisis_team) -> None:
    """A fire alarm (quick alarm, two levels, escalation), a medical emergency, a silent threat alarm.

    Every role a level reaches has its instructions, so that no message promises what it does not carry."""
    everyone = list(Role.values)
    leave = pgettext("demo", "Leave the building by the nearest exit and go to the assembly point. Do not use "
                             "the lifts.")
    fire = Scenario.objects.create(
        site=site, name=pgettext("demo", "Fire"), priority=1, icon=Scenario.Icon.FIRE, quick=True,
        evacuates=Scenario.Evacuates.BUILDING,
        message_template=pgettext("demo", "Fire alarm at {site}: {location}."),
        instructions={Role.ADMIN: pgettext("demo", "Leave the building by the nearest exit and report to the "
                                                   "crisis team at the assembly point."),
                      Role.LEAD: pgettext("demo", "Open the cockpit, call the fire brigade (112) and lead the "
                                                  "response."),
                      Role.MEMBER: pgettext("demo", "Go to the assembly point and count the people there."),
                      Role.EMPLOYEE: leave, Role.GUEST: leave})
    evacuate = Level.objects.create(site=site, scenario=fire, position=2, name=pgettext("demo", "Evacuate"),
                                    recipient_roles=everyone, channels=["inapp", "push", "email"])
    pre = Level.objects.create(site=site, scenario=fire, position=1, name=pgettext("demo", "Pre-alarm"),
                               channels=["inapp", "push", "email"], escalate_below=2, escalate_after_seconds=120,
                               escalation=Level.Escalation.RAISE_LEVEL, escalate_to_level=evacuate)
    pre.recipient_groups.add(crisis_team)
    no, yes, unknown = pgettext("demo", "No"), pgettext("demo", "Yes"), pgettext("demo", "Unknown")
    Question.objects.create(site=site, scenario=fire, position=1, text=pgettext("demo", "Is anyone hurt?"),
                            answers=[no, yes, unknown])
    Question.objects.create(site=site, scenario=fire, position=2, text=pgettext("demo", "Is there smoke?"),
                            answers=[no, pgettext("demo", "A little"), pgettext("demo", "Heavy smoke")])
    medical = Scenario.objects.create(
        site=site, name=pgettext("demo", "Medical emergency"), priority=2, icon=Scenario.Icon.MEDICAL,
        color="#1d4ed8", sound=Scenario.Sound.GONG,
        message_template=pgettext("demo", "Medical emergency at {site}: {location}."),
        instructions={Role.ADMIN: pgettext("demo", "Keep the way from the entrance clear for the ambulance."),
                      Role.LEAD: pgettext("demo", "Call the ambulance (112) unless someone has, and send someone "
                                                  "to the entrance to meet it."),
                      Role.MEMBER: pgettext("demo", "Bring the first-aid kit and the defibrillator.")})
    level = Level.objects.create(site=site, scenario=medical, position=1, name=pgettext("demo", "First aid needed"),
                                 channels=["inapp", "push", "email"])
    level.recipient_groups.add(crisis_team)
    threat = Scenario.objects.create(
        site=site, name=pgettext("demo", "Threat"), priority=1, icon=Scenario.Icon.THREAT, color="#4a1d96",
        silent=True, sound=Scenario.Sound.NONE, trigger_roles=everyone, allow_drill=True,
        message_template=pgettext("demo", "Threat at {site}: {location}. Stay where you are, lock the door, keep "
                                          "away from doors and windows and keep quiet. Wait for the all-clear."))
    Level.objects.create(site=site, scenario=threat, position=1, name=pgettext("demo", "Lock down"),
                         recipient_roles=everyone, channels=["inapp", "push", "email"])


def _write_credentials(logins) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# Rallypoint demo sign-in details (as created at first start)\n")
        for email, password, role in logins:
            handle.write(f"{email}\t{password}\t{role}\n")


def read_credentials() -> list[tuple[str, str, str]]:
    path = credentials_path()
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            email, password, role = line.split("\t")
            rows.append((email, password, role))
    return rows
