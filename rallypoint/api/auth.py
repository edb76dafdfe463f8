"""How API callers authenticate, shared by the API's routers."""

from __future__ import annotations

from ninja.security import HttpBearer

from rallypoint.accounts import apptokens


class AppTokenAuth(HttpBearer):
    """``Authorization: Bearer rp_…``: an app token acts in the site it was issued for."""

    def authenticate(self, request, token):
        return apptokens.authenticate(request, token)
