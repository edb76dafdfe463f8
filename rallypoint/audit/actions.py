"""Writing and purging the audit trail.

Every action that changes structure or personal data calls :func:`record`
inside its transaction, so the change and its audit entry land together or
not at all. Entries are written here only: each is linked into its site's (or
organisation's) hash chain as it is written (``audit/chain.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Max
from django.utils import timezone

from rallypoint.audit import chain
from rallypoint.audit.models import AuditEntry, SecurityEvent
from rallypoint.lib.net import client_ip
from rallypoint.people.models import Membership
from rallypoint.tenants.models import Organization, SuperAdmin

#: Field names whose values are personal data: stored as fingerprints only.
PERSONAL_FIELDS = frozenset({"email", "full_name", "phone", "department"})


def fingerprint(value: object) -> str:
    """A keyed, non-reversible tag: shows that a value changed without storing it."""
    key = hashlib.sha256(b"rallypoint-audit:" + settings.SECRET_KEY.encode()).digest()
    digest = hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()
    return f"#{digest[:10]}"


def _shown(field: str, value: object) -> object:
    if value in (None, ""):
        return value
    if field in PERSONAL_FIELDS:
        return fingerprint(value)
    if isinstance(value, list | tuple | set | frozenset):
        return sorted(str(v) for v in value)
    return value if isinstance(value, int | float | bool) else str(value)


def diff(old: Mapping[str, object], new: Mapping[str, object]) -> dict[str, list]:
    """Field-level ``{field: [old, new]}`` for the fields whose value changed."""
    changes = {}
    for field in sorted(set(old) | set(new)):
        before, after = old.get(field), new.get(field)
        if isinstance(before, list | set | tuple) and isinstance(after, list | set | tuple):
            if sorted(map(str, before)) == sorted(map(str, after)):
                continue
        elif before == after:
            continue
        changes[field] = [_shown(field, before), _shown(field, after)]
    return changes


def record(*, actor, organization, site, action: str, object_type: str, object_id: object,
           changes: Mapping[str, list] | None = None, batch: uuid.UUID | None = None) -> AuditEntry:
    [entry] = record_many([AuditEntry(
        organization=organization,
        site=site,
        actor=actor if actor is not None and actor.pk else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        changes=dict(changes or {}),
        batch=batch,
    )])
    return entry


def record_many(entries: list[AuditEntry]) -> list[AuditEntry]:
    """Write several prepared, unsaved entries at once (a group of status reports marks many people).

    The entries are linked into their chains in the order given; each chain's head is locked until the
    surrounding transaction ends, so the chain never forks.
    """
    if not entries:
        return []
    with transaction.atomic(savepoint=False):  # an entry that fails fails its change: no savepoint needed
        chain.link(entries)
        return AuditEntry.objects.bulk_create(entries)


def purge_expired(now=None) -> int:
    """Delete audit entries older than the retention period (seed: 3 months).

    A chain is cut, never holed: an expired entry goes with every entry before it in its chain (entries
    are numbered as written, and a few carry a slightly earlier time), and the newest deleted entry stays
    in the chain's head as the anchor that verification starts from.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    expired = (AuditEntry.objects.filter(at__lt=cutoff).order_by().values("organization_id", "site_id")
               .annotate(last=Max("seq")))
    return sum(chain.cut(row["organization_id"], row["site_id"], row["last"]) for row in list(expired))


def request_ip(request) -> str | None:
    """The client's address; ``X-Forwarded-For`` counts only from RP_TRUSTED_PROXIES."""
    meta = request.META
    return client_ip(meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR"), settings.TRUSTED_PROXIES)


def home_organization(user) -> Organization | None:
    """The organisation that first gave this person access.

    Events before a site is chosen (sign-ins, password links) go there only: anyone can add an
    e-mail address to their own site, and that must not let them watch the person's sign-ins.
    """
    first_membership = (Membership.objects.filter(user=user).select_related("site__organization")
                        .order_by("created_at", "pk").first())
    first_super = SuperAdmin.objects.filter(user=user).select_related("organization").order_by(
        "created_at", "pk").first()
    candidates = [(m.created_at, m.site.organization) for m in [first_membership] if m]
    candidates += [(s.created_at, s.organization) for s in [first_super] if s]
    return min(candidates, key=lambda c: c[0])[1] if candidates else None


def record_security_event(kind: str, *, request=None, user=None, site=None, organization=None, actor=None,
                          detail: Mapping[str, object] | None = None) -> int:
    """Record a security event; returns how many rows were written.

    In a site (or an organisation): one row for it. Otherwise one row for the person's home
    organisation (:func:`home_organization`), or one installation-level row when nobody is known
    (a failed sign-in for an unused address).
    """
    common = {"kind": kind, "user": user if user is not None and user.pk else None,
              "actor": actor if actor is not None and actor.pk else None,
              "client_ip": request_ip(request) if request is not None else None, "detail": dict(detail or {})}
    if site is not None:
        rows = [SecurityEvent(organization_id=site.organization_id, site=site, **common)]
    elif organization is not None:
        rows = [SecurityEvent(organization=organization, **common)]
    elif common["user"] is not None:
        rows = [SecurityEvent(organization=home_organization(user), **common)]
    else:
        rows = [SecurityEvent(**common)]
    SecurityEvent.objects.bulk_create(rows)
    return len(rows)


def security_events_for_site(site):
    """The events an administrator of ``site`` may see: the site's own, and those of its people."""
    members = site.memberships.values("user_id")
    return SecurityEvent.objects.filter(
        models.Q(site=site) | models.Q(site__isnull=True, organization_id=site.organization_id, user_id__in=members))


def purge_expired_security_events(now=None) -> int:
    cutoff = (now or timezone.now()) - timedelta(days=settings.SECURITY_EVENT_RETENTION_DAYS)
    deleted, _ = SecurityEvent.objects.filter(at__lt=cutoff).delete()
    return deleted
