"""The forms of the people pages (a person's own form is accounts.forms.PersonForm: it also makes accounts)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from rallypoint.people.models import Membership


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
