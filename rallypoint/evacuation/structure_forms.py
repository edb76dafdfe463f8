"""Forms of the site-structure pages. They read input; the actions in ``structure_actions`` decide."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from rallypoint.evacuation import plans
from rallypoint.evacuation.models import Marker, Zone
from rallypoint.people.models import Membership


class BuildingForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    code = forms.CharField(label=_("Short mark"), max_length=40, required=False,
                           help_text=_("E.g. “A”; shown in lists and on plans."))
    position = forms.IntegerField(label=_("Order in lists"), min_value=1, max_value=999, required=False)


class FloorForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120, help_text=_("E.g. “Ground floor” or “1st floor”."))
    level = forms.IntegerField(label=_("Level"), min_value=-20, max_value=200, initial=0,
                               help_text=_("0 is the ground floor, −1 the basement."))


class PlanForm(forms.Form):
    file = forms.FileField(label=_("Floor plan (PNG, JPEG or PDF, at most 10 MB)"),
                           widget=forms.ClearableFileInput(attrs={"accept": plans.ACCEPT}))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > plans.MAX_BYTES:
            raise forms.ValidationError(_("The file is larger than 10 MB."))
        return upload


def zone_label(zone: Zone) -> str:
    """“Building · Floor · Zone (code)”: a zone named so that it can be told apart in a site-wide list."""
    code = f" ({zone.code})" if zone.code else ""
    return f"{zone.floor.building.name} · {zone.floor.name} · {zone.name}{code}"


def _zone_field(label, site, exclude=None) -> forms.ModelMultipleChoiceField:
    queryset = Zone.objects.for_site(site).select_related("floor__building").order_by(
        "floor__building__position", "floor__building__name", "-floor__level", "name")
    if exclude is not None:
        queryset = queryset.exclude(pk=exclude.pk)
    field = forms.ModelMultipleChoiceField(label=label, queryset=queryset, required=False,
                                           widget=forms.CheckboxSelectMultiple)
    field.choices = [(z.pk, zone_label(z)) for z in queryset]
    return field


def _people_field(label, site, help_text="") -> forms.ModelMultipleChoiceField:
    queryset = Membership.objects.for_site(site).alertable()
    field = forms.ModelMultipleChoiceField(label=label, queryset=queryset, required=False, help_text=help_text,
                                           widget=forms.CheckboxSelectMultiple)
    # Names are encrypted, so the choices are sorted here rather than in the database.
    field.choices = [(m.pk, m.full_name) for m in queryset.by_name()]
    return field


class ZoneForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120, help_text=_("E.g. “West wing”."))
    code = forms.CharField(label=_("Code"), max_length=40, required=False,
                           help_text=_("Unique in the site, e.g. “A-1-W”; the fire panel's detector group if "
                                       "there is one."))

    def __init__(self, *args, site, zone=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["helpers"] = _people_field(_("Evacuation helpers"), site,
                                               _("They clear the zone and report it cleared."))
        self.fields["deputies"] = _people_field(_("Deputies"), site,
                                                _("They stand in when a helper is absent."))
        self.fields["neighbours"] = _zone_field(_("Neighbouring zones"), site, exclude=zone)
        for name, label in (("area_x", _("On the plan: left")), ("area_y", _("On the plan: top")),
                            ("area_w", _("On the plan: width")), ("area_h", _("On the plan: height"))):
            self.fields[name] = forms.FloatField(
                label=label, required=False, min_value=0, max_value=1,
                help_text=_("A fraction of the plan, 0 to 1; all four or none. The cockpit colours the zone "
                            "there by its state.") if name == "area_x" else "")

    def clean(self):
        data = super().clean()
        parts = [data.pop(name, None) for name in ("area_x", "area_y", "area_w", "area_h")]
        if any(p is not None for p in parts) and None in parts:
            self.add_error("area_x", _("Give all four: left, top, width and height."))
        data["area"] = tuple(parts) if None not in parts else ()
        return data


class RoomForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120, help_text=_("E.g. “Room 104” or “Library”."))


class AssemblyPointForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    latitude = forms.FloatField(label=_("Latitude"), min_value=-90, max_value=90, required=False,
                                help_text=_("Decimal degrees, e.g. 52.5163."))
    longitude = forms.FloatField(label=_("Longitude"), min_value=-180, max_value=180, required=False,
                                 help_text=_("Decimal degrees, e.g. 13.3777."))
    capacity = forms.IntegerField(label=_("Capacity (people)"), min_value=1, max_value=1_000_000, required=False)

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["zones"] = _zone_field(_("Zones that evacuate here"), site)


class MarkerForm(forms.Form):
    kind = forms.ChoiceField(label=_("Marker"), choices=Marker.Kind.choices)
    label = forms.CharField(label=_("Label"), max_length=120, required=False,
                            help_text=_("Optional, e.g. “Exit 2” or “Extinguisher by the stairs”."))
    x = forms.FloatField(label=_("Across (0 = left edge, 1 = right edge)"), min_value=0, max_value=1)
    y = forms.FloatField(label=_("Down (0 = top edge, 1 = bottom edge)"), min_value=0, max_value=1)
