"""Pages of a site's structure: the overview, forms for each kind of place, a floor's plan with its
markers, CSV export and import. Thin: ``structure_actions`` does the work; every object is looked up
within ``request.site`` (a foreign one is a 404, like a missing one)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rallypoint.accounts.forms import ImportForm
from rallypoint.evacuation import structure_actions as actions
from rallypoint.evacuation import structure_csv
from rallypoint.evacuation.models import AssemblyPoint, Building, Floor, Marker, Room, Zone, ZoneDuty
from rallypoint.evacuation.structure_forms import (
    AssemblyPointForm,
    BuildingForm,
    FloorForm,
    MarkerForm,
    PlanForm,
    RoomForm,
    ZoneForm,
    zone_label,
)
from rallypoint.tenants.roles import Perm
from rallypoint.tenants.scoping import site_permission_required
from rallypoint.web.forms import add_validation_errors as _form_errors

VIEW, MANAGE = Perm.VIEW_STRUCTURE, Perm.MANAGE_STRUCTURE


def _get(request, model, pk: int, *related: str):
    """The site's ``model`` row ``pk``, or 404 (also for another site's row)."""
    queryset = model.objects.for_site(request.site)
    if related:
        queryset = queryset.select_related(*related)
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise Http404
    return obj


def _form_page(request, form, save, *, title: str, back: str, saved: str, delete_url: str = "",
               delete_label: str = "", delete_confirm: str = "", lead: str = "", back_label: str = ""):
    """Show ``form``; on a valid POST call ``save(cleaned_data)``, which returns where to go next."""
    if request.method == "POST" and form.is_valid():
        try:
            target = save(form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, saved)
            return redirect(target)
    context = {"form": form, "title": title, "back": back, "back_label": back_label or _("Buildings and zones"),
               "lead": lead, "delete_url": delete_url,
               "delete_label": delete_label, "delete_confirm": delete_confirm}
    return render(request, "evacuation/structure/form.html", context, status=400 if form.errors else 200)


def _overview_url(anchor: str = "") -> str:
    return reverse("structure:overview") + (f"#{anchor}" if anchor else "")


# Overview ----------------------------------------------------------------------------------------

@require_GET
@site_permission_required(VIEW)
def overview(request):
    site = request.site
    duties = ZoneDuty.objects.select_related("membership").order_by("deputy", "pk")
    zones = (Zone.objects.for_site(site).order_by("name", "pk")
             .prefetch_related("rooms", Prefetch("duties", queryset=duties), "assembly_points"))
    floors = Floor.objects.for_site(site).defer("plan").prefetch_related(Prefetch("zones", queryset=zones))
    buildings = Building.objects.for_site(site).prefetch_related(Prefetch("floors", queryset=floors))
    points = AssemblyPoint.objects.for_site(site).prefetch_related(
        Prefetch("zones", queryset=Zone.objects.select_related("floor__building")))
    for point in points:
        point.zone_labels = [zone_label(z) for z in point.zones.all()]
    context = {"buildings": buildings, "points": points,
               "show_names": Perm.VIEW_DIRECTORY in request.site_perms}
    return render(request, "evacuation/structure/overview.html", context)


# Buildings ---------------------------------------------------------------------------------------

def _save_building(request, building: Building | None):
    initial = {"name": building.name, "code": building.code, "position": building.position} if building else {}
    form = BuildingForm(request.POST or None, initial=initial)

    def save(data):
        saved = actions.save_building(actor=request.user, site=request.site, building=building, **data)
        return _overview_url(f"building-{saved.pk}")

    return _form_page(request, form, save, title=building.name if building else _("New building"),
                      back=_overview_url(), saved=_("Building saved."),
                      delete_url=reverse("structure:building_delete", args=[building.pk]) if building else "",
                      delete_label=_("Delete building"),
                      delete_confirm=_("Delete this building with all its floors, zones and rooms?"))


@require_http_methods(["GET", "POST"])
@site_permission_required(MANAGE)
def building_create(request):
    return _save_building(request, None)


@require_http_methods(["GET", "POST"])
@site_permission_required(MANAGE)
def building_edit(request, building_id: int):
    return _save_building(request, _get(request, Building, building_id))


@require_POST
@site_permission_required(MANAGE)
def building_delete(request, building_id: int):
    try:
        actions.delete_building(actor=request.user, building=_get(request, Building, building_id))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Building deleted."))
    return redirect("structure:overview")


# Floors ------------------------------------------------------------------------------------------

def _save_floor(request, building: Building, floor: Floor | None):
    form = FloorForm(request.POST or None, initial={"name": floor.name, "level": floor.level} if floor else None)

    def save(data):
        saved = actions.save_floor(actor=request.user, building=building, floor=floor, **data)
        return reverse("structure:floor", args=[saved.pk])

    title = f"{building.name} · {floor.name}" if floor else _("New floor in %(building)s") % {"building": building.name}
    return _form_page(request, form, save, title=title,
                      back=reverse("structure:floor", args=[floor.pk]) if floor else _overview_url(),
                      back_label=title if floor else "", saved=_("Floor saved."),
                      delete_url=reverse("structure:floor_delete", args=[floor.pk]) if floor else "",
                      delete_label=_("Delete floor"),
                      delete_confirm=_("Delete this floor with its plan, zones and rooms?"))


@require_http_methods(["GET", "POST"])
@site_permission_required(MANAGE)
def floor_create(request, building_id: int):
    return _save_floor(request, _get(request, Building, building_id), None)


@require_http_methods(["GET", "POST"])
@site_permission_required(MANAGE)
def floor_edit(request, floor_id: int):
    floor = _get(request, Floor, floor_id, "building")
    return _save_floor(request, floor.building, floor)


@require_POST
@site_permission_required(MANAGE)
def floor_delete(request, floor_id: int):
    try:
        actions.delete_floor(actor=request.user, floor=_get(request, Floor, floor_id))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Floor deleted."))
    return redirect("structure:overview")


def _floor_page(request, floor: Floor, *, plan_form=None, marker_form=None):
    markers = list(Marker.objects.for_site(request.site).filter(floor=floor))
    for number, marker in enumerate(markers, start=1):
        marker.number = number
        marker.left, marker.top = f"{marker.x * 100:.2f}%", f"{marker.y * 100:.2f}%"
    zones = Zone.objects.for_site(request.site).filter(floor=floor).prefetch_related("rooms")
    context = {"floor": floor, "building": floor.building, "markers": markers, "zones": zones,
               "plan_form": plan_form or PlanForm(), "marker_form": marker_form or MarkerForm(),
               "can_manage": MANAGE in request.site_perms}
    status = 400 if (plan_form and plan_form.errors) or (marker_form and marker_form.errors) else 200
    return render(request, "evacuation/structure/floor.html", context, status=status)


@require_GET
@site_permission_required(VIEW)
def floor_page(request, floor_id: int):
    return _floor_page(request, _get(request, Floor, floor_id, "building"))


@require_GET
@site_permission_required(VIEW)
def floor_plan(request, floor_id: int):
    floor = _get(request, Floor, floor_id)
    if not floor.plan_type:
        raise Http404
    response = HttpResponse(bytes(floor.plan), content_type=floor.plan_type)
    # The address carries the plan's version (?v=…): a browser may keep it, shared caches may not.
    response["Cache-Control"] = "private, max-age=86400"
    response.rp_cache_control = True  # web.middleware: keep this Cache-Control instead of no-store
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
@site_permission_required(MANAGE)
def plan_upload(request, floor_id: int):
    floor = _get(request, Floor, floor_id, "building")
    form = PlanForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            actions.set_floor_plan(actor=request.user, floor=floor, content=form.cleaned_data["file"].read())
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("Floor plan saved."))
            return redirect("structure:floor", floor_id=floor.pk)
    return _floor_page(request, floor, plan_form=form)


@require_POST
@site_permission_required(MANAGE)
def plan_remove(request, floor_id: int):
    actions.remove_floor_plan(actor=request.user, floor=_get(request, Floor, floor_id))
    messages.success(request, _("Floor plan removed."))
    return redirect("structure:floor", floor_id=floor_id)


@require_POST
@site_permission_required(MANAGE)
def marker_create(request, floor_id: int):
    floor = _get(request, Floor, floor_id, "building")
    form = MarkerForm(request.POST)
    if form.is_valid():
        try:
            actions.save_marker(actor=request.user, floor=floor, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("Marker placed."))
            return redirect("structure:floor", floor_id=floor.pk)
    return _floor_page(request, floor, marker_form=form)


@require_http_methods(["GET", "POST"])
@site_permission_required(MANAGE)
def marker_edit(request, marker_id: int):
    marker = _get(request, Marker, marker_id, "floor__building")
    floor = marker.floor
    initial = {"kind": marker.kind, "label": marker.label, "x": marker.x, "y": marker.y}
    form = MarkerForm(request.POST or None, initial=initial)

    def save(data):
        actions.save_marker(actor=request.user, floor=floor, marker=marker, **data)
        return reverse("structure:floor", args=[floor.pk])

    where = f"{floor.building.name} · {floor.name}"
    return _form_page(request, form, save, title=marker.get_kind_display(), lead=where,
                      back=reverse("structure:floor", args=[floor.pk]), back_label=where, saved=_("Marker saved."),
                      delete_url=reverse("structure:marker_delete", args=[marker.pk]),
                      delete_label=_("Remove marker"), delete_confirm=_("Remove this marker?"))


@require_POST
@site_permission_required(MANAGE)
def marker_delete(request, marker_id: int):
    marker = _get(request, Marker, marker_id)
    actions.delete_marker(actor=request.user, marker=marker)
    messages.success(request, _("Marker removed."))
    return redirect("structure:floor", floor_id=marker.floor_id)


# Zones and rooms ---------------------------------------------------------------------------------

def _zone_initial(zone: Zone) -> dict:
    duties = list(zone.duties.all())
    return {"name": zone.name, "code": zone.code, "neighbours": list(zone.neighbours.all()),
            "helpers": [d.membership_id for d in duties if not d.deputy],
            "deputies": [d.membership_id for d in duties if d.deputy],
            "area_x": zone.area_x, "area_y": zone.area_y, "area_w": zone.area_w, "area_h": zone.area_h}


def _save_zone(request, floor: Floor, zone: Zone | None):
    form = ZoneForm(request.POST or None, initial=_zone_initial(zone) if zone else None, site=request.site,
                    zone=zone)

    def save(data):
        saved = actions.save_zone(actor=request.user, floor=floor, zone=zone, **data)
        return _overview_url(f"zone-{saved.pk}")

    where = f"{floor.building.name} · {floor.name}"
    return _form_page(request, form, save, title=f"{where} · {zone.name}" if zone else _("New zone"),
                      lead="" if zone else where, back=_overview_url(), saved=_("Zone saved."),
                      delete_url=reverse("structure:zone_delete", args=[zone.pk]) if zone else "",
                      delete_label=_("Delete zone"), delete_confirm=_("Delete this zone with its rooms?"))


@require_http_methods(["GET", "POST"])
@site_permission_required(MANAGE)
def zone_create(request, floor_id: int):
    return _save_zone(request, _get(request, Floor, floor_id, "building"), None)


@require_http_methods(["GET", "POST"])
@site_permission_required(MANAGE)
def zone_edit(request, zone_id: int):
    zone = _get(request, Zone, zone_id, "floor__building")
    return _save_zone(request, zone.floor, zone)


@require_POST
@site_permission_required(MANAGE)
def zone_delete(request, zone_id: int):
    try:
        actions.delete_zone(actor=request.user, zone=_get(request, Zone, zone_id))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Zone deleted."))
    return redirect("structure:overview")


def _save_room(request, zone: Zone, room: Room | None):
    form = RoomForm(request.POST or None, initial={"name": room.name} if room else None)

    def save(data):
        actions.save_room(actor=request.user, zone=zone, room=room, **data)
        return _overview_url(f"zone-{zone.pk}")

    where = f"{zone.floor.building.name} · {zone.floor.name} · {zone.name}"
    return _form_page(request, form, save, title=room.name if room else _("New room"), lead=where,
                      back=_overview_url(f"zone-{zone.pk}"), saved=_("Room saved."),
                      delete_url=reverse("structure:room_delete", args=[room.pk]) if room else "",
                      delete_label=_("Delete room"), delete_confirm=_("Delete this room?"))


@require_http_methods(["GET", "POST"])
@site_permission_required(MANAGE)
def room_create(request, zone_id: int):
    return _save_room(request, _get(request, Zone, zone_id, "floor__building"), None)


@require_http_methods(["GET", "POST"])
@site_permission_required(MANAGE)
def room_edit(request, room_id: int):
    room = _get(request, Room, room_id, "zone__floor__building")
    return _save_room(request, room.zone, room)


@require_POST
@site_permission_required(MANAGE)
def room_delete(request, room_id: int):
    room = _get(request, Room, room_id)
    actions.delete_room(actor=request.user, room=room)
    messages.success(request, _("Room deleted."))
    return redirect(_overview_url(f"zone-{room.zone_id}"))


# Assembly points ---------------------------------------------------------------------------------

def _save_point(request, point: AssemblyPoint | None):
    initial = None
    if point:
        initial = {"name": point.name, "latitude": point.latitude, "longitude": point.longitude,
                   "capacity": point.capacity, "zones": list(point.zones.all())}
    form = AssemblyPointForm(request.POST or None, initial=initial, site=request.site)

    def save(data):
        saved = actions.save_assembly_point(actor=request.user, site=request.site, point=point, **data)
        return _overview_url(f"point-{saved.pk}")

    return _form_page(request, form, save, title=point.name if point else _("New assembly point"),
                      back=_overview_url(), saved=_("Assembly point saved."),
                      delete_url=reverse("structure:point_delete", args=[point.pk]) if point else "",
                      delete_label=_("Delete assembly point"), delete_confirm=_("Delete this assembly point?"))


@require_http_methods(["GET", "POST"])
@site_permission_required(MANAGE)
def point_create(request):
    return _save_point(request, None)


@require_http_methods(["GET", "POST"])
@site_permission_required(MANAGE)
def point_edit(request, point_id: int):
    return _save_point(request, _get(request, AssemblyPoint, point_id))


@require_POST
@site_permission_required(MANAGE)
def point_delete(request, point_id: int):
    actions.delete_assembly_point(actor=request.user, point=_get(request, AssemblyPoint, point_id))
    messages.success(request, _("Assembly point deleted."))
    return redirect("structure:overview")


# CSV ---------------------------------------------------------------------------------------------

@require_GET
@site_permission_required(MANAGE)
def structure_export(request):
    text = structure_csv.export_structure(actor=request.user, site=request.site)
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="structure.csv"'
    return response


@require_http_methods(["GET", "POST"])
@site_permission_required(MANAGE)
def structure_import(request):
    form = ImportForm(request.POST or None, request.FILES or None)
    errors, status = [], 200
    if request.method == "POST" and form.is_valid():
        try:
            text = form.cleaned_data["file"].read().decode("utf-8-sig")
            result = structure_csv.import_structure(actor=request.user, site=request.site, text=text)
        except UnicodeDecodeError:
            errors, status = [(0, _("The file is not UTF-8 encoded text. Save it as CSV (UTF-8) and try "
                                    "again."))], 400
        except structure_csv.ImportErrors as exc:
            errors, status = exc.rows, 400
        else:
            messages.success(request, _("Import done: %(created)d places added, %(updated)d changed.") % result)
            return redirect("structure:overview")
    elif form.errors:
        status = 400
    return render(request, "evacuation/structure/import.html", {"form": form, "errors": errors}, status=status)
