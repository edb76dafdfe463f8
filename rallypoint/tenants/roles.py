"""The one role → permission table.

Everything that decides what a role may do reads :data:`ROLE_PERMISSIONS`.
``docs/roles.md`` is generated from it (``rallypoint roles-doc``) and a test
fails when the document is stale.
"""

from __future__ import annotations

from enum import StrEnum

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMIN = "admin", _("Administrator")
    LEAD = "lead", _("Crisis-team lead")
    MEMBER = "member", _("Crisis-team member")
    EMPLOYEE = "employee", _("Employee")
    GUEST = "guest", _("Guest")


# Org-level role: an administrator over every site of one organisation.
SUPER_ADMIN = "superadmin"
SUPER_ADMIN_LABEL = _("Super-admin")


class Perm(StrEnum):
    VIEW_SITE = "site.view"
    MANAGE_SITE = "site.manage"
    MANAGE_ORG_SITES = "org.manage_sites"
    MANAGE_SUPER_ADMINS = "org.manage_super_admins"
    VIEW_DIRECTORY = "people.view_directory"
    VIEW_PERSONAL_DATA = "people.view_personal_data"
    MANAGE_PEOPLE = "people.manage"
    VIEW_GROUPS = "groups.view"
    MANAGE_GROUPS = "groups.manage"
    VIEW_AUDIT = "audit.view"
    VIEW_SECURITY_EVENTS = "security_events.view"
    TRIGGER_ALARMS = "alarms.trigger"
    VIEW_COCKPIT = "alarms.view_cockpit"
    MANAGE_ALARMS = "alarms.manage"
    MANAGE_SCENARIOS = "scenarios.manage"
    MANAGE_API_KEYS = "api_keys.manage"
    VIEW_STRUCTURE = "structure.view"
    MANAGE_STRUCTURE = "structure.manage"
    ROLL_CALL = "evacuation.roll_call"
    VIEW_PRESENCE = "presence.view"
    MANAGE_VISITORS = "visitors.manage"


PERMISSION_TEXT: dict[Perm, str] = {
    Perm.VIEW_SITE: _("Work in the site: see its name, own profile and the pages of the web app"),
    Perm.MANAGE_SITE: _("Change the site's settings"),
    Perm.MANAGE_ORG_SITES: _("Create and delete sites of the organisation"),
    Perm.MANAGE_SUPER_ADMINS: _("Grant and revoke the Super-admin role"),
    Perm.VIEW_DIRECTORY: _("See the names of the site's people and their groups (no contact data)"),
    Perm.VIEW_PERSONAL_DATA: _("See other people's personal data (e-mail, phone, department)"),
    Perm.MANAGE_PEOPLE: _("Create, invite, edit, deactivate, import and export people; grant roles"),
    Perm.VIEW_GROUPS: _("See the site's groups and who belongs to them"),
    Perm.MANAGE_GROUPS: _("Create, change and delete groups"),
    Perm.VIEW_AUDIT: _("Browse the audit trail of the site"),
    Perm.VIEW_SECURITY_EVENTS: _("See the security events (sign-ins, failures, grants) of the site's people"),
    Perm.TRIGGER_ALARMS: _("Trigger the alarms whose scenario allows their role or group"),
    Perm.VIEW_COCKPIT: _("See the live cockpit: active alarms, their timeline, who has answered"),
    Perm.MANAGE_ALARMS: _("Update, raise and end alarms"),
    Perm.MANAGE_SCENARIOS: _("Create and change alarm scenarios, their levels and escalation rules"),
    Perm.MANAGE_API_KEYS: _("Create, rotate and revoke the site's API keys"),
    Perm.VIEW_STRUCTURE: _("See the site's buildings, floor plans, zones and assembly points"),
    Perm.MANAGE_STRUCTURE: _("Change buildings, floors and their plans, zones, assembly points and helpers' duties"),
    Perm.ROLL_CALL: _("During an evacuation: roll call, the missing list and the handover to the fire brigade"),
    Perm.VIEW_PRESENCE: _("See who is on site and where, during an active alarm only (otherwise counts)"),
    Perm.MANAGE_VISITORS: _("Register visitors and see the visitor list"),
}

_ADMIN = frozenset({
    Perm.VIEW_SITE, Perm.MANAGE_SITE, Perm.VIEW_DIRECTORY, Perm.VIEW_PERSONAL_DATA,
    Perm.MANAGE_PEOPLE, Perm.VIEW_GROUPS, Perm.MANAGE_GROUPS, Perm.VIEW_AUDIT, Perm.VIEW_SECURITY_EVENTS,
    Perm.TRIGGER_ALARMS, Perm.VIEW_COCKPIT, Perm.MANAGE_ALARMS, Perm.MANAGE_SCENARIOS, Perm.MANAGE_API_KEYS,
    Perm.VIEW_STRUCTURE, Perm.MANAGE_STRUCTURE, Perm.ROLL_CALL, Perm.VIEW_PRESENCE, Perm.MANAGE_VISITORS,
})
_CRISIS_TEAM = frozenset({Perm.VIEW_SITE, Perm.VIEW_DIRECTORY, Perm.VIEW_GROUPS, Perm.TRIGGER_ALARMS,
                          Perm.VIEW_COCKPIT, Perm.VIEW_STRUCTURE, Perm.ROLL_CALL, Perm.VIEW_PRESENCE})

ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    SUPER_ADMIN: _ADMIN | {Perm.MANAGE_ORG_SITES, Perm.MANAGE_SUPER_ADMINS},
    Role.ADMIN: _ADMIN,
    Role.LEAD: _CRISIS_TEAM | {Perm.MANAGE_ALARMS},
    Role.MEMBER: _CRISIS_TEAM,
    Role.EMPLOYEE: frozenset({Perm.VIEW_SITE, Perm.TRIGGER_ALARMS, Perm.VIEW_STRUCTURE}),
    Role.GUEST: frozenset({Perm.VIEW_SITE, Perm.TRIGGER_ALARMS, Perm.VIEW_STRUCTURE}),
}

ROLE_ORDER: list[str] = [SUPER_ADMIN, Role.ADMIN, Role.LEAD, Role.MEMBER, Role.EMPLOYEE, Role.GUEST]


def role_label(role: str) -> str:
    return str(SUPER_ADMIN_LABEL) if role == SUPER_ADMIN else str(Role(role).label)


def permissions_for(role: str | None) -> frozenset[Perm]:
    return ROLE_PERMISSIONS.get(role, frozenset()) if role else frozenset()


def render_roles_markdown() -> str:
    """The text of docs/roles.md, generated from the table above (always in English)."""
    lines = [
        "# Roles and permissions",
        "",
        "Generated from `rallypoint/tenants/roles.py` by `rallypoint roles-doc`; do not edit by hand.",
        "A test fails when this file does not match the code.",
        "",
        "Only Administrators and Super-admins see other people's personal data (need-to-know).",
        "A Super-admin holds the Administrator permissions on every site of the organisation.",
        "",
        "| Permission | Meaning | " + " | ".join(role_label(r) for r in ROLE_ORDER) + " |",
        "|---|---|" + "---|" * len(ROLE_ORDER),
    ]
    for perm in Perm:
        marks = " | ".join("yes" if perm in ROLE_PERMISSIONS[r] else "–" for r in ROLE_ORDER)
        lines.append(f"| `{perm.value}` | {PERMISSION_TEXT[perm]} | {marks} |")
    return "\n".join(lines) + "\n"
