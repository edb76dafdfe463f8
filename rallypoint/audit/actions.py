"""Writing and purging the audit trail.

Every action that changes structure or personal data calls :func:`record`
inside its transaction, so the change and its audit entry land together or
not at all.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable, Mapping
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from rallypoint.audit.models import AuditEntry

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
    return AuditEntry.objects.create(
        organization=organization,
        site=site,
        actor=actor if actor is not None and actor.pk else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        changes=dict(changes or {}),
        batch=batch,
    )


def record_many(entries: Iterable[dict]) -> None:
    AuditEntry.objects.bulk_create(AuditEntry(**entry) for entry in entries)


def purge_expired(now=None) -> int:
    """Delete audit entries older than the retention period (seed: 3 months)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    deleted, _ = AuditEntry.objects.filter(at__lt=cutoff).delete()
    return deleted
