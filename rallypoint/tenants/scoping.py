"""Tenant scoping in one place.

Views, API endpoints and actions reach tenant data only through these helpers.
A foreign object is indistinguishable from a missing one: both raise ``Http404``.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.shortcuts import render

from rallypoint.people.models import Group, Membership
from rallypoint.tenants.models import Site, SuperAdmin
from rallypoint.tenants.roles import SUPER_ADMIN, Perm, permissions_for


def accessible_sites(user):
    """Sites the user may work in: active memberships, plus every site of orgs they super-admin."""
    if not user.is_authenticated or not user.is_active:
        return Site.objects.none()
    return (
        Site.objects.filter(
            Q(memberships__user=user, memberships__is_active=True)
            | Q(organization__super_admins__user=user)
        )
        .distinct()
        .select_related("organization")
    )


def effective_role(user, site: Site) -> str | None:
    if not user.is_authenticated or not user.is_active:
        return None
    if SuperAdmin.objects.filter(organization_id=site.organization_id, user=user).exists():
        return SUPER_ADMIN
    membership = Membership.objects.filter(site=site, user=user, is_active=True).only("role").first()
    return membership.role if membership else None


def has_perm(user, site: Site | None, perm: Perm) -> bool:
    if site is None:
        return False
    return perm in permissions_for(effective_role(user, site))


def require_perm(user, site: Site | None, perm: Perm) -> None:
    """Raise PermissionDenied unless ``user`` holds ``perm`` at ``site``. ``user=None`` is the system."""
    if user is None:
        return
    if not has_perm(user, site, perm):
        raise PermissionDenied


def request_perms(request) -> frozenset[Perm]:
    return getattr(request, "site_perms", frozenset())


def check_request(request, perm: Perm) -> None:
    if perm not in request_perms(request):
        raise PermissionDenied


def get_membership_for_request(request, membership_id: int) -> Membership:
    try:
        return Membership.objects.for_site(request.site).select_related("user").get(pk=membership_id)
    except Membership.DoesNotExist:
        raise Http404 from None


def get_group_for_request(request, group_id: int) -> Group:
    try:
        return Group.objects.for_site(request.site).get(pk=group_id)
    except Group.DoesNotExist:
        raise Http404 from None


def manageable_sites(request):
    """Sites the request's user may manage from where they work now.

    A Super-admin manages every site of the current site's organisation; an
    Administrator only the current site.
    """
    if request.site is None:
        return Site.objects.none()
    if request.site_role == SUPER_ADMIN:
        return Site.objects.filter(organization_id=request.site.organization_id)
    if Perm.MANAGE_SITE in request_perms(request):
        return Site.objects.filter(pk=request.site.pk)
    return Site.objects.none()


def get_site_for_request(request, site_id: int) -> Site:
    try:
        return manageable_sites(request).get(pk=site_id)
    except Site.DoesNotExist:
        raise Http404 from None



def site_permission_required(perm: Perm):
    """View decorator: signed in, working in a site, and holding ``perm`` there."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.site is None:
                return render(request, "web/no_site.html", status=403)
            check_request(request, perm)
            return view(request, *args, **kwargs)

        return login_required(wrapper)

    return decorator
