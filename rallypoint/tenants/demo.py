"""The demo organisation seeded on first start of the embedded installation."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.db import transaction

from rallypoint.accounts.actions import create_person
from rallypoint.alarms.models import Level, Question, Scenario
from rallypoint.tenants import actions
from rallypoint.tenants.models import Organization
from rallypoint.tenants.roles import Role

DEMO_DOMAIN = "demo.rallypoint.example"
CREDENTIALS_FILE = "demo-credentials.txt"

# (e-mail local part, name, role at headquarters or "superadmin", phone, department)
DEMO_PEOPLE = [
    ("superadmin", "Sabine Oberhuber", "superadmin", "+49 30 5550100", "Management"),
    ("admin", "Anton Adler", Role.ADMIN, "+49 30 5550101", "IT"),
    ("lead", "Lena Leitner", Role.LEAD, "+49 30 5550102", "Safety"),
    ("member", "Mehmet Yilmaz", Role.MEMBER, "+49 30 5550103", "Facility management"),
    ("employee", "Emma Schneider", Role.EMPLOYEE, "+49 30 5550104", "Accounting"),
    ("guest", "Gustav Gast", Role.GUEST, "", ""),
]


def credentials_path() -> Path:
    return settings.DATA_DIR / CREDENTIALS_FILE


def seed_demo() -> list[tuple[str, str, str]] | None:
    """Create the demo organisation unless any organisation exists. Returns (e-mail, password, role)."""
    if Organization.objects.exists():
        return None
    logins = []
    with transaction.atomic():
        org = actions.create_organization(name="Demo Organisation")
        hq = actions.create_site(actor=None, organization=org, name="Headquarters")
        warehouse = actions.create_site(actor=None, organization=org, name="Warehouse")
        people = {}
        for local, name, role, phone, department in DEMO_PEOPLE:
            password = secrets.token_urlsafe(12)
            site_role = Role.ADMIN if role == "superadmin" else role
            people[local] = create_person(actor=None, site=hq, data={
                "email": f"{local}@{DEMO_DOMAIN}", "full_name": name, "role": site_role, "phone": phone,
                "department": department})
            user = people[local].user
            user.set_password(password)
            user.save(update_fields=["password"])
            if role == "superadmin":
                actions.grant_super_admin(actor=None, organization=org, user=user)
            logins.append((user.email, password, role))
        create_person(actor=None, site=warehouse, data={
            "email": people["employee"].user.email, "full_name": people["employee"].full_name,
            "role": Role.EMPLOYEE})
        crisis = actions.save_group(actor=None, site=hq, group=None, name="Crisis team",
                                    description="Leads the response to an incident.",
                                    members=[people["lead"], people["member"], people["admin"]])
        actions.save_group(actor=None, site=hq, group=None, name="Evacuation helpers",
                           description="Clear their zones and report them cleared.",
                           members=[people["member"], people["employee"]])
        seed_demo_scenarios(hq, crisis)
    _write_credentials(logins)
    return logins


def seed_demo_scenarios(site, crisis_team) -> None:
    """A fire alarm (quick alarm, two levels, escalation), a medical emergency, a silent threat alarm."""
    everyone = list(Role.values)
    fire = Scenario.objects.create(
        site=site, name="Fire", priority=1, icon=Scenario.Icon.FIRE, quick=True,
        message_template="Fire alarm at {site}: {location}. Follow the instructions below.",
        instructions={Role.LEAD: "Open the cockpit, call the fire brigade (112), lead the response.",
                      Role.MEMBER: "Go to the assembly point and count people.",
                      Role.EMPLOYEE: "Leave the building by the nearest exit. Do not use lifts.",
                      Role.GUEST: "Leave the building by the nearest exit. Do not use lifts."})
    evacuate = Level.objects.create(site=site, scenario=fire, position=2, name="Evacuate",
                                    recipient_roles=everyone, channels=["inapp", "push", "email"])
    pre = Level.objects.create(site=site, scenario=fire, position=1, name="Pre-alarm",
                               channels=["inapp", "push", "email"], escalate_below=2, escalate_after_seconds=120,
                               escalation=Level.Escalation.RAISE_LEVEL, escalate_to_level=evacuate)
    pre.recipient_groups.add(crisis_team)
    Question.objects.create(site=site, scenario=fire, position=1, text="Is anyone hurt?",
                            answers=["No", "Yes", "Unknown"])
    Question.objects.create(site=site, scenario=fire, position=2, text="Is there smoke?",
                            answers=["No", "A little", "Heavy smoke"])
    medical = Scenario.objects.create(
        site=site, name="Medical emergency", priority=2, icon=Scenario.Icon.MEDICAL, color="#1d4ed8",
        sound=Scenario.Sound.GONG, message_template="Medical emergency: {location}.",
        instructions={Role.MEMBER: "Bring the first-aid kit and the defibrillator."})
    level = Level.objects.create(site=site, scenario=medical, position=1, name="First aid needed",
                                 channels=["inapp", "push", "email"])
    level.recipient_groups.add(crisis_team)
    threat = Scenario.objects.create(
        site=site, name="Threat", priority=1, icon=Scenario.Icon.THREAT, color="#4a1d96", silent=True,
        sound=Scenario.Sound.NONE, trigger_roles=everyone, allow_drill=True,
        message_template="Threat situation at {location}. Stay where you are, lock the door, keep quiet.")
    Level.objects.create(site=site, scenario=threat, position=1, name="Lock down", recipient_roles=everyone,
                         channels=["inapp", "push", "email"])


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
