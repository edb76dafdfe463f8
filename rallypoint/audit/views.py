"""Browsing and verifying the audit trail: Administrators of the site and Super-admins only."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from rallypoint.audit import presentation
from rallypoint.audit.actions import security_events_for_site
from rallypoint.audit.chain import verify_chain
from rallypoint.audit.models import AuditEntry, SecurityEvent
from rallypoint.people.models import Membership
from rallypoint.tenants.roles import SUPER_ADMIN, Perm
from rallypoint.tenants.scoping import site_permission_required

ACTION_LABELS = {
    "site.created": _("Site created"),
    "site.updated": _("Site changed"),
    "site.deleted": _("Site deleted"),
    "person.created": _("Person added"),
    "visitor.registered": _("Visitor registered"),
    "person.updated": _("Person changed"),
    "messenger.added": _("Messenger address added"),
    "messenger.removed": _("Messenger address removed"),
    "person.deactivated": _("Person deactivated"),
    "person.activated": _("Person reactivated"),
    "person.invited": _("Invitation sent"),
    "person.deleted": _("Person deleted"),
    "people.exported": _("People exported"),
    "access_review.opened": _("Access review opened"),
    "access_review.confirmed": _("Access confirmed in the review"),
    "access_review.removed": _("Access removed in the review"),
    "access_review.completed": _("Access review completed"),
    "role.granted": _("Role granted"),
    "role.revoked": _("Role revoked"),
    "group.created": _("Group created"),
    "group.updated": _("Group changed"),
    "group.deleted": _("Group deleted"),
    "organization.second_factor_policy": _("Second-factor rule changed"),
    "scenario.created": _("Scenario created"),
    "scenario.updated": _("Scenario changed"),
    "scenario.deleted": _("Scenario deleted"),
    "scenario.level_created": _("Scenario level added"),
    "scenario.level_updated": _("Scenario level changed"),
    "scenario.level_deleted": _("Scenario level deleted"),
    "scenario.question_created": _("Scenario question added"),
    "scenario.question_updated": _("Scenario question changed"),
    "scenario.question_deleted": _("Scenario question deleted"),
    "scenario.document_added": _("Scenario document added"),
    "scenario.document_deleted": _("Scenario document deleted"),
    "alarm.triggered": _("Alarm triggered"),
    "alarm.updated": _("Alarm information updated"),
    "alarm.level_raised": _("Alarm level raised"),
    "alarm.ended": _("Alarm ended"),
    "evacuation.marked": _("Status reported for others"),
    "push.subscribed": _("Push notifications turned on"),
    "push.renewed": _("Push subscription renewed"),
    "push.unsubscribed": _("Push notifications turned off"),
    "push.signed_out": _("Push notifications ended by signing out"),
    "api_key.created": _("API key created"),
    "api_key.updated": _("API key changed"),
    "api_key.rotated": _("API key rotated"),
    "api_key.revoked": _("API key revoked"),
    "display_link.created": _("Wall-screen link made"),
    "display_link.revoked": _("Wall-screen link revoked"),
    "api_key.used": _("API key used"),
    "building.created": _("Building added"),
    "building.updated": _("Building changed"),
    "building.deleted": _("Building deleted"),
    "floor.created": _("Floor added"),
    "floor.updated": _("Floor changed"),
    "floor.deleted": _("Floor deleted"),
    "floor.plan_set": _("Floor plan uploaded"),
    "floor.plan_removed": _("Floor plan removed"),
    "zone.created": _("Zone added"),
    "zone.updated": _("Zone changed"),
    "zone.deleted": _("Zone deleted"),
    "room.created": _("Room added"),
    "room.updated": _("Room changed"),
    "room.deleted": _("Room deleted"),
    "assembly_point.created": _("Assembly point added"),
    "assembly_point.updated": _("Assembly point changed"),
    "assembly_point.deleted": _("Assembly point deleted"),
    "marker.created": _("Marker placed"),
    "marker.updated": _("Marker changed"),
    "marker.deleted": _("Marker removed"),
    "structure.exported": _("Buildings and zones exported"),
    "structure.imported": _("Buildings and zones imported"),
}
OBJECT_LABELS = {"access_review": _("Access review"),
                 "site": _("Site"), "person": _("Person"), "group": _("Group"), "user": _("User"),
                 "organization": _("Organisation"), "alarm": _("Alarm"), "api_key": _("API key"),
                 "display_link": _("Wall-screen link"),
                 "scenario": _("Scenario"), "push_subscription": _("Push subscription"), "building": _("Building"),
                 "floor": _("Floor"), "zone": _("Zone"), "room": _("Room"), "assembly_point": _("Assembly point"),
                 "marker": _("Marker")}


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(label=_("Action"), required=False,
                               choices=[("", _("All actions")), *ACTION_LABELS.items()])
    object_type = forms.ChoiceField(label=_("Object"), required=False,
                                    choices=[("", _("All objects")), *OBJECT_LABELS.items()])
    actor = forms.TypedChoiceField(label=_("Changed by"), required=False, coerce=int, empty_value=None)
    # <input type="date"> takes ISO dates only, whatever the language's date format.
    since = forms.DateField(label=_("From"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    until = forms.DateField(label=_("Until"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        people = Membership.objects.for_site(site).by_name()
        self.fields["actor"].choices = [("", _("Anyone"))] + [(m.user_id, m.full_name) for m in people]


def entries_for(request):
    """The site's entries; for a Super-admin also the organisation's own (sites, Super-admins, rules)."""
    site = request.site
    scope = Q(site=site)
    if request.site_role == SUPER_ADMIN:
        scope |= Q(site__isnull=True, organization_id=site.organization_id)
    return AuditEntry.objects.filter(scope)


def _filtered(request, form: AuditFilterForm):
    site = request.site
    entries = entries_for(request)
    if not form.is_valid():
        return entries.none()
    data = form.cleaned_data
    zone = ZoneInfo(site.time_zone)
    if data["action"]:
        entries = entries.filter(action=data["action"])
    if data["object_type"]:
        entries = entries.filter(object_type=data["object_type"])
    if data["actor"]:
        entries = entries.filter(actor_id=data["actor"])
    if data["since"]:
        entries = entries.filter(at__gte=datetime.combine(data["since"], time.min, zone))
    if data["until"]:
        entries = entries.filter(at__lte=datetime.combine(data["until"], time.max, zone))
    return entries


@require_GET
@site_permission_required(Perm.VIEW_AUDIT)
def audit_list(request):
    site = request.site
    form = AuditFilterForm(request.GET or None, site=site)
    entries = _filtered(request, form) if request.GET else entries_for(request)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    # Names of people only for who may see personal data (today only the roles that may read the trail).
    show_people = Perm.VIEW_PERSONAL_DATA in request.site_perms
    names = presentation.look_up_names(site, page.object_list, show_people=show_people)
    actors = {m.user_id: m.full_name for m in Membership.objects.for_site(site).filter(
        user_id__in={e.actor_id for e in page.object_list})} if show_people else {}
    rows = [{
        "entry": e,
        "actor_name": actors.get(e.actor_id) or _("User #%(id)s") % {"id": e.actor_id},
        "action": ACTION_LABELS.get(e.action, e.action),
        "object_type": OBJECT_LABELS.get(e.object_type, e.object_type),
        "object_name": presentation.object_name(e, names),
        "changes": presentation.changes_of(e, names),
    } for e in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit/audit_list.html", {
        "form": form, "page": page, "rows": rows, "query": query.urlencode(), "site_zone": site.time_zone,
        "retention_days": settings.AUDIT_RETENTION_DAYS,
    })


@require_GET
@site_permission_required(Perm.VIEW_AUDIT)
def verify_trail(request):
    """Whether this site's audit trail is whole: its hash chain, checked entry by entry (the site's only)."""
    site = request.site
    report = verify_chain(site.organization_id, site.pk)
    broken = None
    if report.broken_id is not None:
        broken = AuditEntry.objects.filter(site=site, pk=report.broken_id).values("at", "action").first()
        if broken:
            broken["action"] = ACTION_LABELS.get(broken["action"], broken["action"])
    return render(request, "audit/verify.html", {"report": report, "broken": broken, "site_zone": site.time_zone})


class SecurityFilterForm(forms.Form):
    kind = forms.ChoiceField(label=_("Event"), required=False,
                             choices=[("", _("All events")), *SecurityEvent.Kind.choices])


@require_GET
@site_permission_required(Perm.VIEW_SECURITY_EVENTS)
def security_events(request):
    """Sign-ins, failures, grants … of this site's people; client addresses are kept only here."""
    site = request.site
    form = SecurityFilterForm(request.GET or None)
    events = security_events_for_site(site)
    if form.is_valid() and form.cleaned_data["kind"]:
        events = events.filter(kind=form.cleaned_data["kind"])
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    names = {m.user_id: m.full_name for m in Membership.objects.for_site(site).filter(
        user_id__in={e.user_id for e in page.object_list} | {e.actor_id for e in page.object_list})}
    rows = [{"event": e, "kind": e.get_kind_display(), "who": names.get(e.user_id, ""),
             "by": names.get(e.actor_id, "") if e.actor_id and e.actor_id != e.user_id else ""}
            for e in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit/security_events.html", {
        "form": form, "page": page, "rows": rows, "query": query.urlencode(), "site_zone": site.time_zone,
        "retention_days": settings.SECURITY_EVENT_RETENTION_DAYS,
    })
