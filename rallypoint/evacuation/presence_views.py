"""Presence pages: "I'm here / I'm leaving" in the app, the check-in by an entrance's QR code, and the visitor
list at reception. Outside an alarm nobody sees who is where: the home page shows counts only
(docs/privacy.md); names and places appear on the evacuation pages during an alarm.
"""

from __future__ import annotations

import io

import segno
from django.contrib import messages
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rallypoint.accounts import pow
from rallypoint.evacuation import presence
from rallypoint.evacuation.models import Building, Presence, Source
from rallypoint.people.models import NOT_SUPPORT, Membership
from rallypoint.tenants.models import Site
from rallypoint.tenants.roles import Perm
from rallypoint.tenants.scoping import site_permission_required

ENTRANCE_SALT = "rallypoint.evacuation.entrance"
VISIT_SALT = "rallypoint.evacuation.visit"


def home_context(request) -> dict:
    """For the home page: am I on site, and (for those who may know) how many are."""
    context = {}
    if request.membership is not None:
        context["present"] = presence.is_present(request.membership)
    if Perm.VIEW_PRESENCE in request.site_perms:
        context["on_site_count"] = (Presence.objects.for_site(request.site).current()
                                    .values("membership_id").distinct().count())
    return context


@require_POST
@site_permission_required(Perm.VIEW_SITE)
def here(request):
    """I'm here / I'm leaving (``action``)."""
    if request.membership is None:
        raise Http404
    if request.POST.get("action") == "leave":
        presence.leave(membership=request.membership)
        messages.success(request, _("You are signed out of the site. Take care."))
    else:
        presence.arrive(membership=request.membership, source=Source.APP)
        messages.success(request, _("You are signed in on site until you leave, at the latest until midnight."))
    return redirect("web:home")


# An entrance's QR code ---------------------------------------------------------------------------------

def _qr_svg(url: str, title: str | None = None) -> str:
    """A poster's QR code as inline SVG markup."""
    svg = io.BytesIO()
    segno.make(url, error="m").save(svg, kind="svg", scale=8, border=2, xmldecl=False, svgns=True, title=title)
    return svg.getvalue().decode()


def _signed(token: str, salt: str) -> dict:
    """What a poster's signed token carries; 404 for one that was not made here."""
    try:
        data = signing.loads(token, salt=salt)
    except signing.BadSignature:
        raise Http404 from None
    if not isinstance(data, dict):
        raise Http404
    return data


def entrance_token(building: Building) -> str:
    """What the entrance's QR code carries: the site and the building, signed, so that it cannot be made for
    another site or building."""
    return signing.dumps({"s": building.site_id, "b": building.pk}, salt=ENTRANCE_SALT, compress=True)


def _entrance(request, token: str) -> tuple[Building, Membership]:
    data = _signed(token, ENTRANCE_SALT)
    if data.get("s") != request.site.pk:
        raise Http404  # another site's poster: switch to that site first (or it is not yours)
    building = Building.objects.for_site(request.site).filter(pk=data.get("b")).first()
    if building is None or request.membership is None:
        raise Http404
    return building, request.membership


@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.VIEW_SITE)
def entrance(request, token: str):
    """The page a person's phone opens from the QR code at an entrance; one tap checks them in (a GET changes
    nothing)."""
    building, membership = _entrance(request, token)
    if request.method == "POST":
        presence.arrive(membership=membership, source=Source.QR, building=building)
        messages.success(request, _("You are signed in at %(building)s until you leave, at the latest until "
                                    "midnight.") % {"building": building.name})
        return redirect("web:home")
    return render(request, "evacuation/entrance.html", {"building": building})


@require_GET
@site_permission_required(Perm.MANAGE_STRUCTURE)
def entrance_poster(request, building_id: int):
    """A printable poster with the QR code for a building's entrances."""
    building = Building.objects.for_site(request.site).filter(pk=building_id).first()
    if building is None:
        raise Http404
    url = request.build_absolute_uri(reverse("evacuation:entrance", args=[entrance_token(building)]))
    return render(request, "evacuation/entrance_poster.html", {
        "building": building, "url": url, "qr": _qr_svg(url, title=building.name)})


# Visitors at reception ----------------------------------------------------------------------------------

@require_http_methods(["GET", "POST"])
@site_permission_required(Perm.MANAGE_VISITORS)
def visitors(request):
    """Today's visitors: register one (name, company, host), sign one out."""
    site = request.site
    if request.method == "POST":
        if request.POST.get("sign_out", "").isdigit():
            visitor = Membership.objects.for_site(site).filter(kind=Membership.Kind.VISITOR,
                                                               pk=request.POST["sign_out"]).first()
            if visitor is None:
                raise Http404
            presence.leave(membership=visitor)
            messages.success(request, _("Visitor signed out."))
            return redirect("evacuation:visitors")
        host_id = request.POST.get("host", "")
        host = (Membership.objects.for_site(site).active().filter(pk=host_id).first() if host_id.isdigit()
                else None)
        try:
            presence.register_visitor(site=site, full_name=request.POST.get("full_name", ""),
                                      company=request.POST.get("company", ""), host=host, actor=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Visitor registered until the end of the day."))
        return redirect("evacuation:visitors")
    now = timezone.now()
    present = set(Presence.objects.for_site(site).current(now).values_list("membership_id", flat=True))
    today = (Membership.objects.for_site(site).filter(kind=Membership.Kind.VISITOR, expires_at__gt=now)
             .select_related("host").order_by("created_at"))
    rows = [{"visitor": v, "present": v.pk in present} for v in today]
    hosts = (Membership.objects.for_site(site).active().filter(kind=Membership.Kind.MEMBER).filter(NOT_SUPPORT)
             .by_name())
    return render(request, "evacuation/visitors.html", {"rows": rows, "hosts": hosts})


# Visitors register themselves (a QR code on a poster at reception) -------------------------------------

def visit_token(site) -> str:
    return signing.dumps({"s": site.pk}, salt=VISIT_SALT, compress=True)


def _visit_site(token: str) -> Site:
    site = Site.objects.filter(pk=_signed(token, VISIT_SALT).get("s")).first()
    if site is None:
        raise Http404
    return site


def _host_named(site: Site, name: str) -> Membership | None:
    """The one active person of the site with exactly this name (names are encrypted: compared here)."""
    wanted = " ".join(name.split()).casefold()
    if not wanted:
        return None
    found = [m for m in Membership.objects.for_site(site).active().filter(kind=Membership.Kind.MEMBER)
             .filter(NOT_SUPPORT) if " ".join(m.full_name.split()).casefold() == wanted]
    return found[0] if len(found) == 1 else None


@require_http_methods(["GET", "POST"])
def visit(request, token: str):
    """The short form a visitor's phone opens from the poster: name, company, whom they visit. No account;
    a bot check (proof of work) instead. The visitor is on site until midnight."""
    site = _visit_site(token)
    context = {"site": site, "pow_challenge": pow.new_challenge()}
    if request.method == "POST":
        if not pow.verify(request.POST.get(pow.FIELD, "")):
            return render(request, "evacuation/visit.html", {**context, "pow_failed": True}, status=400)
        try:
            presence.register_visitor(site=site, full_name=request.POST.get("full_name", ""),
                                      company=request.POST.get("company", ""),
                                      host=_host_named(site, request.POST.get("host", "")))
        except ValidationError as exc:
            return render(request, "evacuation/visit.html", {**context, "errors": exc.messages}, status=400)
        return render(request, "evacuation/visit.html", {**context, "done": True})
    return render(request, "evacuation/visit.html", context)


@require_GET
@site_permission_required(Perm.MANAGE_VISITORS)
def visit_poster(request):
    url = request.build_absolute_uri(reverse("evacuation:visit", args=[visit_token(request.site)]))
    return render(request, "evacuation/visit_poster.html", {"url": url, "qr": _qr_svg(url)})
