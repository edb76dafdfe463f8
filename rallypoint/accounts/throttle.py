"""Throttling of sign-in attempts: growing waits, never a lock-out.

An alarm system must never let an attacker lock out the operator who needs to
raise a fire alarm a minute later (ASVS 6.1.1). So there is no permanent lock:

* per (account, client address): the first ``FREE_FAILURES`` failures cost
  nothing, then each failure earns a wait that doubles (2 s, 4 s, 8 s …) up to
  ``MAX_WAIT``; a success resets it. The same account from another address is
  not affected, so an attacker elsewhere cannot block the operator.
* per client address across accounts: after ``ADDRESS_FREE_FAILURES`` failures
  the address waits too (password spraying), up to ``ADDRESS_MAX_WAIT``.
* per person in the second step (a code after a right password): waits grow
  whatever the address, and after ``SECOND_FACTOR_TRIES`` wrong codes the
  password is needed again — so nobody holding a password can guess codes by
  changing addresses.
* IPv6 clients count per /64 network (one household or host has a whole one).
* counters forget failures older than ``FORGET_AFTER``.
While a wait runs, attempts are refused without checking the password and
without counting, so waiting it out always works.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
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
SECOND_FACTOR_FREE = 3
SECOND_FACTOR_TRIES = 5


@dataclass(frozen=True)
class Keys:
    account: str
    address: str
    person: str | None = None  # set in the second step only

    def all(self) -> list[str]:
        return [k for k in (self.account, self.address, self.person) if k]


def _tag(kind: str, value: str) -> str:
    secret = hashlib.sha256(b"rallypoint-throttle:" + settings.SECRET_KEY.encode()).digest()
    return f"{kind}:" + hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()[:64]


def _client(ip: str | None) -> str:
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def keys_for(email: str, ip: str | None, *, person_id: int | None = None) -> Keys:
    address = _client(ip)
    return Keys(account=_tag("acct", f"{normalize_email(email)}\0{address}"), address=_tag("addr", address),
                person=_tag("mfa", str(person_id)) if person_id is not None else None)


def wait_seconds(keys: Keys, now=None) -> int:
    """Seconds until the next attempt is allowed (0: go ahead)."""
    now = now or timezone.now()
    rows = SignInThrottle.objects.filter(key__in=keys.all(), blocked_until__gt=now)
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
        limits = [(keys.account, FREE_FAILURES, MAX_WAIT), (keys.address, ADDRESS_FREE_FAILURES, ADDRESS_MAX_WAIT)]
        if keys.person:
            limits.append((keys.person, SECOND_FACTOR_FREE, MAX_WAIT))
        for key, free, cap in limits:
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
    SignInThrottle.objects.filter(key__in=[k for k in (keys.account, keys.person) if k]).delete()


def second_factor_failures(keys: Keys) -> int:
    row = SignInThrottle.objects.filter(key=keys.person).first() if keys.person else None
    return row.failures if row else 0


def purge_stale(now=None) -> int:
    cutoff = (now or timezone.now()) - max(FORGET_AFTER, ADDRESS_MAX_WAIT)
    deleted, _ = SignInThrottle.objects.filter(last_failure_at__lt=cutoff).delete()
    return deleted
