"""The people of a site: memberships (a person at a site, their role and personal data) and groups.

Moved here from ``tenants`` (their tables keep their names: ``tenants_membership``, ``tenants_group``,
``tenants_group_members``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rallypoint.people.personal_data import declare
from rallypoint.tenants.encryption import EncryptedTextField, new_row_key
from rallypoint.tenants.models import Site, SiteScopedQuerySet
from rallypoint.tenants.roles import Role

#: Switched on: the person, and their account if they have one.
SWITCHED_ON = models.Q(is_active=True) & (models.Q(user__isnull=True) | models.Q(user__is_active=True))
#: Not the operator's support account.
NOT_SUPPORT = models.Q(user__isnull=True) | models.Q(user__is_support=False)


class MembershipQuerySet(SiteScopedQuerySet):
    def active(self):
        return self.filter(SWITCHED_ON)

    def alertable(self):
        """The people an alarm may reach: active, with an account (messages need one), and not the
        operator's support account (it is there to help set the site up, not to be alerted)."""
        return self.active().filter(user__isnull=False, user__is_support=False)

    def people(self):
        """Everyone but visitors: the site's own people, with or without a sign-in."""
        return self.exclude(kind=Membership.Kind.VISITOR)

    def headcount(self) -> dict[str, int]:
        """How many people, the way every page counts them (one query): ``active`` — the site's own people
        (not visitors), switched on; ``deactivated`` — the person or their account switched off;
        ``support`` — the operator's support accounts, which are counted in neither; ``without_sign_in``
        — of the active ones, those listed without an account (pupils, patients, contractors)."""
        people = NOT_SUPPORT & ~models.Q(kind=Membership.Kind.VISITOR)
        return self.aggregate(active=models.Count("pk", filter=people & SWITCHED_ON),
                              deactivated=models.Count("pk", filter=people & ~SWITCHED_ON),
                              support=models.Count("pk", filter=models.Q(user__is_support=True)),
                              without_sign_in=models.Count("pk", filter=people & SWITCHED_ON
                                                           & models.Q(user__isnull=True)))

    def by_name(self) -> list:
        """The rows sorted by name: names are encrypted, so this sorts in Python."""
        return sorted(self, key=lambda m: (m.full_name.casefold(), m.pk))


class _NotForgottenManager(models.Manager.from_queryset(MembershipQuerySet)):
    """Everyone but forgotten people: a forgotten person is listed, counted and alerted nowhere. Their
    documented actions still reach the row through their foreign keys (Django follows those with the base
    manager), and show as "deleted person #N"."""

    def get_queryset(self):
        return super().get_queryset().exclude(kind=Membership.Kind.FORGOTTEN)


class Membership(models.Model):
    """A person at a site: their role and their personal data as this site knows it.

    ``kind``: someone who signs in (``member``, with a ``user``), someone only listed so that they are
    counted in an evacuation (``listed``: pupils, patients, contractors; no account, no e-mail address),
    or a ``visitor`` who registered at reception (with a ``company`` and a ``host``, signed out at
    ``expires_at``). Only people with an account can receive alarms."""

    class Kind(models.TextChoices):
        MEMBER = "member", _("Signs in")
        LISTED = "listed", _("Listed without sign-in")
        VISITOR = "visitor", _("Visitor")
        #: Deleted at their own wish or by an administrator: nothing personal is left, only the row that the
        #: alarms' records point to, until it goes too (``RP_FORGOTTEN_DAYS`` later).
        FORGOTTEN = "forgotten", _("Deleted")

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="memberships")
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.MEMBER)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="memberships")
    row_key = models.CharField(max_length=32, default=new_row_key, editable=False)
    #: The handle of this person's data key in the key store (crypto-shredding; see tenants.encryption).
    data_key = models.CharField(max_length=32, default=new_row_key, editable=False)
    full_name = EncryptedTextField(_("name"), owner="self")
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.EMPLOYEE)
    phone = EncryptedTextField(_("phone"), blank=True, owner="self")
    department = EncryptedTextField(_("department"), blank=True, owner="self")
    is_active = models.BooleanField(_("active"), default=True)
    #: Visitors and contractors: their company.
    company = EncryptedTextField(_("company"), blank=True, owner="self")
    #: Visitors: the person they visit.
    host = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             verbose_name=_("host"))
    #: Visitors: when they are signed out (the end of the day of their visit).
    expires_at = models.DateTimeField(_("until"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    #: Since when the person is deactivated: ``RetentionPolicy.deactivated_days`` later they are forgotten.
    deactivated_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: When the person was forgotten (see people.forget).
    forgotten_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = _NotForgottenManager()
    #: Every row, forgotten people's too: for the purge and for the records.
    records = MembershipQuerySet.as_manager()

    class Meta:
        db_table = "tenants_membership"
        constraints = [
            models.UniqueConstraint(fields=["site", "user"], name="one_membership_per_site"),
            models.CheckConstraint(condition=models.Q(kind="member", user__isnull=False)
                                   | (~models.Q(kind="member") & models.Q(user__isnull=True)),
                                   name="membership_account_matches_kind"),
        ]

    def __str__(self) -> str:  # no personal data: used in places that may be logged
        return f"Membership #{self.pk}"

    @property
    def display_name(self) -> str:
        """The name, or "Deleted person #N" for a person who was forgotten."""
        if self.kind == self.Kind.FORGOTTEN:
            return _("Deleted person #%(number)s") % {"number": self.pk}
        return self.full_name

    @property
    def email(self) -> str:
        """The sign-in address; empty for a person without an account."""
        return self.user.email if self.user_id else ""

    @property
    def is_support(self) -> bool:
        return bool(self.user_id) and self.user.is_support

    @property
    def signs_in(self) -> bool:
        return self.user_id is not None


class Group(models.Model):
    """A named set of people at one site (e.g. "Evacuation helpers, building A")."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(_("name"), max_length=120)
    description = models.CharField(_("description"), max_length=500, blank=True)
    members = models.ManyToManyField(Membership, related_name="groups", blank=True, db_table="tenants_group_members")
    #: Who may report for the group's members in an evacuation (a class's teacher, a ward's nurse).
    leaders = models.ManyToManyField(Membership, related_name="leads_groups", blank=True,
                                     verbose_name=_("leaders"))
    created_at = models.DateTimeField(default=timezone.now)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        db_table = "tenants_group"
        ordering = ["name", "pk"]
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="group_name_unique_in_site")]

    def __str__(self) -> str:
        return self.name



class AccessReview(models.Model):
    """A periodic review of who may sign in to a site, with which role: every ``RP_ACCESS_REVIEW_DAYS`` (90)
    each site gets one; its administrators confirm each person's access or remove it (the measures sheet:
    "Bestehende Berechtigungen werden regelmäßig überprüft")."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    opened_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    #: When the administrators were last reminded (at the opening; once more when it is overdue).
    reminded_at = models.DateTimeField(null=True, blank=True)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at", "-pk"]
        indexes = [models.Index(fields=["site", "-opened_at"], name="access_review_of_site")]

    def __str__(self) -> str:
        return f"access review #{self.pk}"

    def is_overdue(self, now=None) -> bool:
        return self.completed_at is None and (now or timezone.now()) > self.due_at


class AccessReviewEntry(models.Model):
    """One person's access as it stood when the review opened, and the reviewer's decision on it."""

    class Decision(models.TextChoices):
        CONFIRMED = "confirmed", _("Confirmed")
        REMOVED = "removed", _("Access removed")

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    review = models.ForeignKey(AccessReview, on_delete=models.CASCADE, related_name="entries")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    #: The role then (``super_admin`` for a Super-admin of the organisation).
    role = models.CharField(max_length=16)
    second_factor = models.BooleanField(default=False)
    last_sign_in = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(max_length=10, choices=Decision.choices, blank=True, default="")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["review", "membership"], name="one_entry_per_person")]

    def __str__(self) -> str:
        return f"access review entry #{self.pk}"

class RetentionPolicy(models.Model):
    """How long an organisation keeps what the installation lets it choose (docs/privacy.md gives the reasons
    for the defaults). No row: the installation's defaults (``RP_ALARM_RECORD_DAYS`` …). Changed on the page
    "Data retention" by a Super-admin, under four eyes (people.retention)."""

    organization = models.OneToOneField("tenants.Organization", on_delete=models.CASCADE, related_name="retention")
    #: Ended alarms keep who was alerted, their answers, status reports and messages this long; then only the
    #: counts and times stay.
    alarm_record_days = models.PositiveIntegerField(_("alarms: who was alerted and how they answered"))
    #: A device's push subscription that has not received anything this long is removed.
    push_idle_days = models.PositiveIntegerField(_("push notifications: unused devices"))
    #: A deactivated person is deleted (forgotten) this long after their deactivation.
    deactivated_days = models.PositiveIntegerField(_("deactivated people"))
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"retention of organisation #{self.organization_id}"


# --- Personal data: what these models hold about people, how long (rallypoint.people.personal_data) ---

declare(Membership, fields=("full_name", "phone", "department", "company"), person=("user", "host"),
        kept="DEACTIVATED_DAYS",
        why=_("as long as the person belongs to the site (deactivated: this long); visitors until the day after "
              "their visit"),
        erased=_("deleted with the person; a visitor the day after the visit unless an alarm's record names them"),
        purge=("rallypoint.evacuation.presence.purge_expired", "rallypoint.people.retention.purge_deactivated"),
        forget={"user": "keep", "host": "detach"})
declare(Group, person=("members", "leaders"),
        why=_("as long as the group exists"), erased=_("a person leaves every group when they are deleted"),
        forget="delete")
declare(AccessReview, person=("completed_by",), why=_("the record that access was reviewed"),
        erased=_("who completed it is removed with the person; the review stays"),
        forget="keep")
declare(AccessReviewEntry, fields=("last_sign_in",), person=("membership", "decided_by"),
        why=_("a person's access as reviewed, kept with the review"), erased=_("deleted with the person"),
        forget="keep")
