"""Pages of the wall-screen links (see ``displays.py``): making and revoking them, and the screen itself."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rallypoint.alarms import displays
from rallypoint.alarms.models import DisplayLink
from rallypoint.alarms.placing import place_text
from rallypoint.tenants.roles import Perm
from rallypoint.tenants.scoping import site_permission_required

#: How often the screen loads itself again (seconds).
REFRESH_SECONDS = 5


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_ALARMS)
def display_links(request):
    made = None
    if request.method == "POST":
        try:
            link, token = displays.create_link(actor=request.user, site=request.site,
                                               name=request.POST.get("name", ""))
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            made = {"link": link, "url": request.build_absolute_uri(reverse("alarms:display", args=[token]))}
    links = DisplayLink.objects.for_site(request.site).select_related("created_by")
    response = render(request, "alarms/display_links.html", {"links": links, "made": made,
                                                             "site_zone": request.site.time_zone})
    if made:
        response["Cache-Control"] = "no-store"  # the page holds the link's secret, shown this once
    return response


@require_POST
@site_permission_required(Perm.MANAGE_ALARMS)
def display_link_revoke(request, link_id: int):
    link = DisplayLink.objects.for_site(request.site).filter(pk=link_id).first()
    if link is None:
        raise Http404
    displays.revoke_link(actor=request.user, link=link)
    messages.success(request, _("The link “%(name)s” is revoked: its screen shows nothing any more.")
                     % {"name": link.name})
    return redirect("alarms:display_links")


@require_GET
def display(request, token: str):
    """The screen: no session, no sign-out after idle time; the secret in the path is the proof."""
    link = displays.link_for(token)
    if link is None:
        response = render(request, "alarms/display.html", {"gone": True}, status=404)
    else:
        panels = [{**panel, "place": place_text(panel["alarm"].building, panel["alarm"].floor, panel["alarm"].zone,
                                                "")} for panel in displays.screen(link.site)]
        response = render(request, "alarms/display.html", {"link": link, "panels": panels,
                                                           "refresh": REFRESH_SECONDS,
                                                           "site_zone": link.site.time_zone})
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    response._has_been_logged = True  # Django would log a 404 with its path, and the path holds the secret
    return response
