"""App tokens for the mobile/PWA client: issue, check, revoke."""

from __future__ import annotations

import copy
import hashlib
import logging
import secrets
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import Q
from django.utils import timezone

from rallypoint.accounts import mfa
from rallypoint.accounts.models import AppToken
from rallypoint.audit.actions import record_security_event
from rallypoint.audit.models import SecurityEvent
from rallypoint.tenants.roles import SUPER_ADMIN, permissions_for

log = logging.getLogger("rallypoint.apptokens")

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


def purge_unused(now=None) -> int:
    """Delete tokens revoked, or unused, longer than RP_APP_TOKEN_IDLE_DAYS ago (an unused one no longer
    works; a revoked one stays that long for the person's list of devices)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.APP_TOKEN_IDLE_DAYS)
    deleted, _ = AppToken.objects.filter(Q(revoked_at__lt=cutoff) | Q(last_used_at__lt=cutoff)).delete()
    return deleted


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
    memberships, super_orgs, policies = _access(row.user_id)
    membership_id, role = next(((pk, role) for pk, site_id, _org, role in memberships if site_id == row.site_id),
                               (None, None))
    if row.site.organization_id in super_orgs:
        role = SUPER_ADMIN  # as tenants.scoping.effective_role decides
    if role is None:
        return None  # no access left
    roles = [(org, r) for _pk, _site, org, r in memberships]
    if mfa.must_enroll_given(row.user, super_orgs, roles, policies) and not mfa.needs_second_step(row.user):
        return None  # a second factor is now required and missing
    if now - row.last_used_at > TOUCH_EVERY:
        _touch(row.pk)
    return row, role, membership_id


#: Table names as the models name them (tests/test_app_tokens.py checks that they still do).
_ACCESS = """
SELECT m.id, m.site_id, s.organization_id, m.role, sec.second_factor
  FROM tenants_membership m JOIN tenants_site s ON s.id = m.site_id
  LEFT JOIN accounts_organizationsecurity sec ON sec.organization_id = s.organization_id
 WHERE m.user_id = %s AND m.is_active
UNION ALL
SELECT NULL, NULL, a.organization_id, NULL, sec.second_factor
  FROM tenants_superadmin a LEFT JOIN accounts_organizationsecurity sec ON sec.organization_id = a.organization_id
 WHERE a.user_id = %s
"""


def _access(user_id: int) -> tuple[list[tuple], set[int], dict[int, str]]:
    """In one query: the person's active memberships (id, site, organisation, role), the organisations
    they are Super-admin of, and those organisations' second-factor policies (as far as they set one).
    Four ORM queries before; a token's first use in a burst of answers spent most of its time here."""
    memberships, super_orgs, policies = [], set(), {}
    with connection.cursor() as cursor:
        cursor.execute(_ACCESS, [user_id, user_id])
        for pk, site_id, org_id, role, policy in cursor.fetchall():
            if pk is None:
                super_orgs.add(org_id)
            else:
                memberships.append((pk, site_id, org_id, role))
            if policy is not None:
                policies[org_id] = policy
    return memberships, super_orgs, policies


#: Uses of tokens not written yet (token ids), and the timer that writes them.
_touched: set[int] = set()
_touch_timer: threading.Timer | None = None
#: A request that uses a token does not wait for the write of its ``last_used_at``: the uses of this long
#: are written together, in one statement, by a thread of their own. When thousands of phones answer at
#: once that was one write transaction per answer, each waiting its turn for SQLite's write lock. A use not
#: yet written when the process dies is lost: that token's idle time then counts from its previous use, at
#: most TOUCH_EVERY plus this earlier.
TOUCH_DELAY = 1.0


def _touch(pk: int) -> None:
    global _touch_timer
    if transaction.get_connection().in_atomic_block:
        AppToken.objects.filter(pk=pk).update(last_used_at=timezone.now())  # within the caller's transaction
        return
    with _checked_lock:
        _touched.add(pk)
        if _touch_timer is None:
            _touch_timer = threading.Timer(TOUCH_DELAY, _write_touches_and_close)
            _touch_timer.daemon = True
            _touch_timer.start()


def write_touches() -> int:
    """Write the pending uses of tokens (the timer's thread; a test may call it). Returns how many."""
    global _touch_timer
    with _checked_lock:
        due = sorted(_touched)
        _touched.clear()
        _touch_timer = None
    if not due:
        return 0
    try:
        return AppToken.objects.filter(pk__in=due).update(last_used_at=timezone.now())
    except DatabaseError:
        log.warning("the uses of app tokens could not be written", extra={"count": len(due)})
        return 0


def _write_touches_and_close() -> None:
    try:
        write_touches()
    finally:
        connections.close_all()  # the timer's thread ends here; its connection with it


def forget_checked() -> None:
    """Tokens are checked anew at their next use (after a revocation in this process)."""
    with _checked_lock:
        _checked.clear()
