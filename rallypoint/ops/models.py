"""Scheduler state (not tenant data: one row per periodic job of the installation), and an organisation's
declarations and settings for the Art. 32 report."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rallypoint.people.personal_data import declare


class JobState(models.Model):
    name = models.CharField(max_length=64, primary_key=True)
    next_run_at = models.DateTimeField(default=timezone.now)
    locked_by = models.CharField(max_length=64, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    runs = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.name


class MeasureDeclaration(models.Model):
    """A measure outside the software (staff training, physical access, …) as the organisation declares it,
    with the date it was last checked: the Art. 32 report shows it (ops.tom_report)."""

    organization = models.ForeignKey("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    measure = models.CharField(max_length=32)
    text = models.TextField(_("how it is done"), max_length=2000)
    checked_on = models.DateField(_("last checked on"))
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "measure"], name="one_declaration_per_measure")]

    def __str__(self) -> str:
        return f"{self.measure} of organisation #{self.organization_id}"


class ReportSettings(models.Model):
    """Who receives the monthly Art. 32 report: the organisation's data-protection officer, a person of one
    of its sites."""

    organization = models.OneToOneField("tenants.Organization", on_delete=models.CASCADE, related_name="+")
    data_protection_officer = models.ForeignKey("people.Membership", null=True, blank=True,
                                                on_delete=models.SET_NULL, related_name="+",
                                                verbose_name=_("data-protection officer"))
    last_sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"report settings of organisation #{self.organization_id}"


declare(MeasureDeclaration, fields=("text",), person=("recorded_by",),
        why=_("the organisation's record of its measures outside the software"),
        erased=_("who recorded it is removed with the person; the declaration stays"), forget="keep")
declare(ReportSettings, person=("data_protection_officer",), why=_("as long as the person is named"),
        erased=_("the reference goes with the person"), forget="detach")
