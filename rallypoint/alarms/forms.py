"""Forms of the scenario pages, the trigger flow and the cockpit."""

from __future__ import annotations

import re

from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from rallypoint.alarms.models import CHANNEL_CHOICES, Level, Scenario
from rallypoint.alarms.placing import place_text
from rallypoint.alarms.scenario_actions import MAX_ANSWERS, MAX_DOCUMENT_BYTES, group_choices, people_choices
from rallypoint.evacuation.models import Building, Floor, Zone
from rallypoint.people.models import Group, Membership
from rallypoint.tenants.roles import Role

CHECKBOXES = forms.CheckboxSelectMultiple


def _role_label(role: str) -> str:
    return str(Role(role).label)


class ScenarioForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    category = forms.ChoiceField(label=_("Category"), choices=Scenario.Category.choices)
    priority = forms.TypedChoiceField(label=_("Priority"), coerce=int, initial=1, choices=[
        (1, _("1 — most urgent")), (2, _("2 — urgent")), (3, _("3 — for information"))])
    color = forms.CharField(label=_("Colour"), max_length=7, initial="#b3261e",
                            validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Use a colour like #b3261e."))],
                            widget=forms.TextInput(attrs={"type": "color"}))
    icon = forms.ChoiceField(label=_("Icon"), choices=Scenario.Icon.choices)
    sound = forms.ChoiceField(label=_("Sound"), choices=Scenario.Sound.choices)
    message_template = forms.CharField(
        label=_("Message"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What every recipient reads. {scenario}, {level}, {location} and {site} are filled in."))
    trigger_roles = forms.MultipleChoiceField(
        label=_("Roles that may trigger it"), required=False, choices=Role.choices, widget=CHECKBOXES,
        help_text=_("Leave roles and groups empty to let everyone at the site trigger it."))
    trigger_groups = forms.ModelMultipleChoiceField(label=_("Groups that may trigger it"), required=False,
                                                    queryset=Group.objects.none(), widget=CHECKBOXES)
    evacuates = forms.ChoiceField(
        label=_("Evacuates"), required=False, choices=Scenario.Evacuates.choices,
        help_text=_("Who must leave. An evacuation asks everyone concerned for their status, sends helpers to "
                    "their zones and opens the roll call at the assembly points."))
    silent = forms.BooleanField(label=_("Silent: no sound and no banner on the device that triggers it"),
                                required=False)
    allow_drill = forms.BooleanField(label=_("May be run as a drill"), required=False, initial=True)
    quick = forms.BooleanField(label=_("Quick alarm: a big button on the home screen (first level, no questions)"),
                               required=False)
    is_active = forms.BooleanField(label=_("Active (can be triggered)"), required=False, initial=True)

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["trigger_groups"].queryset = group_choices(site)
        for role in Role.values:
            self.fields[f"instruction_{role}"] = forms.CharField(
                label=_("What to do: %(role)s") % {"role": _role_label(role)}, required=False, max_length=2000,
                widget=forms.Textarea(attrs={"rows": 2}))

    def instruction_fields(self):
        return [self[f"instruction_{role}"] for role in Role.values]

    def main_fields(self):
        return [f for f in self if not f.name.startswith("instruction_")]

    def scenario_data(self) -> dict:
        data = {k: v for k, v in self.cleaned_data.items() if not k.startswith("instruction_")}
        data["instructions"] = {role: self.cleaned_data[f"instruction_{role}"] for role in Role.values}
        return data

    @staticmethod
    def initial_for(scenario: Scenario) -> dict:
        initial = {name: getattr(scenario, name) for name in (
            "name", "category", "priority", "color", "icon", "sound", "message_template", "trigger_roles",
            "silent", "allow_drill", "quick", "is_active", "evacuates")}
        initial["trigger_groups"] = list(scenario.trigger_groups.all())
        for role in Role.values:
            initial[f"instruction_{role}"] = scenario.instruction_for(role)
        return initial


class LevelForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120, help_text=_("For example “Pre-alarm” or “Evacuate”."))
    position = forms.IntegerField(label=_("Order"), min_value=1, max_value=99, initial=1,
                                  help_text=_("The level with the lowest number is raised first."))
    recipient_roles = forms.MultipleChoiceField(label=_("Roles"), required=False, choices=Role.choices,
                                                widget=CHECKBOXES)
    recipient_groups = forms.ModelMultipleChoiceField(label=_("Groups"), required=False,
                                                      queryset=Group.objects.none(), widget=CHECKBOXES)
    recipient_people = forms.ModelMultipleChoiceField(label=_("People"), required=False,
                                                      queryset=Membership.objects.none(), widget=CHECKBOXES)
    channels = forms.MultipleChoiceField(label=_("Channels"), choices=CHANNEL_CHOICES, widget=CHECKBOXES,
                                         error_messages={"required": _("Choose at least one channel.")})
    requires_acceptance = forms.BooleanField(label=_("Recipients must accept or decline"), required=False,
                                             initial=True)
    escalate_below = forms.IntegerField(label=_("If fewer than … people accepted"), min_value=0, max_value=100000,
                                        initial=0)
    escalate_after_seconds = forms.IntegerField(label=_("within … seconds"), min_value=10, max_value=86400,
                                                initial=120)
    escalation = forms.ChoiceField(label=_("then"), choices=Level.Escalation.choices, required=False)
    escalate_channels = forms.MultipleChoiceField(label=_("Channels to send again on"), required=False,
                                                  choices=CHANNEL_CHOICES, widget=CHECKBOXES)
    # Needed only by the rule that uses them ("Raise to another level", "Also alert a group").
    escalate_to_level = forms.ModelChoiceField(label=_("Level to raise to"), required=False,
                                               queryset=Level.objects.none(), empty_label=_("No level"))
    escalate_to_group = forms.ModelChoiceField(label=_("Group to alert"), required=False,
                                               queryset=Group.objects.none(), empty_label=_("No group"))

    RECIPIENTS = ("recipient_roles", "recipient_groups", "recipient_people")
    ESCALATION = ("escalate_below", "escalate_after_seconds", "escalation", "escalate_channels",
                  "escalate_to_level", "escalate_to_group")

    def __init__(self, *args, scenario: Scenario, level: Level | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        site = scenario.site
        self.fields["recipient_groups"].queryset = group_choices(site)
        people = self.fields["recipient_people"]
        people.queryset = Membership.objects.for_site(site).alertable()
        people.choices = [(m.pk, m.full_name) for m in people_choices(site)]  # names are encrypted: sorted here
        others = scenario.levels.all() if level is None else scenario.levels.exclude(pk=level.pk)
        self.fields["escalate_to_level"].queryset = others
        self.fields["escalate_to_group"].queryset = group_choices(site)

    def clean(self):
        data = super().clean()
        if not self.errors and not any(data.get(name) for name in self.RECIPIENTS):
            raise forms.ValidationError(_("Choose who is alerted: at least one role, group or person."))
        return data

    def fieldsets(self):
        basics = [self["name"], self["position"], self["channels"], self["requires_acceptance"]]
        return basics, [self[n] for n in self.RECIPIENTS], [self[n] for n in self.ESCALATION]

    @staticmethod
    def initial_for(level: Level) -> dict:
        initial = {name: getattr(level, name) for name in (
            "name", "position", "recipient_roles", "channels", "requires_acceptance", "escalate_below",
            "escalate_after_seconds", "escalation", "escalate_channels", "escalate_to_level", "escalate_to_group")}
        initial["recipient_groups"] = list(level.recipient_groups.all())
        initial["recipient_people"] = list(level.recipient_people.values_list("pk", flat=True))
        return initial


class QuestionForm(forms.Form):
    text = forms.CharField(label=_("Question"), max_length=200, help_text=_("For example “Is anyone hurt?”."))
    position = forms.IntegerField(label=_("Order"), min_value=1, max_value=99, initial=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for i in range(1, MAX_ANSWERS + 1):
            self.fields[f"answer_{i}"] = forms.CharField(label=_("Preset answer %(n)d") % {"n": i}, max_length=100,
                                                         required=False)

    def answers(self) -> list[str]:
        return [self.cleaned_data[f"answer_{i}"] for i in range(1, MAX_ANSWERS + 1)]

    @staticmethod
    def initial_for(question) -> dict:
        initial = {"text": question.text, "position": question.position}
        for i, answer in enumerate(question.answers[:MAX_ANSWERS], start=1):
            initial[f"answer_{i}"] = answer
        return initial


class DocumentForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200, required=False,
                            help_text=_("Leave empty to use the file name."))
    file = forms.FileField(label=_("PDF file (at most 5 MB)"),
                           widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,.pdf"}))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_DOCUMENT_BYTES:
            raise forms.ValidationError(_("The file is larger than 5 MB."))
        return upload

    def title_or_name(self) -> str:
        title = self.cleaned_data["title"].strip()
        if title:
            return title
        return re.sub(r"\.pdf$", "", self.cleaned_data["file"].name, flags=re.IGNORECASE)[:200] or "PDF"


# Triggering --------------------------------------------------------------------------------------------

IDEMPOTENCY = re.compile(r"^web-[A-Za-z0-9_-]{16,64}$")


def place_choices(site_id: int) -> list:
    """The site's structure as one grouped pick, per building: the building, each floor, each zone of it.
    Values: ``b:<id>``, ``f:<id>``, ``z:<id>``."""
    floors: dict[int, list] = {}
    for zone in Zone.objects.for_site(site_id).select_related("floor").order_by("name"):
        floors.setdefault(zone.floor_id, []).append(zone)
    groups = []
    for building in Building.objects.for_site(site_id).prefetch_related("floors"):
        options = [(f"b:{building.pk}", _("%(building)s — whole building") % {"building": building.name})]
        for floor in building.floors.all():
            options.append((f"f:{floor.pk}", f"{building.name} · {floor.name}"))
            options += [(f"z:{zone.pk}", f"{building.name} · {floor.name} · {zone.name}")
                        for zone in floors.get(floor.pk, [])]
        groups.append((building.name, options))
    return groups


def parse_place(site_id: int, value: str) -> tuple:
    """``(building, floor, zone)`` of a pick from :func:`place_choices` (the choice field checked it)."""
    kind, _sep, pk = value.partition(":")
    if not pk.isdigit():
        return None, None, None
    if kind == "z":
        zone = Zone.objects.for_site(site_id).select_related("floor__building").filter(pk=pk).first()
        return (zone.floor.building, zone.floor, zone) if zone else (None, None, None)
    if kind == "f":
        floor = Floor.objects.for_site(site_id).select_related("building").filter(pk=pk).first()
        return (floor.building, floor, None) if floor else (None, None, None)
    return Building.objects.for_site(site_id).filter(pk=pk).first(), None, None


def _coordinate(text, limit: float) -> float | None:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if -limit <= value <= limit else None


class TriggerForm(forms.Form):
    """Everything of the trigger flow; the questions add one preset choice and one free text each."""

    level = forms.ModelChoiceField(label=_("Level"), queryset=Level.objects.none(), empty_label=None,
                                   widget=forms.RadioSelect)
    place = forms.ChoiceField(label=_("Building, floor, zone"), required=False)
    location_text = forms.CharField(label=_("Where?"), max_length=300, required=False,
                                    help_text=_("Building, floor, room — whatever helps people find it."))
    # A position the device could not give properly must never hold up an alarm: it is dropped instead.
    latitude = forms.CharField(required=False, widget=forms.HiddenInput)
    longitude = forms.CharField(required=False, widget=forms.HiddenInput)
    note = forms.CharField(label=_("Anything else?"), max_length=2000, required=False,
                           widget=forms.Textarea(attrs={"rows": 2}))
    is_drill = forms.BooleanField(label=_("This is a drill"), required=False)
    request_id = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, scenario: Scenario, quick: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.scenario = scenario
        self.fields["level"].queryset = scenario.levels.all()
        self.fields["level"].initial = scenario.levels.first()
        self.places = place_choices(scenario.site_id)
        if self.places:
            self.fields["place"].choices = [("", _("Choose the place, if you know it")), *self.places]
            self.fields["location_text"].label = _("More about the place")
            self.fields["location_text"].help_text = _("Room, what you see — whatever helps people find it.")
        else:
            del self.fields["place"]
        self.questions = [] if quick else list(scenario.questions.all())
        for i, question in enumerate(self.questions):
            self.fields[f"q{i}"] = forms.ChoiceField(label=question.text, required=False, widget=forms.RadioSelect,
                                                     choices=[(a, a) for a in question.answers])
            self.fields[f"q{i}_text"] = forms.CharField(label=_("Other answer"), max_length=200, required=False)
        if quick:
            for name in ("level", "note"):
                del self.fields[name]
        if quick or not scenario.allow_drill:
            del self.fields["is_drill"]

    def place_text(self) -> str:
        data = self.cleaned_data
        return place_text(data.get("building"), data.get("floor"), data.get("zone"),
                          (data.get("location_text") or "").strip())

    def question_fields(self):
        return [(self[f"q{i}"], self[f"q{i}_text"]) for i in range(len(self.questions))]

    def clean(self):
        data = super().clean()
        data["building"], data["floor"], data["zone"] = parse_place(self.scenario.site_id, data.get("place") or "")
        latitude, longitude = _coordinate(data.get("latitude"), 90), _coordinate(data.get("longitude"), 180)
        if latitude is None or longitude is None:
            latitude = longitude = None
        data["latitude"], data["longitude"] = latitude, longitude
        return data

    def answers(self) -> list[dict]:
        result = []
        for i, question in enumerate(self.questions):
            answer = self.cleaned_data.get(f"q{i}_text", "").strip() or self.cleaned_data.get(f"q{i}", "")
            if answer:
                result.append({"question": question.text, "answer": answer})
        return result

    def idempotency_key(self) -> str:
        value = self.cleaned_data.get("request_id", "")
        return value if IDEMPOTENCY.match(value or "") else ""


class UpdateAlarmForm(forms.Form):
    location_text = forms.CharField(label=_("Location"), max_length=300, required=False)
    note = forms.CharField(label=_("Extra information"), max_length=2000, required=False,
                           widget=forms.Textarea(attrs={"rows": 2}))


class EndAlarmForm(forms.Form):
    reason = forms.CharField(label=_("Why does the alarm end?"), max_length=500,
                             help_text=_("For example “false alarm” or “fire put out”."))


class HistoryFilterForm(forms.Form):
    """The filters of the alarm history: which of the person's sites, scenario, alarms or drills, dates, words."""

    site = forms.TypedChoiceField(label=_("Site"), required=False, coerce=int, empty_value=None)
    scenario = forms.TypedChoiceField(label=_("Scenario"), required=False, coerce=int, empty_value=None)
    kind = forms.ChoiceField(label=_("Alarms or drills"), required=False,
                             choices=[("", _("Alarms and drills")), ("alarm", _("Alarms only")),
                                      ("drill", _("Drills only"))])
    # <input type="date"> takes ISO dates only, whatever the language's date format.
    since = forms.DateField(label=_("From"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    until = forms.DateField(label=_("Until"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    q = forms.CharField(label=_("Words"), required=False, max_length=100,
                        widget=forms.TextInput(attrs={"type": "search"}))

    def __init__(self, *args, sites, site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [(s.pk, s.name) for s in sites]
        self.fields["scenario"].choices = [("", _("All scenarios"))] + [
            (s.pk, s.name) for s in Scenario.objects.for_site(site).order_by("name")]
        if len(sites) < 2:
            del self.fields["site"]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError(_("“From” must not lie after “Until”."))
        return data
