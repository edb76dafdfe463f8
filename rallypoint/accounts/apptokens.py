"""App tokens for the mobile/PWA client: issue, check, revoke."""

from __future__ import annotations

import copy
import hashlib
import secrets
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from rallypoint.accounts import mfa
from rallypoint.accounts.models import AppToken
from rallypoint.audit.actions import record_security_event
from rallypoint.audit.models import SecurityEvent
from rallypoint.people.models import Membership
from rallypoint.tenants.models import SuperAdmin
from rallypoint.tenants.roles import SUPER_ADMIN, permissions_for

PREFIX = "rp_"
TOUCH_EVERY = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(*, user, site, name: str, request=None) -> tuple[AppToken, str]:
    """A new token for ``user`` in ``site``; the clear value is returned once and never stored."""
    token = PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        row = AppToken.objects.create(user=user, site=site, name=name.strip()[:80], token_hash=_digest(token))
        record_security_event(SecurityEvent.Kind.TOKEN_ISSUED, request=request, user=user, site=site,
                              detail={"token": row.pk})
    return row, token


def live_tokens(user):
    cutoff = timezone.now() - timedelta(days=settings.APP_TOKEN_IDLE_DAYS)
    return AppToken.objects.filter(user=user, revoked_at__isnull=True, last_used_at__gt=cutoff)


def revoke(tokens, *, actor, request=None) -> int:
    """Revoke the given tokens (a queryset); returns how many were live."""
    now = timezone.now()
    count = 0
    for row in tokens.filter(revoked_at__isnull=True).select_related("site"):
        row.revoked_at = now
        row.save(update_fields=["revoked_at"])
        forget_checked()  # this process checks every token anew (harmless should the revocation roll back)
        record_security_event(SecurityEvent.Kind.TOKEN_REVOKED, request=request, user=row.user, site=row.site,
                              actor=actor, detail={"token": row.pk})
        count += 1
    return count


#: How long a checked token's verdict is reused by this process. A phone answering an alarm or reporting
#: "safe" sends several requests within seconds; checking the token (its row, the person's role, the second-
#: factor rule of every organisation they belong to) was most of such a request's time. A revocation, a
#: deactivation or a role change reaches a token within this time (at once in the process that made it), as
#: it reaches a socket at the stream's next re-check.
CHECK_SECONDS = 2.0
_checked: dict[str, tuple[float, AppToken, str, int | None]] = {}
_checked_lock = threading.Lock()


def authenticate(request, token: str) -> AppToken | None:
    """Resolve a bearer token into user, site, role and permissions on ``request``; None if it is no good."""
    if not token.startswith(PREFIX):
        return None
    digest, clock = _digest(token), time.time()
    known = _checked.get(digest)
    if known is not None and clock - known[0] < CHECK_SECONDS:
        _, row, role, membership_id = known
        row = copy.copy(row)  # each request its own instances: nothing of one request leaks into another
        row.user, row.site = copy.copy(known[1].user), known[1].site
    else:
        checked = _check(digest)
        if checked is None:
            _checked.pop(digest, None)
            return None
        row, role, membership_id = checked
        with _checked_lock:
            if len(_checked) > 10_000:
                _checked.clear()
            _checked[digest] = (clock, row, role, membership_id)
        row = copy.copy(row)
        row.user = copy.copy(row.user)
    request.user, request.site, request.site_role = row.user, row.site, role
    request.site_perms = permissions_for(role)
    request.membership_id = membership_id
    return row


def _check(digest: str) -> tuple[AppToken, str, int | None] | None:
    now = timezone.now()
    row = (AppToken.objects.select_related("user", "site__organization")
           .filter(token_hash=digest, revoked_at__isnull=True).first())
    if row is None or now - row.last_used_at > timedelta(days=settings.APP_TOKEN_IDLE_DAYS):
        return None
    if not row.user.is_active:
        return None
    membership_id, role = Membership.objects.filter(site=row.site, user=row.user, is_active=True).values_list(
        "pk", "role").first() or (None, None)
    if SuperAdmin.objects.filter(organization_id=row.site.organization_id, user=row.user).exists():
        role = SUPER_ADMIN  # as tenants.scoping.effective_role decides
    if role is None or (mfa.must_enroll(row.user) and not mfa.needs_second_step(row.user)):
        return None  # no access left, or a second factor is now required and missing
    if now - row.last_used_at > TOUCH_EVERY:
        AppToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row, role, membership_id


def forget_checked() -> None:
    """Tokens are checked anew at their next use (after a revocation in this process)."""
    with _checked_lock:
        _checked.clear()
