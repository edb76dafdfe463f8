from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from rallypoint.tenants.roles import Role

_PHONE = re.compile(r"^\+?[0-9 ()/.-]{5,30}$")


def validate_phone(value: str) -> None:
    if value and not _PHONE.match(value):
        raise ValidationError(_("Enter a phone number with digits only, e.g. +49 30 1234567."))


class PersonForm(forms.Form):
    """The fields of a person at a site. Used by the web form, the API and the CSV import."""

    full_name = forms.CharField(label=_("Name"), max_length=150)
    email = forms.EmailField(label=_("E-mail"), max_length=254, required=False,
                             help_text=_("Leave empty for someone who does not sign in (a pupil, a patient, a "
                                         "contractor): listed and counted in an evacuation, never alerted."))
    phone = forms.CharField(label=_("Phone"), max_length=30, required=False, validators=[validate_phone])
    department = forms.CharField(label=_("Department"), max_length=120, required=False)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.EMPLOYEE)

    def clean_full_name(self) -> str:
        return self.cleaned_data["full_name"].strip()

    def clean_email(self) -> str:
        return (self.cleaned_data["email"] or "").strip().lower()


class NewPersonForm(PersonForm):
    invite = forms.BooleanField(
        label=_("Send an invitation e-mail so they can set a password"), required=False, initial=True
    )


#: Far more than the most rows an import takes (RP_CSV_IMPORT_MAX_ROWS) need; a bigger file is not read.
MAX_IMPORT_BYTES = 5 * 1024 * 1024


class ImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"), help_text=_("UTF-8, comma or semicolon separated."))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise ValidationError(_("The file is larger than 5 MB."))
        return upload
