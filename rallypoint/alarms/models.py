"""Scenarios (alarm types), their levels, and the alarms raised from them.

Every row carries its site. An alarm's history is its list of
:class:`AlarmEvent` rows (the incident protocol); who was asked to act is one
:class:`AlarmRecipient` per person, which also holds their answer.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rallypoint.people.models import Group, Membership
from rallypoint.people.personal_data import declare
from rallypoint.tenants.models import Site, SiteScopedQuerySet

#: Channel kinds a level can use; each is a package under rallypoint/notify/channels/.
CHANNEL_CHOICES = [
    ("inapp", _("App (live)")),
    ("push", _("Push notification")),
    ("email", _("E-mail")),
    ("sms", _("SMS")),
    ("voice", _("Voice call")),
    ("apprise", _("Messenger (Apprise)")),
]
CHANNEL_KINDS = [kind for kind, _label in CHANNEL_CHOICES]


class Scenario(models.Model):
    class Category(models.TextChoices):
        ALARM = "alarm", _("Alarm")
        INFORMATION = "information", _("Information")

    class Icon(models.TextChoices):
        FIRE = "fire", _("Fire")
        EVACUATE = "evacuate", _("Evacuation")
        MEDICAL = "medical", _("Medical emergency")
        THREAT = "threat", _("Threat")
        GAS = "gas", _("Gas / chemicals")
        WEATHER = "weather", _("Severe weather")
        INFO = "info", _("Information")

    class Sound(models.TextChoices):
        SIREN = "siren", _("Siren")
        GONG = "gong", _("Gong")
        BEEP = "beep", _("Beep")
        NONE = "none", _("No sound")

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="scenarios")
    name = models.CharField(_("name"), max_length=120)
    category = models.CharField(_("category"), max_length=16, choices=Category.choices, default=Category.ALARM)
    priority = models.PositiveSmallIntegerField(
        _("priority"), default=1, validators=[MinValueValidator(1), MaxValueValidator(3)],
        help_text=_("1 is the most urgent."))
    color = models.CharField(_("colour"), max_length=7, default="#b3261e",
                             validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Use a colour like #b3261e."))])
    icon = models.CharField(_("icon"), max_length=16, choices=Icon.choices, default=Icon.FIRE)
    sound = models.CharField(_("sound"), max_length=16, choices=Sound.choices, default=Sound.SIREN)
    message_template = models.TextField(
        _("message"), max_length=2000,
        help_text=_("What every recipient reads. {scenario}, {level}, {location} and {site} are filled in."))
    #: {role: text} — what a person in that role has to do.
    instructions = models.JSONField(_("instructions per role"), default=dict, blank=True)
    trigger_roles = models.JSONField(_("roles that may trigger"), default=list, blank=True)
    trigger_groups = models.ManyToManyField(Group, blank=True, related_name="+",
                                            verbose_name=_("groups that may trigger"))
    silent = models.BooleanField(
        _("silent"), default=False,
        help_text=_("No sound and no banner on the device that triggers it (threat situations)."))
    allow_drill = models.BooleanField(_("drills allowed"), default=True)
    class Evacuates(models.TextChoices):
        NONE = "", _("No evacuation")
        ALL = "all", _("The whole site")
        BUILDING = "building", _("The alarm's building")
        ZONE = "zone", _("The alarm's zone and its neighbouring zones")

    evacuates = models.CharField(
        _("evacuates"), max_length=8, choices=Evacuates.choices, blank=True, default="",
        help_text=_("Who must leave: status reports, helpers' zone reports and the roll call follow from it."))
    quick = models.BooleanField(
        _("quick alarm"), default=False,
        help_text=_("Shown on the home screen: first level, no questions, three taps."))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["priority", "name", "pk"]
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="scenario_name_unique_in_site")]

    def __str__(self) -> str:
        return self.name

    def instruction_for(self, role: str) -> str:
        return str(self.instructions.get(role, "") or "")


class Level(models.Model):
    """One stage of a scenario (e.g. "pre-alarm", "evacuate"): who is told, how, and what then."""

    class Escalation(models.TextChoices):
        NONE = "", _("No escalation")
        NEXT_CHANNEL = "next_channel", _("Send again on further channels to those without an answer")
        RAISE_LEVEL = "raise_level", _("Raise to another level")
        NOTIFY_GROUP = "notify_group", _("Also alert a group")

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="levels")
    position = models.PositiveSmallIntegerField(_("order"), default=1)
    name = models.CharField(_("name"), max_length=120)
    recipient_people = models.ManyToManyField(Membership, blank=True, related_name="+", verbose_name=_("people"))
    recipient_groups = models.ManyToManyField(Group, blank=True, related_name="+", verbose_name=_("groups"))
    recipient_roles = models.JSONField(_("roles"), default=list, blank=True)
    #: Channel kinds in the order they are tried when escalating ("send again on the next channel").
    channels = models.JSONField(_("channels"), default=list)
    requires_acceptance = models.BooleanField(_("acceptance required"), default=True)
    escalate_below = models.PositiveIntegerField(_("fewer than … accepted"), default=0)
    escalate_after_seconds = models.PositiveIntegerField(_("within … seconds"), default=120)
    escalation = models.CharField(_("then"), max_length=16, choices=Escalation.choices, blank=True, default="")
    escalate_to_level = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="+", verbose_name=_("level to raise to"))
    escalate_to_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="+", verbose_name=_("group to alert"))
    escalate_channels = models.JSONField(_("channels to send again on"), default=list, blank=True)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["scenario", "position", "pk"]

    def __str__(self) -> str:
        return self.name

    def channel_labels(self) -> list[str]:
        """The level's channels as people read them ("Push notification", not "push"), in order."""
        labels = dict(CHANNEL_CHOICES)
        return [str(labels.get(kind, kind)) for kind in self.channels]


class Question(models.Model):
    """Extra information asked while triggering, with up to five preset answers."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveSmallIntegerField(default=1)
    text = models.CharField(_("question"), max_length=200)
    answers = models.JSONField(_("preset answers"), default=list)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["scenario", "position", "pk"]

    def __str__(self) -> str:
        return self.text


class ScenarioDocument(models.Model):
    """A PDF attached to a scenario (evacuation plan, checklist), stored in the database."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(_("title"), max_length=200)
    content = models.BinaryField()
    size = models.PositiveIntegerField(default=0)
    uploaded_at = models.DateTimeField(default=timezone.now)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["title", "pk"]

    def __str__(self) -> str:
        return self.title


class Alarm(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        ENDED = "ended", _("Ended")

    class Source(models.TextChoices):
        WEB = "web", _("Web app")
        API = "api", _("API")
        PANEL = "panel", _("Fire-alarm panel")
        ESCALATION = "escalation", _("Escalation")

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="alarms")
    scenario = models.ForeignKey(Scenario, on_delete=models.PROTECT, related_name="alarms")
    level = models.ForeignKey(Level, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE, db_index=True)
    is_drill = models.BooleanField(_("drill"), default=False)
    location_text = models.CharField(_("location"), max_length=300, blank=True)
    #: Where, picked from the site's structure (the free text above adds to it).
    building = models.ForeignKey("evacuation.Building", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+", verbose_name=_("building"))
    floor = models.ForeignKey("evacuation.Floor", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", verbose_name=_("floor"))
    zone = models.ForeignKey("evacuation.Zone", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", verbose_name=_("zone"))
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    #: [{"question": text, "answer": text}, …]
    answers = models.JSONField(default=list, blank=True)
    note = models.TextField(_("extra information"), max_length=2000, blank=True)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.WEB)
    triggered_by = models.ForeignKey(Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    api_key = models.ForeignKey("integrations.ApiKey", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    idempotency_key = models.CharField(max_length=128, blank=True, default="")
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    level_since = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(_("reason"), max_length=500, blank=True)
    #: Levels whose escalation rule has already run for this alarm.
    escalated_levels = models.JSONField(default=list, blank=True)
    #: When the record's personal parts went (who was alerted, answers, status reports, messages; see
    #: people.retention); ``summary`` keeps what the incident record still says then: counts, per status.
    personal_parts_removed_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["site", "idempotency_key"], condition=~models.Q(idempotency_key=""),
                                    name="alarm_idempotency_key_unique_in_site"),
        ]

    def __str__(self) -> str:
        return f"Alarm #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.state == self.State.ACTIVE


class AlarmEvent(models.Model):
    """One step on an alarm's timeline. ``data`` holds ids and counts, never personal data."""

    class Kind(models.TextChoices):
        TRIGGERED = "triggered", _("Alarm triggered")
        UPDATED = "updated", _("Information updated")
        LEVEL_RAISED = "level_raised", _("Level raised")
        ESCALATED = "escalated", _("Escalation rule applied")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined")
        ENDED = "ended", _("Alarm ended")

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    alarm = models.ForeignKey(Alarm, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor = models.ForeignKey(Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    data = models.JSONField(default=dict, blank=True)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} of alarm #{self.alarm_id}"


class AlarmRecipient(models.Model):
    """A person asked to act on an alarm, and their answer (the acknowledgement)."""

    class Answer(models.TextChoices):
        NONE = "", _("No answer")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined")

    # The alarm's site, copied for scoping: the database checks the alarm reference, which covers it (one
    # lookup per row fewer at COMMIT on PostgreSQL; see Delivery).
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    # No index of its own: the unique (alarm, membership) and the (alarm, answer) index begin with it.
    alarm = models.ForeignKey(Alarm, on_delete=models.CASCADE, related_name="recipients", db_index=False)
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    level = models.ForeignKey(Level, on_delete=models.PROTECT, related_name="+")
    #: The groups through which the person was reached (ids), for the cockpit's per-group counts.
    group_ids = models.JSONField(default=list, blank=True)
    answer = models.CharField(max_length=8, choices=Answer.choices, blank=True, default="")
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_via = models.CharField(max_length=12, blank=True, default="")
    #: Part of the signed one-time answer link (see alarms.links); emptied when the link is used.
    link_nonce = models.CharField(max_length=32, blank=True, default="")
    #: When the web app first showed the alarm to this person (the in-app receipt).
    seen_at = models.DateTimeField(null=True, blank=True)
    added_at = models.DateTimeField(default=timezone.now)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["alarm", "membership"], name="one_recipient_row_per_person")]
        indexes = [models.Index(fields=["alarm", "answer"])]

    def __str__(self) -> str:
        return f"Recipient #{self.pk} of alarm #{self.alarm_id}"


class DisplayLink(models.Model):
    """A link for a wall screen: the site's active alarms as numbers and zone states, no names, no sign-in.

    Only a hash of its secret is kept; the secret is shown once, when the link is made. Revoking it ends the
    screen's view at its next refresh."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=80)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Display link #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


# --- Personal data: what these models hold about people, how long (rallypoint.people.personal_data) ---

declare(Level, person=("recipient_people",), why=_("as long as the scenario names the person"),
        erased=_("the person is taken out of the scenario when they are deleted"),
        forget="delete")
declare(Alarm, fields=("location_text", "note", "end_reason", "latitude", "longitude"), person=("triggered_by",),
        kept="ALARM_RECORD_DAYS",
        why=_("the record of the incident; the organisation sets how long its personal parts stay"),
        erased=_("after this time (after the alarm ended) who raised it is removed; the alarm stays with its counts"),
        purge="rallypoint.people.retention.purge_alarm_records", forget="keep")
declare(AlarmEvent, fields=("data",), person=("actor",), kept="ALARM_RECORD_DAYS",
        why=_("the incident's timeline, kept with the alarm"),
        erased=_("who acted is removed with the person, or after this time; the event stays"),
        forget="keep")
declare(AlarmRecipient, person=("membership",), kept="ALARM_RECORD_DAYS",
        why=_("who was alerted and how they answered, kept with the alarm"),
        erased=_("deleted after this time (the alarm keeps the counts), or with the person"), forget="keep",
        purge=("rallypoint.people.forget.purge_forgotten", "rallypoint.people.retention.purge_alarm_records"))
declare(DisplayLink, person=("created_by",), why=_("as long as the link exists"),
        erased=_("who made it is removed with the person; the link stays"), forget="keep")
