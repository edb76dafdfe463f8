"""Throttling of sign-in attempts: growing waits, never a lock-out.

An alarm system must never let an attacker lock out the operator who needs to
raise a fire alarm a minute later (ASVS 6.1.1). So there is no permanent lock:

* per (account, client address): the first ``free`` failures cost nothing, then each failure earns a
  wait that doubles (2 s, 4 s, 8 s …) up to a cap; a success resets it. The same account from another
  address is not affected, so an attacker elsewhere cannot block the operator.
* per client address across accounts: after more failures the address waits too (password spraying).
* per person in the second step (a code after a right password): waits grow whatever the address, and
  after ``SECOND_FACTOR_TRIES`` wrong codes the password is needed again — so nobody holding a password
  can guess codes by changing addresses.
* per device (OWASP's "device cookies"): a browser in which the person signed in before carries a signed
  cookie naming them. Their attempts there count against that device only, never against the address or
  the account, and its wait is capped at a minute: an attacker at the same address (a school's one public
  address) cannot hold back the operator on the phone they always use.
* IPv6 clients count per /64 network (one household or host has a whole one).
* failures fade: each kind of counter forgets one failure per ``decay`` since the last one, so a single
  wrong try long after a burst earns a short wait, not the longest one again.

An attempt is counted *before* the password is checked, under a row lock, and un-counted when it
succeeds: thirty simultaneous guesses cannot all be checked while the first ones are still being
counted. While a wait runs, attempts are refused without checking the password and without counting, so
waiting it out always works.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from rallypoint.accounts.models import SignInThrottle, normalize_email


@dataclass(frozen=True)
class Limit:
    free: int  # failures that cost nothing
    cap: timedelta  # the longest wait
    decay: timedelta  # one failure is forgotten per this much time since the last one


LIMITS = {
    "acct": Limit(free=3, cap=timedelta(minutes=5), decay=timedelta(minutes=10)),
    "addr": Limit(free=20, cap=timedelta(minutes=10), decay=timedelta(minutes=3)),
    "mfa": Limit(free=3, cap=timedelta(minutes=5), decay=timedelta(minutes=10)),
    "dev": Limit(free=5, cap=timedelta(minutes=1), decay=timedelta(minutes=5)),
}
FREE_FAILURES = LIMITS["acct"].free
MAX_WAIT = LIMITS["acct"].cap
ADDRESS_FREE_FAILURES = LIMITS["addr"].free
ADDRESS_MAX_WAIT = LIMITS["addr"].cap
DEVICE_MAX_WAIT = LIMITS["dev"].cap
SECOND_FACTOR_TRIES = 5
#: A counter untouched this long is deleted by the scheduler (it has faded by then in any case that matters).
FORGET_AFTER = timedelta(hours=6)
#: The device cookie: how long a browser stays known after its last sign-in.
DEVICE_COOKIE_DAYS = 365
_DEVICE_SALT = "rallypoint.accounts.device"


@dataclass(frozen=True)
class Keys:
    account: str | None  # None on a known device: its own key counts instead
    address: str | None
    person: str | None = None  # set in the second step only
    device: str | None = None  # the browser's device cookie, if it is one of this person's

    def all(self) -> list[str]:
        return [k for k in (self.account, self.address, self.person, self.device) if k]


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


def keys_for(email: str, ip: str | None, *, person_id: int | None = None, device: str | None = None) -> Keys:
    """``device``: the nonce of a device cookie already checked to belong to this person (see
    :func:`device_of`): then only that device's counter (and the person's, in the second step) applies."""
    person = _tag("mfa", str(person_id)) if person_id is not None else None
    if device:
        return Keys(account=None, address=None, person=person, device=_tag("dev", device))
    address = _client(ip)
    return Keys(account=_tag("acct", f"{normalize_email(email)}\0{address}"), address=_tag("addr", address),
                person=person)


def _limit(key: str, device: bool) -> Limit:
    limit = LIMITS[key.split(":", 1)[0]]
    if device and limit.cap > DEVICE_MAX_WAIT:  # on a known device nobody waits longer than a minute
        return Limit(limit.free, DEVICE_MAX_WAIT, limit.decay)
    return limit


def _faded(row: SignInThrottle, limit: Limit, now) -> int:
    """The row's failures after fading: one fewer per ``decay`` since the last failure."""
    elapsed = now - row.last_failure_at
    return max(0, row.failures - int(elapsed / limit.decay)) if elapsed > timedelta(0) else row.failures


def _wait_after(failures: int, limit: Limit) -> timedelta:
    if failures <= limit.free:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - limit.free, 20)), limit.cap)


def _seconds(delta: timedelta) -> int:
    seconds = delta.total_seconds()
    return max(0, int(seconds) + (seconds % 1 > 0))


def wait_seconds(keys: Keys, now=None) -> int:
    """Seconds until the next attempt is allowed (0: go ahead)."""
    now = now or timezone.now()
    rows = SignInThrottle.objects.filter(key__in=keys.all(), blocked_until__gt=now)
    return max([0, *(_seconds(row.blocked_until - now) for row in rows)])


def begin(keys: Keys, now=None) -> int:
    """Before checking a password or code: refuse (returns the wait in seconds, nothing counted) or count
    the attempt as a failure (returns 0) until :func:`succeeded` takes it back. The rows are locked while
    deciding, so simultaneous attempts are counted one after the other."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = []
        for key in keys.all():
            row, _created = SignInThrottle.objects.select_for_update().get_or_create(
                key=key, defaults={"last_failure_at": now, "failures": 0})
            rows.append(row)
        waits = [row.blocked_until - now for row in rows if row.blocked_until and row.blocked_until > now]
        if waits:
            return _seconds(max(waits))
        for row in rows:
            limit = _limit(row.key, keys.device is not None)
            row.failures = _faded(row, limit, now) + 1
            row.last_failure_at = now
            wait = _wait_after(row.failures, limit)
            row.blocked_until = now + wait if wait else None
            row.save()
    return 0


def take_back(keys: Keys, now=None, *, only=None) -> None:
    """The attempt counted by :func:`begin` was no failure (a right password before the second step): each
    counter (or those in ``only``) loses that one count again, and its wait if it no longer earns one."""
    now = now or timezone.now()
    wanted = [k for k in keys.all() if only is None or k in only]
    with transaction.atomic():
        for row in SignInThrottle.objects.select_for_update().filter(key__in=wanted):
            limit = _limit(row.key, keys.device is not None)
            row.failures = max(0, _faded(row, limit, now) - 1)
            if _wait_after(row.failures, limit) == timedelta(0):
                row.blocked_until = None
            row.save()


def succeeded(keys: Keys, now=None) -> None:
    """The sign-in is complete: the account's, person's and device's counters start over; the address keeps
    its other failures (this attempt is taken back)."""
    with transaction.atomic():
        SignInThrottle.objects.filter(key__in=[k for k in (keys.account, keys.person, keys.device) if k]).delete()
        if keys.address:
            take_back(keys, now, only=[keys.address])


def second_factor_failures(keys: Keys) -> int:
    row = SignInThrottle.objects.filter(key=keys.person).first() if keys.person else None
    return row.failures if row else 0


def purge_stale(now=None) -> int:
    cutoff = (now or timezone.now()) - FORGET_AFTER
    deleted, _ = SignInThrottle.objects.filter(last_failure_at__lt=cutoff).delete()
    return deleted


# Device cookies ------------------------------------------------------------------------------------

def device_cookie_name() -> str:
    return "__Host-rp_device" if settings.SESSION_COOKIE_SECURE else "rp_device"


def device_of(request, user) -> str | None:
    """The nonce of the request's device cookie if it was issued to ``user`` (and not forged), else None."""
    value = request.COOKIES.get(device_cookie_name(), "")
    if not value or user is None:
        return None
    try:
        data = signing.loads(value, salt=_DEVICE_SALT, max_age=timedelta(days=DEVICE_COOKIE_DAYS))
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != user.pk or not isinstance(data.get("n"), str):
        return None
    return data["n"]


def remember_device(response, user) -> None:
    """After a complete sign-in: this browser is one of the person's devices from now on."""
    value = signing.dumps({"u": user.pk, "n": secrets.token_urlsafe(16)}, salt=_DEVICE_SALT)
    response.set_cookie(device_cookie_name(), value, max_age=DEVICE_COOKIE_DAYS * 24 * 3600, path="/",
                        secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Lax")
