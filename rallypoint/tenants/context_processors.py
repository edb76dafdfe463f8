from __future__ import annotations

from rallypoint.tenants.roles import role_label
from rallypoint.tenants.scoping import accessible_sites


def current_site(request) -> dict:
    site = getattr(request, "site", None)
    if site is None:
        return {"current_site": None, "perms": set()}
    return {
        "current_site": site,
        "current_role_label": role_label(request.site_role),
        "my_name": request.membership.full_name if request.membership else "",
        "perms": {p.value for p in request.site_perms},
        "switchable_sites": accessible_sites(request.user),
    }
