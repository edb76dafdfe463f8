"""The demo organisation seeded on first start of the embedded installation."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.db import transaction

from rallypoint.accounts.actions import create_person
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
        actions.save_group(actor=None, site=hq, group=None, name="Crisis team",
                           description="Leads the response to an incident.",
                           members=[people["lead"], people["member"], people["admin"]])
        actions.save_group(actor=None, site=hq, group=None, name="Evacuation helpers",
                           description="Clear their zones and report them cleared.",
                           members=[people["member"], people["employee"]])
    _write_credentials(logins)
    return logins


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
