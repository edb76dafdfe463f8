from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from rallypoint.alarms.actions import triggerable_scenarios
from rallypoint.alarms.models import Alarm, AlarmRecipient
from rallypoint.evacuation import presence_views
from rallypoint.people.models import Group, Membership
from rallypoint.tenants.middleware import SESSION_KEY
from rallypoint.tenants.roles import Perm
from rallypoint.tenants.scoping import accessible_sites


def visible_active_alarms(request) -> list[Alarm]:
    """Active alarms the person may open: as a recipient, as their trigger, or from the cockpit.

    A silent alarm is left out for the person who raised it: their screen must not show it.
    """
    alarms = Alarm.objects.for_site(request.site).filter(state=Alarm.State.ACTIVE).select_related(
        "scenario", "level")
    me = request.membership.pk if request.membership else None
    if Perm.VIEW_COCKPIT not in request.site_perms:
        mine = AlarmRecipient.objects.filter(membership_id=me).values("alarm_id")
        alarms = alarms.filter(Q(pk__in=mine) | Q(triggered_by_id=me)) if me else alarms.none()
    return [a for a in alarms if not (a.scenario.silent and me and a.triggered_by_id == me)]


@require_GET
@login_required
def home(request):
    if request.site is None:
        return render(request, "web/no_site.html", status=403)
    context = {"active_alarms": visible_active_alarms(request), "site_zone": request.site.time_zone}
    if Perm.TRIGGER_ALARMS in request.site_perms:
        scenarios = triggerable_scenarios(request.user, request.site)
        context["quick_scenarios"] = [s for s in scenarios if s.quick]
        context["can_trigger"] = bool(scenarios)
    if Perm.VIEW_DIRECTORY in request.site_perms:
        context["people_count"] = Membership.objects.for_site(request.site).headcount()["active"]
        context["group_count"] = Group.objects.for_site(request.site).count()
    context.update(presence_views.home_context(request))
    return render(request, "web/home.html", context)


@require_POST
@login_required
def switch_site(request):
    site_id = request.POST.get("site", "")
    site = accessible_sites(request.user).filter(pk=site_id).first() if site_id.isdigit() else None
    if site is None:
        return HttpResponseBadRequest(_("You do not belong to that site."))
    request.session[SESSION_KEY] = site.pk
    # Another site is another context: a fresh session key, so nothing carries over.
    request.session.cycle_key()
    target = request.POST.get("next", "")
    if target.startswith("/") and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("web:home")


@require_POST
def set_language(request):
    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        return HttpResponseBadRequest(_("This language is not available."))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = "/"
    response = redirect(target)
    if request.user.is_authenticated:
        request.user.language = language
        request.user.save(update_fields=["language"])
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, max_age=365 * 24 * 3600,
                        secure=settings.LANGUAGE_COOKIE_SECURE, samesite="Lax", httponly=True)
    return response
