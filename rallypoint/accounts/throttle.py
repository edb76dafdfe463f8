"""Throttling of sign-in attempts: growing waits, never a lock-out.

An alarm system must never let an attacker lock out the operator who needs to
raise a fire alarm a minute later (ASVS 6.1.1). So there is no permanent lock:

* per (account, client address): the first ``FREE_FAILURES`` failures cost
  nothing, then each failure earns a wait that doubles (2 s, 4 s, 8 s …) up to
  ``MAX_WAIT``; a success resets it. The same account from another address is
  not affected, so an attacker elsewhere cannot block the operator.
* per client address across accounts: after ``ADDRESS_FREE_FAILURES`` failures
  the address waits too (password spraying), up to ``ADDRESS_MAX_WAIT``.
* counters forget failures older than ``FORGET_AFTER``.
While a wait runs, attempts are refused without checking the password and
without counting, so waiting it out always works.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from rallypoint.accounts.models import SignInThrottle, normalize_email

FREE_FAILURES = 3
MAX_WAIT = timedelta(minutes=5)
ADDRESS_FREE_FAILURES = 20
ADDRESS_MAX_WAIT = timedelta(minutes=10)
FORGET_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class Keys:
    account: str
    address: str


def keys_for(email: str, ip: str | None) -> Keys:
    secret = hashlib.sha256(b"rallypoint-throttle:" + settings.SECRET_KEY.encode()).digest()

    def tag(kind: str, value: str) -> str:
        return f"{kind}:" + hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()[:64]

    address = ip or "unknown"
    return Keys(account=tag("acct", f"{normalize_email(email)}\0{address}"), address=tag("addr", address))


def wait_seconds(keys: Keys, now=None) -> int:
    """Seconds until the next attempt is allowed (0: go ahead)."""
    now = now or timezone.now()
    rows = SignInThrottle.objects.filter(key__in=[keys.account, keys.address], blocked_until__gt=now)
    waits = [(row.blocked_until - now).total_seconds() for row in rows]
    return max([0, *(int(w) + (w % 1 > 0) for w in waits)])


def _wait_after(failures: int, free: int, cap: timedelta) -> timedelta:
    if failures <= free:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - free, 20)), cap)


def register_failure(keys: Keys, now=None) -> int:
    """Count a failed attempt; returns the wait (seconds) it earned."""
    now = now or timezone.now()
    wait = timedelta(0)
    with transaction.atomic():
        for key, free, cap in ((keys.account, FREE_FAILURES, MAX_WAIT),
                               (keys.address, ADDRESS_FREE_FAILURES, ADDRESS_MAX_WAIT)):
            row, _ = SignInThrottle.objects.select_for_update().get_or_create(key=key, defaults={
                "last_failure_at": now})
            if now - row.last_failure_at > FORGET_AFTER:
                row.failures = 0
            row.failures += 1
            row.last_failure_at = now
            this_wait = _wait_after(row.failures, free, cap)
            row.blocked_until = now + this_wait if this_wait else None
            row.save()
            wait = max(wait, this_wait)
    return int(wait.total_seconds())


def register_success(keys: Keys) -> None:
    SignInThrottle.objects.filter(key=keys.account).delete()


def purge_stale(now=None) -> int:
    cutoff = (now or timezone.now()) - max(FORGET_AFTER, ADDRESS_MAX_WAIT)
    deleted, _ = SignInThrottle.objects.filter(last_failure_at__lt=cutoff).delete()
    return deleted
