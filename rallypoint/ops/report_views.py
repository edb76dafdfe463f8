"""The Art. 32 report's pages: the live report, its PDF, and the organisation's declarations (measures outside
the software) and data-protection officer. Super-admins only: the report covers every site."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from rallypoint.audit.actions import record
from rallypoint.ops import tom_report
from rallypoint.ops.models import MeasureDeclaration, ReportSettings
from rallypoint.people.models import Membership
from rallypoint.tenants.roles import Perm
from rallypoint.tenants.scoping import site_permission_required


@site_permission_required(Perm.MANAGE_SUPER_ADMINS)
@require_GET
def report(request):
    organization = request.site.organization
    findings = tom_report.build(organization)
    return render(request, "ops/tom_report.html", {"organization": organization, "findings": findings,
                                                   "summary": tom_report.summary(findings)})


@site_permission_required(Perm.MANAGE_SUPER_ADMINS)
@require_GET
def report_pdf(request):
    organization = request.site.organization
    response = HttpResponse(tom_report.as_pdf(organization, tom_report.build(organization)),
                            content_type="application/pdf")
    response["Content-Disposition"] = 'attachment; filename="art-32-report.pdf"'
    return response


class DeclarationsForm(forms.Form):
    def __init__(self, organization, *args, **kwargs):
        super().__init__(*args, **kwargs)
        people = Membership.objects.filter(site__organization=organization, user__isnull=False, is_active=True,
                                           user__is_support=False).select_related("site")
        self.fields["officer"] = forms.ChoiceField(
            label=gettext_lazy("Data-protection officer (receives the report every month)"), required=False,
            choices=[("", "—")] + [(m.pk, f"{m.full_name} ({m.site.name})") for m in people.by_name()])
        for key, (heading, title) in tom_report.DECLARED.items():
            self.fields[f"{key}_text"] = forms.CharField(label=f"{heading}: {title}", max_length=2000,
                                                         required=False, widget=forms.Textarea(attrs={"rows": 3}))
            self.fields[f"{key}_checked"] = forms.DateField(label=gettext_lazy("Last checked on"), required=False,
                                                            widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        for key in tom_report.DECLARED:
            if bool(data.get(f"{key}_text")) != bool(data.get(f"{key}_checked")):
                self.add_error(f"{key}_checked", _("Give both how it is done and when it was last checked."))
            checked = data.get(f"{key}_checked")
            if checked and checked > timezone.localdate():
                self.add_error(f"{key}_checked", _("This date lies in the future."))
        return data


def _initial(organization) -> dict:
    initial = {}
    for row in MeasureDeclaration.objects.filter(organization=organization):
        initial[f"{row.measure}_text"], initial[f"{row.measure}_checked"] = row.text, row.checked_on
    settings_row = ReportSettings.objects.filter(organization=organization).first()
    if settings_row and settings_row.data_protection_officer_id:
        initial["officer"] = settings_row.data_protection_officer_id
    return initial


@site_permission_required(Perm.MANAGE_SUPER_ADMINS)
@require_http_methods(["GET", "POST"])
def declarations(request):
    organization = request.site.organization
    form = DeclarationsForm(organization, request.POST or None, initial=_initial(organization))
    if request.method == "POST" and form.is_valid():
        _save(request, organization, form.cleaned_data)
        messages.success(request, _("Changes saved."))
        return redirect("report:report")
    return render(request, "ops/declarations.html", {"form": form}, status=400 if form.errors else 200)


def _save(request, organization, data: dict) -> None:
    changes = {}
    for key in tom_report.DECLARED:
        text, checked = data.get(f"{key}_text") or "", data.get(f"{key}_checked")
        if text:
            MeasureDeclaration.objects.update_or_create(organization=organization, measure=key, defaults={
                "text": text, "checked_on": checked, "recorded_by": request.user, "recorded_at": timezone.now()})
            changes[key] = [None, checked.isoformat()]
        else:
            MeasureDeclaration.objects.filter(organization=organization, measure=key).delete()
    officer = int(data["officer"]) if data.get("officer") else None
    ReportSettings.objects.update_or_create(organization=organization,
                                            defaults={"data_protection_officer_id": officer})
    record(actor=request.user, organization=organization, site=None, action="report.declared",
           object_type="organization", object_id=organization.pk,
           changes={**changes, "officer": [None, officer]})
