from __future__ import annotations

import zoneinfo

from django import forms
from django.utils.translation import gettext_lazy as _

from rallypoint.people.models import Membership

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


class GroupForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    description = forms.CharField(label=_("Description"), max_length=500, required=False,
                                  widget=forms.Textarea(attrs={"rows": 2}))
    members = forms.ModelMultipleChoiceField(
        label=_("Members"), queryset=Membership.objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["members"]
        # Groups are whom alarms reach: the support account is not offered (it is never alerted).
        field.queryset = Membership.objects.for_site(site).alertable()
        # Names are encrypted, so the choices are sorted here rather than in the database.
        field.choices = [(m.pk, m.full_name) for m in field.queryset.by_name()]


class SuperAdminForm(forms.Form):
    email = forms.EmailField(label=_("E-mail of a person of one of the organisation's sites"))
