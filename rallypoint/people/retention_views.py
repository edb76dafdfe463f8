"""Data retention: a Super-admin sees how long the organisation keeps what it may choose, and asks to change
it; a second Super-admin approves (four-eyes). Thin: people.retention does the work."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from rallypoint.people import retention
from rallypoint.people.models import RetentionPolicy
from rallypoint.tenants.roles import Perm
from rallypoint.tenants.scoping import site_permission_required
from rallypoint.web.forms import add_validation_errors


class RetentionForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=500, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        fields = {f.name: f for f in RetentionPolicy._meta.fields}
        for period in retention.PERIODS:
            self.fields[period.field] = forms.IntegerField(
                label=fields[period.field].verbose_name, min_value=period.minimum, max_value=period.maximum,
                help_text=_("%(why)s From %(min)d to %(max)d days.") % {
                    "why": period.why, "min": period.minimum, "max": period.maximum})
        self.order_fields([p.field for p in retention.PERIODS] + ["reason"])


@site_permission_required(Perm.MANAGE_SUPER_ADMINS)
@require_http_methods(["GET", "POST"])
def retention_page(request):
    organization = request.site.organization
    form = RetentionForm(request.POST or None, initial=retention.policy_of(organization.pk))
    if request.method == "POST" and form.is_valid():
        values = {p.field: form.cleaned_data[p.field] for p in retention.PERIODS}
        try:
            approval = retention.request_change(actor=request.user, organization=organization, values=values,
                                                reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            add_validation_errors(form, exc)
        else:
            if approval is None:
                messages.success(request, _("Changes saved."))
                return redirect("people:retention")
            messages.success(request, _("A second Super-admin must approve the change. They have been told."))
            return redirect("audit:approvals")
    return render(request, "people/retention.html", {"form": form, "organization": organization},
                  status=400 if form.errors else 200)
