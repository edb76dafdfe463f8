from __future__ import annotations

import zoneinfo

from django import forms
from django.utils.translation import gettext_lazy as _

TIME_ZONES = sorted(zoneinfo.available_timezones())


class SiteForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=[(z, z) for z in TIME_ZONES],
                                  initial="Europe/Berlin")


class SetupForm(forms.Form):
    """What ``rallypoint setup`` needs: the organisation, its first site and its first Super-admin.

    The limits are those of the models and of the site and person forms.
    """

    organization = forms.CharField(label=_("Organisation"), max_length=120)
    site = forms.CharField(label=_("First site"), max_length=120)
    time_zone = forms.ChoiceField(label=_("Time zone of the site"), choices=[(z, z) for z in TIME_ZONES])
    full_name = forms.CharField(label=_("Super-admin's name"), max_length=150)
    email = forms.EmailField(label=_("Super-admin's e-mail address"), max_length=254)

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()


class SuperAdminForm(forms.Form):
    email = forms.EmailField(label=_("E-mail of a person of one of the organisation's sites"))
