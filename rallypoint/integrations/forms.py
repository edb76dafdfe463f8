from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from rallypoint.alarms.models import Scenario


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120,
                           help_text=_("The system that uses the key, e.g. “Fire-alarm panel, building A”."))
    scenarios = forms.ModelMultipleChoiceField(
        label=_("Scenarios the key may trigger"), queryset=Scenario.objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    reports_presence = forms.BooleanField(
        label=_("May report who is on site (time recording, door access)"), required=False,
        help_text=_("For POST /api/v1/presence: people arriving and leaving, counted in an evacuation."))

    def __init__(self, *args, site, selected=(), **kwargs):
        super().__init__(*args, **kwargs)
        # Inactive scenarios stay choosable only where the key already has them.
        active_or_selected = Scenario.objects.for_site(site).filter(is_active=True) | Scenario.objects.for_site(
            site).filter(pk__in=[s.pk for s in selected])
        self.fields["scenarios"].queryset = active_or_selected.distinct()

    def clean(self):
        data = super().clean()
        if not data.get("scenarios") and not data.get("reports_presence"):
            self.add_error("scenarios", _("Choose at least one scenario the key may trigger, or let it report who "
                                          "is on site."))
        return data
