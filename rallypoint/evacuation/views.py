"""Pages during an evacuation: everyone's own status, a group leader's class, a helper's zones, the roll call at
an assembly point, the missing list and the handover to the fire brigade.

Every page reads the alarm of the current site only (404 otherwise); names appear only on the pages of the
roles that need them (a group's leaders for their group, helpers for nobody, ``evacuation.roll_call`` for the
roll call, the missing list and the handover). Writes go through :mod:`rallypoint.evacuation.status`.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rallypoint.alarms.models import Alarm
from rallypoint.evacuation import handover, presence, rollcall, status
from rallypoint.evacuation.models import AssemblyPoint, Source, Status, Zone, ZoneReport
from rallypoint.people.models import Group
from rallypoint.tenants.roles import Perm
from rallypoint.tenants.scoping import site_permission_required


def _alarm(request, alarm_id: int) -> Alarm:
    alarm = (Alarm.objects.for_site(request.site).select_related("scenario", "level", "site")
             .filter(pk=alarm_id).first())
    if alarm is None:
        raise Http404
    return alarm


def _evacuating(request, alarm_id: int) -> Alarm:
    """An alarm of the site that asks people to leave (active or ended: the pages say which)."""
    alarm = _alarm(request, alarm_id)
    if not alarm.scenario.evacuates:
        raise Http404
    return alarm


def _reporter(request) -> status.Reporter:
    return status.Reporter(request.membership, frozenset(request.site_perms))


def _int(value) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) < 12 else None


def _refused(request, exc: Exception) -> None:
    if isinstance(exc, PermissionDenied):
        messages.error(request, _("You may not report for this person."))
    else:
        messages.error(request, " ".join(exc.messages))


def my_status_context(request, alarm: Alarm) -> dict:
    """For the alarm page: may this person report their status, and what did they report last."""
    if request.membership is None or not status.is_evacuating(alarm):
        return {}
    state = status.current_states(alarm).filter(membership=request.membership).first()
    return {"evacuation": {
        "state": state, "statuses": Status.choices,
        "points": list(AssemblyPoint.objects.for_site(alarm.site_id).only("pk", "name")),
        "leads_groups": request.membership.leads_groups.exists(),
        "has_zones": request.membership.zone_duties.exists(),
        "roll_call": Perm.ROLL_CALL in request.site_perms}}


# Own status ----------------------------------------------------------------------------------------

@require_POST
@site_permission_required(Perm.VIEW_SITE)
def my_status(request, alarm_id: int):
    alarm = _evacuating(request, alarm_id)
    if request.membership is None:
        raise Http404
    try:
        status.report_status(alarm=alarm, person=request.membership, status=request.POST.get("status", ""),
                             reporter=_reporter(request), via=Source.APP,
                             assembly_point_id=_int(request.POST.get("assembly_point")),
                             note=request.POST.get("note", ""))
    except (ValidationError, PermissionDenied) as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("Thank you: your status is recorded."))
    return redirect("alarms:detail", alarm_id=alarm.pk)


# A group's leader marks her group -------------------------------------------------------------------

def _my_groups(request, alarm: Alarm) -> list[Group]:
    if request.membership is None:
        return []
    groups = list(Group.objects.for_site(alarm.site_id).filter(leaders=request.membership).order_by("name"))
    members = {g.pk: [] for g in groups}
    through = Group.members.through.objects.filter(group_id__in=members).values_list("group_id", "membership_id")
    for group_id, membership_id in through:
        members[group_id].append(membership_id)
    named = rollcall.names(alarm.site_id, {m for ids in members.values() for m in ids})
    current = rollcall.states(alarm)
    for group in groups:
        group.people = sorted(({"id": m, "name": named.get(m, ""), "status": current.get(m, ("",))[0]}
                               for m in members[group.pk] if m in named), key=lambda p: p["name"].casefold())
    return groups


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.VIEW_SITE)
def my_groups(request, alarm_id: int):
    """A teacher's class, a nurse's ward: one tap marks one person or the whole group."""
    alarm = _evacuating(request, alarm_id)
    groups = _my_groups(request, alarm)
    if not groups:
        raise Http404
    if request.method == "POST":
        group = next((g for g in groups if g.pk == _int(request.POST.get("group"))), None)
        if group is None:
            raise Http404
        chosen = {_int(v) for v in request.POST.getlist("person")} - {None}
        ids = [p["id"] for p in group.people if not chosen or p["id"] in chosen]
        _report_many(request, alarm, ids, request.POST.get("status", ""), via=Source.APP)
        return redirect("evacuation:groups", alarm_id=alarm.pk)
    return render(request, "evacuation/groups.html", {"alarm": alarm, "groups": groups,
                                                       "statuses": Status.choices})


def _report_many(request, alarm: Alarm, ids: list[int], state: str, via: str, point: int | None = None) -> None:
    try:
        results = status.report_statuses(alarm=alarm, reporter=_reporter(request), via=via, reports=[
            {"membership_id": m, "status": state, "assembly_point_id": point} for m in ids])
    except ValidationError as exc:
        _refused(request, exc)
        return
    refused = [r for r in results if isinstance(r, Exception)]
    if refused:
        _refused(request, refused[0])
    done = len(results) - len(refused)
    if done:
        messages.success(request, _("%(count)d people marked.") % {"count": done})


# Helpers report their zones --------------------------------------------------------------------------

def _zones_for(request, alarm: Alarm) -> list[Zone]:
    zones = Zone.objects.for_site(alarm.site_id).select_related("floor__building")
    if Perm.ROLL_CALL in request.site_perms:
        affected = rollcall.affected_zone_ids(alarm)
        if affected is not None:
            zones = zones.filter(pk__in=affected)
    elif request.membership is not None:
        zones = zones.filter(duties__membership=request.membership)
    else:
        zones = zones.none()
    zones = list(zones.order_by("floor__building__position", "floor__building__name", "-floor__level", "name"))
    current = rollcall.zone_states(alarm)
    for zone in zones:
        zone.state, zone.remaining = current.get(zone.pk, ("", 0))
    return zones


@require_GET
@site_permission_required(Perm.VIEW_SITE)
def zones(request, alarm_id: int):
    alarm = _evacuating(request, alarm_id)
    mine = _zones_for(request, alarm)
    if not mine:
        raise Http404
    return render(request, "evacuation/zones.html", {"alarm": alarm, "zones": mine,
                                                      "states": ZoneReport.State.choices})


@require_POST
@site_permission_required(Perm.VIEW_SITE)
def zone_report(request, alarm_id: int, zone_id: int):
    alarm = _evacuating(request, alarm_id)
    zone = Zone.objects.for_site(request.site).filter(pk=zone_id).first()
    if zone is None:
        raise Http404
    try:
        status.report_zone(alarm=alarm, zone=zone, state=request.POST.get("state", ""), reporter=_reporter(request),
                           remaining=_int(request.POST.get("remaining", "")) or 0,
                           where=request.POST.get("where", ""))
    except PermissionDenied:
        raise Http404 from None
    except ValidationError as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("Thank you: the zone's state is recorded."))
    return redirect("evacuation:zones", alarm_id=alarm.pk)


# Roll call at the assembly point ---------------------------------------------------------------------

@require_GET
@site_permission_required(Perm.ROLL_CALL)
def assembly_points(request, alarm_id: int):
    alarm = _evacuating(request, alarm_id)
    points = list(AssemblyPoint.objects.for_site(request.site))
    if len(points) == 1:
        return redirect("evacuation:roll_call", alarm_id=alarm.pk, point_id=points[0].pk)
    counts = rollcall.counts(alarm)["by_assembly_point"] if alarm.is_active else {}
    for point in points:
        point.arrived = counts.get(str(point.pk), 0)
    return render(request, "evacuation/assembly_points.html", {"alarm": alarm, "points": points})


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.ROLL_CALL)
def roll_call(request, alarm_id: int, point_id: int):
    """The lead's list at one assembly point; works without JavaScript (a form per person) and, with it,
    offline (static/evacuation/rollcall.js queues the marks and sends them when the network is back)."""
    alarm = _evacuating(request, alarm_id)
    point = AssemblyPoint.objects.for_site(request.site).filter(pk=point_id).first()
    if point is None:
        raise Http404
    if request.method == "POST":
        if "walk_in_name" in request.POST:
            _walk_in(request, alarm, point)
        else:
            ids = [m for m in (_int(v) for v in request.POST.getlist("person")) if m is not None]
            _report_many(request, alarm, ids, request.POST.get("status", Status.SAFE), via=Source.ROLL_CALL,
                         point=point.pk)
        return redirect("evacuation:roll_call", alarm_id=alarm.pk, point_id=point.pk)
    context = {"alarm": alarm, "point": point, "people": [], "groups": [], "statuses": Status.choices}
    if alarm.is_active:
        context.update(rollcall.roll_call_list(alarm, point))
        context["here_count"] = sum(1 for p in context["people"] if p["here"])
        context["open_count"] = sum(1 for p in context["people"] if p["expected"] and not p["status"])
    return render(request, "evacuation/roll_call.html", context)


def _walk_in(request, alarm: Alarm, point: AssemblyPoint) -> None:
    """Someone at the assembly point who is on no list (a walk-in visitor): listed, present, and safe here."""
    if not alarm.is_active:
        messages.error(request, _("The alarm has ended: nothing more to report."))
        return
    try:
        visitor = presence.register_visitor(site=request.site, full_name=request.POST.get("walk_in_name", ""),
                                            company=request.POST.get("walk_in_company", ""),
                                            source=Source.ROLL_CALL, actor=request.user)
    except ValidationError as exc:
        _refused(request, exc)
        return
    _report_many(request, alarm, [visitor.pk], Status.SAFE, via=Source.ROLL_CALL, point=point.pk)


# Missing persons and the handover ----------------------------------------------------------------------

@require_GET
@site_permission_required(Perm.ROLL_CALL)
def missing(request, alarm_id: int):
    alarm = _evacuating(request, alarm_id)
    rows = rollcall.missing(alarm) if alarm.is_active else []
    return render(request, "evacuation/missing.html", {
        "alarm": alarm, "rows": rows, "counts": rollcall.counts(alarm) if alarm.is_active else None,
        "missing_url": reverse("evacuation:missing", args=[alarm.pk])})


@require_GET
@site_permission_required(Perm.ROLL_CALL)
def handover_page(request, alarm_id: int):
    alarm = _evacuating(request, alarm_id)
    return render(request, "evacuation/handover.html", {"alarm": alarm, "report": handover.collect(alarm)})


@require_GET
@site_permission_required(Perm.ROLL_CALL)
def handover_pdf(request, alarm_id: int):
    alarm = _evacuating(request, alarm_id)
    report = handover.collect(alarm)
    response = HttpResponse(handover.render_pdf(report), content_type="application/pdf")
    stamp = timezone.localtime(report.at).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="handover-{alarm.pk}-{stamp}.pdf"'
    response["Cache-Control"] = "no-store"
    return response
