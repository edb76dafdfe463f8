"""Evacuation: a site's structure, who is on site, and what happens when everyone must leave.

German practice is the model (ASR A2.3, DGUV Information 205-033): evacuation helpers
(Räumungshelfer) check the rooms of their zone and report it clear; at the assembly point
(Sammelplatz) a lead checks completeness against the presence list; the list of missing persons
goes to the fire brigade.

Structure: ``Building`` → ``Floor`` (with its plan) → ``Zone`` (what a fire panel's detector group maps
to: ``code``) → ``Room``; ``AssemblyPoint`` (the zones that evacuate to it); ``Marker`` (exits, first
aid … on a floor's plan); ``ZoneDuty`` (the helpers of a zone). Presence: who is on site now. During an
alarm: every ``StatusReport`` and ``ZoneReport`` is kept (the record); ``PersonState`` holds each person's
current status, so that counts and the missing list are one query each.

Every row carries its site. Names of places are the site's structure, not personal data; notes and
"where" texts of reports may name people and are encrypted.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rallypoint.people.models import Membership
from rallypoint.people.personal_data import declare
from rallypoint.tenants.encryption import EncryptedTextField, new_row_key
from rallypoint.tenants.models import Site, SiteScopedQuerySet


class Building(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="buildings")
    name = models.CharField(_("name"), max_length=120)
    code = models.CharField(_("code"), max_length=40, blank=True,
                            help_text=_("A short mark, e.g. “A”, used in lists and on plans."))
    position = models.PositiveSmallIntegerField(_("order"), default=1)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["site", "position", "name", "pk"]
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="building_name_unique_in_site")]

    def __str__(self) -> str:
        return self.name


class Floor(models.Model):
    """A storey of a building, with its plan: an image re-encoded on upload (a PDF's first page is
    rendered), kept in the database like scenario documents."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    building = models.ForeignKey(Building, on_delete=models.CASCADE, related_name="floors")
    name = models.CharField(_("name"), max_length=120)
    level = models.SmallIntegerField(_("level"), default=0, help_text=_("0 is the ground floor, −1 the basement."))
    plan = models.BinaryField(null=True, blank=True, editable=False)
    plan_type = models.CharField(max_length=20, blank=True, editable=False)  # image/png or image/jpeg
    plan_width = models.PositiveIntegerField(default=0, editable=False)
    plan_height = models.PositiveIntegerField(default=0, editable=False)
    plan_updated_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["building", "-level", "name", "pk"]
        constraints = [models.UniqueConstraint(fields=["building", "name"], name="floor_name_unique_in_building")]

    def __str__(self) -> str:
        return self.name


class Zone(models.Model):
    """A part of a floor that is cleared as one (a wing, a corridor with its rooms). ``code`` is the
    fire panel's detector group, for the panel integration."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    floor = models.ForeignKey(Floor, on_delete=models.CASCADE, related_name="zones")
    name = models.CharField(_("name"), max_length=120)
    code = models.CharField(_("external code"), max_length=40, blank=True,
                            help_text=_("The fire panel's detector group for this zone, if any."))
    neighbours = models.ManyToManyField("self", blank=True, symmetrical=True, verbose_name=_("neighbouring zones"))
    #: Where the zone lies on its floor's plan (fractions of the plan's width and height), for the cockpit.
    area_x = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)])
    area_y = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)])
    area_w = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)])
    area_h = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)])

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["floor", "name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["floor", "name"], name="zone_name_unique_on_floor"),
            models.UniqueConstraint(fields=["site", "code"], condition=~models.Q(code=""),
                                    name="zone_code_unique_in_site"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def area(self) -> tuple[float, float, float, float] | None:
        parts = (self.area_x, self.area_y, self.area_w, self.area_h)
        return None if None in parts else parts


class Room(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="rooms")
    name = models.CharField(_("name"), max_length=120)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["zone", "name", "pk"]
        constraints = [models.UniqueConstraint(fields=["zone", "name"], name="room_name_unique_in_zone")]

    def __str__(self) -> str:
        return self.name


class AssemblyPoint(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="assembly_points")
    name = models.CharField(_("name"), max_length=120)
    latitude = models.FloatField(_("latitude"), null=True, blank=True,
                                 validators=[MinValueValidator(-90), MaxValueValidator(90)])
    longitude = models.FloatField(_("longitude"), null=True, blank=True,
                                  validators=[MinValueValidator(-180), MaxValueValidator(180)])
    capacity = models.PositiveIntegerField(_("capacity"), null=True, blank=True)
    zones = models.ManyToManyField(Zone, blank=True, related_name="assembly_points",
                                   verbose_name=_("zones that evacuate here"))

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="assembly_point_name_unique_in_site")]

    def __str__(self) -> str:
        return self.name


class Marker(models.Model):
    """A sign on a floor's plan, placed by clicking: ``x``, ``y`` are fractions of the plan's width and height."""

    class Kind(models.TextChoices):
        EXIT = "exit", _("Emergency exit")
        ASSEMBLY_POINT = "assembly_point", _("Assembly point")
        FIRST_AID = "first_aid", _("First aid")
        EXTINGUISHER = "extinguisher", _("Fire extinguisher")
        HELPER_POST = "helper_post", _("Evacuation helper post")
        DEFIBRILLATOR = "defibrillator", _("Defibrillator")
        KEY_BOX = "key_box", _("Fire-brigade key box")

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    floor = models.ForeignKey(Floor, on_delete=models.CASCADE, related_name="markers")
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    x = models.FloatField(validators=[MinValueValidator(0), MaxValueValidator(1)])
    y = models.FloatField(validators=[MinValueValidator(0), MaxValueValidator(1)])
    label = models.CharField(_("label"), max_length=120, blank=True)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["floor", "kind", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class ZoneDuty(models.Model):
    """An evacuation helper (or their deputy) for a zone."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="duties")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="zone_duties")
    deputy = models.BooleanField(_("deputy"), default=False)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["zone", "deputy", "pk"]
        constraints = [models.UniqueConstraint(fields=["zone", "membership"], name="one_duty_per_zone_and_person")]

    def __str__(self) -> str:
        return f"Duty #{self.pk} for zone #{self.zone_id}"


class Source(models.TextChoices):
    """Where a presence or a report came from."""

    APP = "app", _("App")
    QR = "qr", _("QR code")
    VISITOR = "visitor", _("Visitor registration")
    API = "api", _("Time recording / door access")
    ROLL_CALL = "rollcall", _("Roll call")
    LINK = "link", _("Answer link")
    PUSH = "push", _("Notification")


class PresenceQuerySet(SiteScopedQuerySet):
    def current(self, now=None):
        """Who is on site now: arrived, not left, not expired."""
        return self.filter(left_at__isnull=True, expires_at__gt=now or timezone.now())


class Presence(models.Model):
    """Someone on site from ``arrived_at`` until they leave or ``expires_at`` (the end of the site's day);
    the rows are kept ``RP_PRESENCE_HISTORY_DAYS`` as the last known place of each person."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="presences")
    building = models.ForeignKey(Building, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    zone = models.ForeignKey(Zone, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=10, choices=Source.choices)
    arrived_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)

    objects = PresenceQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["site", "left_at", "expires_at"], name="presence_current"),
                   models.Index(fields=["membership", "arrived_at"], name="presence_of_person")]

    def __str__(self) -> str:
        return f"Presence #{self.pk}"


class Status(models.TextChoices):
    SAFE = "safe", _("Safe")
    NEED_HELP = "need_help", _("Needs help")
    NOT_ON_SITE = "not_on_site", _("Not on site")


class StatusReport(models.Model):
    """One report of a person's status during an alarm, by themselves or by someone for them (a teacher for
    her class, the lead at the assembly point). Every report is kept; the newest ``at`` counts.
    ``client_key`` makes a report sent twice (an offline queue replaying) count once."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    alarm = models.ForeignKey("alarms.Alarm", on_delete=models.CASCADE, related_name="status_reports")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    row_key = models.CharField(max_length=32, default=new_row_key, editable=False)
    status = models.CharField(max_length=12, choices=Status.choices)
    assembly_point = models.ForeignKey(AssemblyPoint, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    zone = models.ForeignKey(Zone, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    note = EncryptedTextField(_("note"), blank=True, owner="membership")
    reported_by = models.ForeignKey(Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    via = models.CharField(max_length=10, choices=Source.choices, default=Source.APP)
    at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    client_key = models.CharField(max_length=64, blank=True, default="")

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["alarm", "membership", "at"], name="status_report_of_person")]
        constraints = [models.UniqueConstraint(fields=["alarm", "client_key"], condition=~models.Q(client_key=""),
                                               name="status_report_once")]

    def __str__(self) -> str:
        return f"Status report #{self.pk} of alarm #{self.alarm_id}"


class PersonState(models.Model):
    """A person's current status in an alarm: the newest of their reports."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    alarm = models.ForeignKey("alarms.Alarm", on_delete=models.CASCADE, related_name="person_states",
                              db_index=False)  # the unique (alarm, membership) index begins with it
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices)
    assembly_point = models.ForeignKey(AssemblyPoint, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    zone = models.ForeignKey(Zone, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField()
    report = models.ForeignKey(StatusReport, on_delete=models.CASCADE, related_name="+")

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["alarm", "membership"], name="one_state_per_person")]

    def __str__(self) -> str:
        return f"State of membership #{self.membership_id} in alarm #{self.alarm_id}"


class ZoneReport(models.Model):
    """An evacuation helper's report on their zone; the zone's state is its newest report."""

    class State(models.TextChoices):
        CLEARED = "cleared", _("Cleared")
        REMAINING = "remaining", _("Persons remaining")
        BLOCKED = "blocked", _("Blocked / hazard")

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    alarm = models.ForeignKey("alarms.Alarm", on_delete=models.CASCADE, related_name="zone_reports")
    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="+")
    row_key = models.CharField(max_length=32, default=new_row_key, editable=False)
    state = models.CharField(max_length=10, choices=State.choices)
    remaining = models.PositiveIntegerField(_("how many"), default=0)
    where = EncryptedTextField(_("where"), blank=True)
    reported_by = models.ForeignKey(Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    client_key = models.CharField(max_length=64, blank=True, default="")

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["alarm", "zone", "at"], name="zone_report_of_zone")]
        constraints = [models.UniqueConstraint(fields=["alarm", "client_key"], condition=~models.Q(client_key=""),
                                               name="zone_report_once")]

    def __str__(self) -> str:
        return f"Zone report #{self.pk} of alarm #{self.alarm_id}"


# --- Personal data: what these models hold about people, how long (rallypoint.people.personal_data) ---

declare(ZoneDuty, person=("membership",), why=_("as long as the person has this duty"),
        erased=_("deleted when the duty ends, and with the person"),
        forget="delete")
declare(Presence, person=("membership",), kept="PRESENCE_HISTORY_DAYS",
        why=_("who is on site, for an evacuation; shown only during an alarm"), erased=_("deleted after this time"),
        purge="rallypoint.evacuation.presence.purge_expired",
        forget="delete")
declare(StatusReport, fields=("note",), person=("membership", "reported_by"), kept="ALARM_RECORD_DAYS",
        why=_("who reported whom safe, kept with the alarm"),
        erased=_("deleted after this time (the alarm keeps the counts), or with the person"), forget="keep",
        purge=("rallypoint.people.forget.purge_forgotten", "rallypoint.people.retention.purge_alarm_records"))
declare(PersonState, person=("membership",), kept="ALARM_RECORD_DAYS",
        why=_("a person's last status in an alarm, kept with the alarm"),
        erased=_("deleted after this time (the alarm keeps the counts), or with the person"), forget="keep",
        purge=("rallypoint.people.forget.purge_forgotten", "rallypoint.people.retention.purge_alarm_records"))
declare(ZoneReport, fields=("where",), person=("reported_by",), why=_("a zone's report, kept with the alarm"),
        erased=_("who reported it is removed with the person; the report stays"),
        forget="keep")
