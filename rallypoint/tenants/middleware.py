from __future__ import annotations

from rallypoint.people.models import Membership
from rallypoint.tenants.roles import permissions_for
from rallypoint.tenants.scoping import accessible_sites, effective_role

SESSION_KEY = "rp_site_id"
PRIVILEGE_KEY = "rp_privilege"


def _rotate_on_privilege_change(request) -> None:
    """A new role (granted or revoked) gets a new session key, so an old key is worth less."""
    privilege = f"{request.site.pk}:{request.site_role}"
    previous = request.session.get(PRIVILEGE_KEY)
    if previous != privilege:
        if previous is not None:
            request.session.cycle_key()
        request.session[PRIVILEGE_KEY] = privilege


class CurrentSiteMiddleware:
    """Resolve the site the signed-in user works in now, their role there and its permissions.

    The choice is kept in the session and re-checked on every request, so a
    revoked membership takes effect immediately.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.site = None
        request.site_role = None
        request.site_perms = frozenset()
        request.membership = None
        user = request.user
        if user.is_authenticated:
            sites = accessible_sites(user)
            wanted = request.session.get(SESSION_KEY)
            site = sites.filter(pk=wanted).first() if wanted else None
            if site is None:
                site = sites.first()
                if site is not None:
                    request.session[SESSION_KEY] = site.pk
                else:
                    request.session.pop(SESSION_KEY, None)
            if site is not None:
                request.site = site
                request.site_role = effective_role(user, site)
                request.site_perms = permissions_for(request.site_role)
                request.membership = Membership.objects.filter(site=site, user=user).first()
                _rotate_on_privilege_change(request)
        return self.get_response(request)
