"""How the audit trail reads: one table of every field the trail holds, with its label and how its values
are shown, in the reader's language.

The trail stores what changed as field names and raw values — keys ("employee", "web"), ids of people and
groups, fingerprints of personal data. :data:`FIELDS` turns them into words; the pages only print the
result. Names are looked up when the page is shown (the trail stores no names of people), and people's
names only for a reader who may see personal data (need-to-know, ``Perm.VIEW_PERSONAL_DATA``); anyone
else reads "Person #6".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.template.defaultfilters import filesizeformat
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from rallypoint.accounts.mfa_models import OrganizationSecurity
from rallypoint.alarms.models import CHANNEL_CHOICES, Alarm, Level, Question, Scenario, ScenarioDocument
from rallypoint.audit.models import Approval
from rallypoint.evacuation.models import AssemblyPoint, Building, Floor, Marker, Room, Source, Zone
from rallypoint.integrations.models import ApiKey
from rallypoint.people.models import Group, Membership
from rallypoint.tenants.roles import SUPER_ADMIN, Role, role_label


def _choices(choices) -> Callable[[object], str]:
    labels = dict(choices)
    return lambda value: str(labels.get(value, value))


def _counts(value) -> str:
    if not isinstance(value, dict):
        return str(value)
    return ", ".join(f"{table}: {count}" for table, count in sorted(value.items()))


def _subject(value) -> str:
    if isinstance(value, dict) and isinstance(value.get("membership"), int):
        return _("Person #%(number)s") % {"number": value["membership"]}
    return "–"


#: Why a person was forgotten (people.forget), as the audit entry says it.
FORGOTTEN_BECAUSE = [("own wish", gettext_lazy("at their own wish")),
                     ("deleted by an administrator", gettext_lazy("by an administrator")),
                     ("restored backup", gettext_lazy("again, after an older backup was restored")),
                     ("deactivated", gettext_lazy("deactivated long enough (retention)"))]
ACCOUNT_AFTER = [("deleted", gettext_lazy("deleted")), ("kept", gettext_lazy("kept (other sites)")),
                 ("none", gettext_lazy("none"))]


def _role(value) -> str:
    return role_label(value) if value == SUPER_ADMIN or value in Role.values else str(value)


def _instruction(value) -> str:
    """Instructions are kept as "role: text"."""
    role, sep, text = str(value).partition(": ")
    return f"{_role(role)}: {text}" if sep else str(value)


def _seconds(value) -> str:
    if not isinstance(value, int):
        return str(value)
    return ngettext("%(n)s second", "%(n)s seconds", value) % {"n": value}


def _size(value) -> str:
    return str(filesizeformat(value))


_API_KEY_STATES = {"active": gettext_lazy("active"), "revoked": gettext_lazy("revoked")}
_SECRETS = {"old": gettext_lazy("the previous secret"), "new": gettext_lazy("a new secret")}
_API_ACTIONS = {"trigger": gettext_lazy("Alarm triggered"), "update": gettext_lazy("Alarm information updated"),
                "level": gettext_lazy("Alarm level changed"), "end": gettext_lazy("Alarm ended"),
                "presence": gettext_lazy("Presence reported")}


def _plain(value) -> str:
    return str(value)


@dataclass(frozen=True)
class Field:
    """A field of the trail: its label, how a value is shown, and what an id in it refers to."""

    label: Promise | str
    show: Callable[[object], str] = _plain
    #: "person", "group", "level" or "alarm": the value is the id (or a list of ids) of such an object.
    refers: str = ""


_PERSON = {
    "email": Field(gettext_lazy("E-mail")),
    "full_name": Field(gettext_lazy("Name")),
    "phone": Field(gettext_lazy("Phone")),
    "department": Field(gettext_lazy("Department")),
    "role": Field(gettext_lazy("Role"), _role),
    "messenger": Field(gettext_lazy("Messenger address")),
    "active": Field(gettext_lazy("Active")),
    "support_account": Field(gettext_lazy("Support account")),
    "kind": Field(gettext_lazy("Kind"), _choices(Membership.Kind.choices)),
    "registered_through": Field(gettext_lazy("Registered through"), _choices(Source.choices)),
    "why": Field(gettext_lazy("Deleted"), _choices(FORGOTTEN_BECAUSE)),
    "rows": Field(gettext_lazy("Records removed"), _counts),
    "messages_cancelled": Field(gettext_lazy("Messages not sent")),
    "account": Field(gettext_lazy("Account"), _choices(ACCOUNT_AFTER)),
    "approval": Field(gettext_lazy("Approved request no.")),
    "second_factor": Field(gettext_lazy("Second factor"), lambda v: str(_("reset")) if v is None else str(v)),
    "muted_channels": Field(gettext_lazy("No information messages by"), lambda v: ", ".join(
        str(dict(CHANNEL_CHOICES).get(c, c)) for c in (v or [])) or "–"),
}
_LEVEL = {
    "name": Field(gettext_lazy("Name")),
    "position": Field(gettext_lazy("Order")),
    "recipient_roles": Field(gettext_lazy("Roles alerted"), _role),
    "recipient_groups": Field(gettext_lazy("Groups alerted"), refers="group"),
    "recipient_people": Field(gettext_lazy("People alerted"), refers="person"),
    "channels": Field(gettext_lazy("Channels"), _choices(CHANNEL_CHOICES)),
    "requires_acceptance": Field(gettext_lazy("Recipients must accept or decline")),
    "escalate_below": Field(gettext_lazy("Escalation if fewer than … accepted")),
    "escalate_after_seconds": Field(gettext_lazy("Escalation after"), _seconds),
    "escalation": Field(gettext_lazy("Escalation rule"), _choices(Level.Escalation.choices)),
    "escalate_channels": Field(gettext_lazy("Channels to send again on"), _choices(CHANNEL_CHOICES)),
    "escalate_to_level": Field(gettext_lazy("Level to raise to"), refers="level"),
    "escalate_to_group": Field(gettext_lazy("Group to alert"), refers="group"),
}

_STRUCTURE: dict[tuple[str, str], Field] = {
    ("building", "name"): Field(gettext_lazy("Name")),
    ("building", "code"): Field(gettext_lazy("Short mark")),
    ("building", "position"): Field(gettext_lazy("Order")),
    ("floor", "building"): Field(gettext_lazy("Building"), refers="building"),
    ("floor", "name"): Field(gettext_lazy("Name")),
    ("floor", "level"): Field(gettext_lazy("Level of the floor")),
    ("floor", "plan"): Field(gettext_lazy("Floor plan")),
    ("zone", "floor"): Field(gettext_lazy("Floor"), refers="floor"),
    ("zone", "name"): Field(gettext_lazy("Name")),
    ("zone", "code"): Field(gettext_lazy("Code")),
    ("zone", "area"): Field(gettext_lazy("Place on the plan")),
    ("zone", "neighbours"): Field(gettext_lazy("Neighbouring zones"), refers="zone"),
    ("zone", "helpers"): Field(gettext_lazy("Evacuation helpers"), refers="person"),
    ("zone", "deputies"): Field(gettext_lazy("Deputies"), refers="person"),
    ("room", "zone"): Field(gettext_lazy("Zone"), refers="zone"),
    ("room", "name"): Field(gettext_lazy("Name")),
    ("assembly_point", "name"): Field(gettext_lazy("Name")),
    ("assembly_point", "latitude"): Field(gettext_lazy("Latitude")),
    ("assembly_point", "longitude"): Field(gettext_lazy("Longitude")),
    ("assembly_point", "capacity"): Field(gettext_lazy("Capacity (people)")),
    ("assembly_point", "zones"): Field(gettext_lazy("Zones that evacuate here"), refers="zone"),
    ("marker", "floor"): Field(gettext_lazy("Floor"), refers="floor"),
    ("marker", "kind"): Field(gettext_lazy("Marker"), _choices(Marker.Kind.choices)),
    ("marker", "x"): Field(gettext_lazy("Across (0 = left edge, 1 = right edge)")),
    ("marker", "y"): Field(gettext_lazy("Down (0 = top edge, 1 = bottom edge)")),
    ("marker", "label"): Field(gettext_lazy("Label")),
    ("site", "rows"): Field(gettext_lazy("Rows exported")),
    ("site", "created"): Field(gettext_lazy("Places added")),
    ("site", "updated"): Field(gettext_lazy("Places changed")),
}

#: (object type, field) → how the field reads. Levels, questions and documents of a scenario are kept on the
#: scenario's entries as "level#<id>.<field>" (see alarms.scenario_actions) and read as ("level", field).
FIELDS: dict[tuple[str, str], Field] = {
    **{("person", name): spec for name, spec in _PERSON.items()},
    ("user", "role"): Field(gettext_lazy("Role"), _role),
    ("organization", "alarm_record_days"): Field(gettext_lazy("Alarms: who was alerted and how they answered (days)")),
    ("organization", "push_idle_days"): Field(gettext_lazy("Push notifications: unused devices (days)")),
    ("organization", "deactivated_days"): Field(gettext_lazy("Deactivated people (days)")),
    ("organization", "four_eyes"): Field(gettext_lazy("Under four eyes"), lambda v: ", ".join(
        str(dict(Approval.Process.choices).get(p, p)) for p in (v or []))),
    ("organization", "officer"): Field(gettext_lazy("Data-protection officer"), refers="person"),
    ("organization", "training"): Field(gettext_lazy("Training checked on")),
    ("organization", "physical"): Field(gettext_lazy("Physical access checked on")),
    ("organization", "processors"): Field(gettext_lazy("Processors checked on")),
    ("organization", "recovery_drill"): Field(gettext_lazy("Recovery drill checked on")),
    ("approval", "process"): Field(gettext_lazy("Process"), _choices(Approval.Process.choices)),
    ("approval", "subject"): Field(gettext_lazy("Concerns"), _subject),
    ("approval", "result"): Field(gettext_lazy("Why it was not carried out")),
    ("approval", "without_second_person"): Field(gettext_lazy("Without a second person")),
    ("site", "name"): Field(gettext_lazy("Name")),
    ("site", "time_zone"): Field(gettext_lazy("Time zone")),
    ("site", "count"): Field(gettext_lazy("People exported")),
    ("group", "name"): Field(gettext_lazy("Name")),
    ("group", "description"): Field(gettext_lazy("Description")),
    ("group", "members"): Field(gettext_lazy("Members"), refers="person"),
    ("organization", "second_factor"): Field(gettext_lazy("Second factor"),
                                             _choices(OrganizationSecurity.SecondFactor.choices)),
    ("scenario", "name"): Field(gettext_lazy("Name")),
    ("scenario", "category"): Field(gettext_lazy("Category"), _choices(Scenario.Category.choices)),
    ("scenario", "priority"): Field(gettext_lazy("Priority")),
    ("scenario", "color"): Field(gettext_lazy("Colour")),
    ("scenario", "icon"): Field(gettext_lazy("Icon"), _choices(Scenario.Icon.choices)),
    ("scenario", "sound"): Field(gettext_lazy("Sound"), _choices(Scenario.Sound.choices)),
    ("scenario", "message_template"): Field(gettext_lazy("Message")),
    ("scenario", "instructions"): Field(gettext_lazy("Instructions"), _instruction),
    ("scenario", "trigger_roles"): Field(gettext_lazy("Roles that may trigger it"), _role),
    ("scenario", "trigger_groups"): Field(gettext_lazy("Groups that may trigger it"), refers="group"),
    ("scenario", "silent"): Field(gettext_lazy("Silent")),
    ("scenario", "allow_drill"): Field(gettext_lazy("May be run as a drill")),
    ("scenario", "quick"): Field(gettext_lazy("Quick alarm")),
    ("scenario", "is_active"): Field(gettext_lazy("Active")),
    ("scenario", "evacuates"): Field(gettext_lazy("Evacuates"), _choices(Scenario.Evacuates.choices)),
    **{("level", name): spec for name, spec in _LEVEL.items()},
    ("question", "text"): Field(gettext_lazy("Question")),
    ("question", "answers"): Field(gettext_lazy("Preset answers")),
    ("question", "position"): Field(gettext_lazy("Order")),
    ("document", "title"): Field(gettext_lazy("Title")),
    ("document", "size"): Field(gettext_lazy("Size"), _size),
    ("alarm", "scenario"): Field(gettext_lazy("Scenario")),
    ("alarm", "level"): Field(gettext_lazy("Level")),
    ("alarm", "drill"): Field(gettext_lazy("Drill")),
    ("alarm", "source"): Field(gettext_lazy("Raised through"), _choices(Alarm.Source.choices)),
    ("alarm", "api_key"): Field(gettext_lazy("API key")),
    ("alarm", "location"): Field(gettext_lazy("Location")),
    ("alarm", "note"): Field(gettext_lazy("Extra information")),
    ("alarm", "state"): Field(gettext_lazy("State"), _choices(Alarm.State.choices)),
    ("alarm", "reason"): Field(gettext_lazy("Reason")),
    # Who marked whom (evacuation.marked): the people marked, per status.
    ("alarm", "safe"): Field(gettext_lazy("Marked safe"), refers="person"),
    ("alarm", "need_help"): Field(gettext_lazy("Marked as needing help"), refers="person"),
    ("alarm", "not_on_site"): Field(gettext_lazy("Marked not on site"), refers="person"),
    ("access_review", "entries"): Field(gettext_lazy("People to review")),
    ("access_review", "people"): Field(gettext_lazy("Access confirmed"), refers="person"),
    ("api_key", "name"): Field(gettext_lazy("Name")),
    ("api_key", "prefix"): Field(gettext_lazy("Key begins with")),
    ("api_key", "key"): Field(gettext_lazy("Key begins with")),
    ("api_key", "scenarios"): Field(gettext_lazy("Scenarios it may trigger")),
    ("api_key", "reports_presence"): Field(gettext_lazy("Reports who is on site")),
    ("api_key", "secret"): Field(gettext_lazy("Secret"), _choices(_SECRETS.items())),
    ("api_key", "state"): Field(gettext_lazy("State"), _choices(_API_KEY_STATES.items())),
    ("api_key", "action"): Field(gettext_lazy("Used for"), _choices(_API_ACTIONS.items())),
    ("api_key", "alarm"): Field(gettext_lazy("Alarm"), refers="alarm"),
    ("api_key", "replayed"): Field(gettext_lazy("Repeated request (no new alarm)")),
    ("api_key", "count"): Field(gettext_lazy("Entries")),
    ("push_subscription", "device"): Field(gettext_lazy("Device")),
    ("push_subscription", "person"): Field(gettext_lazy("Person"), refers="person"),
    **_STRUCTURE,
}

_PART = re.compile(r"^(level|question|document)#(\d+)\.(.+)$")
_PART_LABELS = {"level": gettext_lazy("Level"), "question": gettext_lazy("Question"),
                "document": gettext_lazy("Document")}


def field_for(object_type: str, name: str) -> tuple[Field | None, tuple[str, str] | None]:
    """The field spec of ``name`` on an entry about ``object_type``, and the scenario part it belongs to."""
    part = _PART.match(name) if object_type == "scenario" else None
    if part:
        return FIELDS.get((part[1], part[3])), (part[1], part[2])
    return FIELDS.get((object_type, name)), None


@dataclass
class Names:
    """The current names of the objects a page of entries mentions, looked up once for the page."""

    show_people: bool
    found: dict[tuple[str, str], str] = field(default_factory=dict)

    def of(self, kind: str, pk: object) -> str:
        name = self.found.get((kind, str(pk)))
        if kind == "person":
            return name if name and self.show_people else _("Person #%(id)s") % {"id": pk}
        if kind == "alarm":
            return _("Alarm #%(id)s") % {"id": pk} + (f" ({name})" if name else "")
        return name or f"#{pk}"


_MODELS = {"group": Group, "level": Level, "question": Question, "document": ScenarioDocument,
           "scenario": Scenario, "api_key": ApiKey, "alarm": Alarm, "building": Building, "floor": Floor,
           "zone": Zone, "room": Room, "assembly_point": AssemblyPoint}


def _referenced(entries) -> dict[str, set[str]]:
    """The ids per kind that the entries' objects, parts and fields refer to."""
    wanted: dict[str, set[str]] = {kind: set() for kind in ("person", "user", *_MODELS)}
    for entry in entries:
        if entry.object_type in wanted:
            wanted[entry.object_type].add(entry.object_id)
        for name, values in entry.changes.items():
            spec, part = field_for(entry.object_type, name)
            if part:
                wanted[part[0]].add(part[1])
            if spec and spec.refers:
                for value in values:
                    items = value if isinstance(value, list) else [value]
                    wanted[spec.refers].update(str(v) for v in items if v not in (None, ""))
    return wanted


def _label_of(kind: str, row) -> str:
    if kind == "question":
        return row.text
    if kind == "document":
        return row.title
    if kind == "alarm":
        return f"{row.scenario.name} — {row.level.name}"
    return row.name


def look_up_names(site, entries, *, show_people: bool) -> Names:
    """The names of what ``entries`` mention, in ``site`` only (ids of other sites stay ids)."""
    wanted = _referenced(entries)
    names = Names(show_people=show_people)
    ids = {kind: [int(v) for v in values if str(v).isdigit()] for kind, values in wanted.items()}
    if show_people:
        for m in Membership.records.for_site(site).filter(pk__in=ids["person"]):
            names.found[("person", str(m.pk))] = m.display_name  # a forgotten person: "Deleted person #N"
        for m in Membership.objects.for_site(site).filter(user_id__in=ids["user"]):
            names.found[("user", str(m.user_id))] = m.full_name
    for kind, model in _MODELS.items():
        rows = model.objects.for_site(site).filter(pk__in=ids[kind])
        if kind == "alarm":
            rows = rows.select_related("scenario", "level")
        for row in rows:
            names.found[(kind, str(row.pk))] = _label_of(kind, row)
    return names


def show_value(spec: Field | None, value: object, names: Names) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list):  # kept sorted by key or id: shown sorted as read
        return ", ".join(sorted((show_value(spec, item, names) for item in value), key=str.casefold)) or "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if spec is None:
        return str(value)
    if spec.refers:
        return names.of(spec.refers, value)
    return spec.show(value)


def _part_name(kind: str, pk: str, names: Names) -> str:
    """"Level “Evacuate”", or "Level #12" once it is deleted."""
    name = names.found.get((kind, pk))
    if name:
        return _("%(part)s “%(name)s”") % {"part": _PART_LABELS[kind], "name": name}
    return f"{_PART_LABELS[kind]} #{pk}"


@dataclass(frozen=True)
class Change:
    label: str
    old: str
    new: str
    added: bool  # no value before (something created)


def changes_of(entry, names: Names) -> list[Change]:
    """The entry's changes as a reader sees them: labelled, in words, in the order of the labels."""
    rows = []
    for name, (old, new) in entry.changes.items():
        spec, part = field_for(entry.object_type, name)
        label = str(spec.label) if spec else name
        if part:
            label = f"{_part_name(part[0], part[1], names)} · {label}"
        rows.append(Change(label=label, old=show_value(spec, old, names), new=show_value(spec, new, names),
                           added=old in (None, "", [])))
    return sorted(rows, key=lambda change: change.label.casefold())


def object_name(entry, names: Names) -> str:
    """The current name of the entry's object, where the reader may see it ("" if unknown)."""
    kind = entry.object_type
    if kind in ("person", "user") and not names.show_people:
        return ""
    return names.found.get((kind, entry.object_id), "")


def unlabelled_fields(entries: Iterable) -> set[tuple[str, str]]:
    """(object type, field) pairs of the entries that :data:`FIELDS` does not name (for the tests)."""
    return {(entry.object_type, name) for entry in entries for name in entry.changes
            if field_for(entry.object_type, name)[0] is None}
