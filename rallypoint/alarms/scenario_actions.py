"""Creating, changing and deleting scenarios, their levels, questions and documents.

Each function checks the permission (``actor=None`` is the system itself),
writes in one transaction with its audit entry, and refuses to touch a
scenario while one of its alarms is active: people are acting on what it says.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from rallypoint.alarms.models import CHANNEL_KINDS, Alarm, AlarmRecipient, Level, Question, Scenario, ScenarioDocument
from rallypoint.audit.actions import diff, record
from rallypoint.notify.messages import check_template
from rallypoint.people.models import Group, Membership
from rallypoint.tenants.models import Site
from rallypoint.tenants.roles import Perm, Role
from rallypoint.tenants.scoping import require_perm

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
MAX_ANSWERS = 5
SCENARIO_FIELDS = ("name", "category", "priority", "color", "icon", "sound", "message_template", "instructions",
                   "trigger_roles", "silent", "allow_drill", "quick", "is_active", "evacuates")
LEVEL_FIELDS = ("name", "position", "recipient_roles", "channels", "requires_acceptance", "escalate_below",
                "escalate_after_seconds", "escalation", "escalate_channels")


def _locked(scenario: Scenario) -> Scenario:
    """The scenario row, locked for this transaction; refused while one of its alarms is active."""
    scenario = Scenario.objects.select_for_update().select_related("site__organization").get(pk=scenario.pk)
    if Alarm.objects.filter(scenario=scenario, state=Alarm.State.ACTIVE).exists():
        raise ValidationError(_("“%(name)s” cannot be changed while its alarm is active — end the alarm first.")
                              % {"name": scenario.name})
    return scenario


def _audit(actor, scenario: Scenario, action: str, changes: dict, part: str = "") -> None:
    """One audit entry on the scenario; changes to a level, question or document are named ``part.field``."""
    if changes:
        if part:
            changes = {f"{part}.{field}": values for field, values in changes.items()}
        record(actor=actor, organization=scenario.site.organization, site=scenario.site, action=action,
               object_type="scenario", object_id=scenario.pk, changes=changes)


def _same_site(site: Site, objects) -> list:
    objects = list(objects)
    if any(o.site_id != site.pk for o in objects):
        raise PermissionDenied
    return objects


# Scenarios -----------------------------------------------------------------------------------------

def scenario_state(scenario: Scenario) -> dict:
    state = {name: getattr(scenario, name) for name in SCENARIO_FIELDS}
    state["instructions"] = sorted(f"{role}: {text}" for role, text in scenario.instructions.items() if text)
    state["trigger_groups"] = sorted(scenario.trigger_groups.values_list("pk", flat=True))
    return state


def _clean_scenario(site: Site, scenario: Scenario | None, data: dict) -> dict:
    data = dict(data)
    data["name"] = data["name"].strip()
    clash = Scenario.objects.for_site(site).filter(name=data["name"])
    if scenario is not None:
        clash = clash.exclude(pk=scenario.pk)
    if clash.exists():
        raise ValidationError({"name": _("A scenario with this name already exists.")})
    try:
        check_template(data["message_template"])
    except ValidationError as exc:
        raise ValidationError({"message_template": exc.messages}) from None
    data["instructions"] = {role: text.strip() for role, text in (data.get("instructions") or {}).items()
                            if role in Role.values and text and text.strip()}
    data["trigger_roles"] = [r for r in Role.values if r in (data.get("trigger_roles") or [])]
    return data


def save_scenario(*, actor, site: Site, scenario: Scenario | None, data: dict) -> Scenario:
    """Create (``scenario=None``) or change a scenario. ``data`` holds SCENARIO_FIELDS and ``trigger_groups``."""
    require_perm(actor, site, Perm.MANAGE_SCENARIOS)
    if scenario is not None and scenario.site_id != site.pk:
        raise PermissionDenied
    data = _clean_scenario(site, scenario, data)
    groups = _same_site(site, data.pop("trigger_groups", []))
    with transaction.atomic():
        if scenario is None:
            before = {}
            scenario = Scenario(site=site)
        else:
            scenario = _locked(scenario)
            before = scenario_state(scenario)
        for name in SCENARIO_FIELDS:
            setattr(scenario, name, data[name])
        scenario.full_clean(exclude=["site"], validate_unique=False, validate_constraints=False)
        scenario.save()
        scenario.trigger_groups.set(groups)
        _audit(actor, scenario, "scenario.updated" if before else "scenario.created",
               diff(before, scenario_state(scenario)))
    return scenario


def delete_scenario(*, actor, scenario: Scenario) -> None:
    """Delete a scenario that has never been raised; one that has is part of the incident protocol."""
    require_perm(actor, scenario.site, Perm.MANAGE_SCENARIOS)
    with transaction.atomic():
        scenario = _locked(scenario)
        if Alarm.objects.filter(scenario=scenario).exists():
            raise ValidationError(_("“%(name)s” has alarms in the incident protocol and cannot be deleted. "
                                    "Switch it off (untick “active”) instead.") % {"name": scenario.name})
        before, pk = scenario_state(scenario), scenario.pk
        scenario.delete()
        scenario.pk = pk
        _audit(actor, scenario, "scenario.deleted", diff(before, {}))


# Levels --------------------------------------------------------------------------------------------

def level_state(level: Level) -> dict:
    state = {name: getattr(level, name) for name in LEVEL_FIELDS}
    state["recipient_people"] = sorted(level.recipient_people.values_list("pk", flat=True))
    state["recipient_groups"] = sorted(level.recipient_groups.values_list("pk", flat=True))
    state["escalate_to_level"] = level.escalate_to_level_id
    state["escalate_to_group"] = level.escalate_to_group_id
    return state


def _check_level_data(scenario: Scenario, level: Level | None, data: dict) -> None:
    if not data["channels"] or any(c not in CHANNEL_KINDS for c in data["channels"]):
        raise ValidationError({"channels": _("Choose at least one channel.")})
    if any(c not in CHANNEL_KINDS for c in data.get("escalate_channels") or []):
        raise ValidationError({"escalate_channels": _("Unknown channel.")})
    target = data.get("escalate_to_level")
    if target is not None and (target.scenario_id != scenario.pk or (level and target.pk == level.pk)):
        raise ValidationError({"escalate_to_level": _("Choose another level of this scenario.")})
    group = data.get("escalate_to_group")
    if group is not None:
        _same_site(scenario.site, [group])
    rule = data.get("escalation") or ""
    if rule == Level.Escalation.NEXT_CHANNEL and not data.get("escalate_channels"):
        raise ValidationError({"escalate_channels": _("Choose the channels to send again on.")})
    if rule == Level.Escalation.RAISE_LEVEL and target is None:
        raise ValidationError({"escalate_to_level": _("Choose the level to raise to.")})
    if rule == Level.Escalation.NOTIFY_GROUP and group is None:
        raise ValidationError({"escalate_to_group": _("Choose the group to alert.")})
    if rule and data.get("escalate_below", 0) < 1:
        raise ValidationError({"escalate_below": _("An escalation needs a number of at least 1.")})


def save_level(*, actor, scenario: Scenario, level: Level | None, data: dict) -> Level:
    """Create or change a level. ``data``: LEVEL_FIELDS, recipient_people/groups, escalate_to_level/group."""
    site = scenario.site
    require_perm(actor, site, Perm.MANAGE_SCENARIOS)
    if scenario.site_id != site.pk or (level is not None and level.scenario_id != scenario.pk):
        raise PermissionDenied
    _check_level_data(scenario, level, data)
    people = _same_site(site, data.get("recipient_people") or [])
    if any(m.is_support for m in people):
        raise ValidationError({"recipient_people": _("The support account cannot be alerted.")})
    groups = _same_site(site, data.get("recipient_groups") or [])
    with transaction.atomic():
        scenario = _locked(scenario)
        before = level_state(level) if level else {}
        level = level or Level(site=site, scenario=scenario)
        for name in LEVEL_FIELDS:
            setattr(level, name, data.get(name, getattr(level, name)))
        level.name = level.name.strip()
        level.recipient_roles = [r for r in Role.values if r in level.recipient_roles]
        level.escalation = level.escalation or ""
        level.escalate_to_level = data.get("escalate_to_level")
        level.escalate_to_group = data.get("escalate_to_group")
        level.save()
        level.recipient_people.set(people)
        level.recipient_groups.set(groups)
        _audit(actor, scenario, "scenario.level_updated" if before else "scenario.level_created",
               diff(before, level_state(level)), f"level#{level.pk}")
    return level


def delete_level(*, actor, level: Level) -> None:
    require_perm(actor, level.site, Perm.MANAGE_SCENARIOS)
    with transaction.atomic():
        scenario = _locked(level.scenario)
        if (Alarm.objects.filter(level=level).exists()
                or AlarmRecipient.objects.filter(level=level).exists()):
            raise ValidationError(_("The level “%(name)s” was used by alarms in the incident protocol and cannot "
                                    "be deleted.") % {"name": level.name})
        pointing = Level.objects.filter(escalate_to_level=level).exclude(pk=level.pk).first()
        if pointing is not None:
            raise ValidationError(_("The level “%(other)s” raises to this level: change its escalation rule "
                                    "first.") % {"other": pointing.name})
        before, pk = level_state(level), level.pk
        level.delete()
        _audit(actor, scenario, "scenario.level_deleted", diff(before, {}), f"level#{pk}")


# Questions -----------------------------------------------------------------------------------------

def save_question(*, actor, scenario: Scenario, question: Question | None, text: str, answers: list[str],
                  position: int = 1) -> Question:
    """A question asked while triggering, with up to five preset answers."""
    site = scenario.site
    require_perm(actor, site, Perm.MANAGE_SCENARIOS)
    if question is not None and question.scenario_id != scenario.pk:
        raise PermissionDenied
    text = text.strip()
    answers = [a.strip() for a in answers if a and a.strip()]
    if not text:
        raise ValidationError({"text": _("Write the question.")})
    if len(answers) > MAX_ANSWERS:
        raise ValidationError({"answers": _("A question may have at most five preset answers.")})
    if len(set(answers)) != len(answers):
        raise ValidationError({"answers": _("Each preset answer may appear only once.")})
    with transaction.atomic():
        scenario = _locked(scenario)
        clash = Question.objects.filter(scenario=scenario, text=text)
        if question is not None:
            clash = clash.exclude(pk=question.pk)
        if clash.exists():
            raise ValidationError({"text": _("This scenario already asks this question.")})
        before = {"text": question.text, "answers": question.answers, "position": question.position} if question else {}
        question = question or Question(site=site, scenario=scenario)
        question.text, question.answers, question.position = text, answers, position
        question.save()
        _audit(actor, scenario, "scenario.question_updated" if before else "scenario.question_created",
               diff(before, {"text": text, "answers": answers, "position": position}), f"question#{question.pk}")
    return question


def delete_question(*, actor, question: Question) -> None:
    require_perm(actor, question.site, Perm.MANAGE_SCENARIOS)
    with transaction.atomic():
        scenario = _locked(question.scenario)
        pk, before = question.pk, {"text": question.text, "answers": question.answers}
        question.delete()
        _audit(actor, scenario, "scenario.question_deleted", diff(before, {}), f"question#{pk}")


# Documents -----------------------------------------------------------------------------------------

def check_pdf(content: bytes) -> None:
    if len(content) > MAX_DOCUMENT_BYTES:
        raise ValidationError({"file": _("The file is larger than 5 MB.")})
    if not content.startswith(b"%PDF"):
        raise ValidationError({"file": _("This is not a PDF file.")})


def add_document(*, actor, scenario: Scenario, title: str, content: bytes) -> ScenarioDocument:
    site = scenario.site
    require_perm(actor, site, Perm.MANAGE_SCENARIOS)
    check_pdf(content)
    title = title.strip()
    if not title:
        raise ValidationError({"title": _("Give the document a title.")})
    with transaction.atomic():
        scenario = _locked(scenario)
        document = ScenarioDocument.objects.create(site=site, scenario=scenario, title=title, content=content,
                                                   size=len(content))
        _audit(actor, scenario, "scenario.document_added", {"title": [None, title], "size": [None, len(content)]},
               f"document#{document.pk}")
    return document


def delete_document(*, actor, document: ScenarioDocument) -> None:
    require_perm(actor, document.site, Perm.MANAGE_SCENARIOS)
    with transaction.atomic():
        scenario = _locked(document.scenario)
        pk, title = document.pk, document.title
        document.delete()
        _audit(actor, scenario, "scenario.document_deleted", {"title": [title, None]}, f"document#{pk}")


def group_choices(site: Site):
    return Group.objects.for_site(site)


def people_choices(site: Site) -> list[Membership]:
    """The people a level can name: those an alarm may reach, by name."""
    return Membership.objects.for_site(site).alertable().by_name()
