"""Subject access (GDPR Art. 15 and 20): everything Rallypoint holds about a person, as JSON and as a page.

The registry of personal data (:mod:`rallypoint.people.personal_data`) says which models hold data about a
person and through which references; :func:`collect` follows each of them from the person's account and
memberships, so a new model with personal data is in the export as soon as it is declared. Each row gives
its plain fields (times, states, names, texts) and leaves out what would let someone act as the person or
read their other services — password and code hashes, second-factor secrets, session contents, tokens, push
keys, a messenger address's credentials — which are named as "withheld" instead (Art. 15(4)).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

from django.db import models
from django.utils import timezone

from rallypoint.accounts.models import User
from rallypoint.audit.models import AuditEntry
from rallypoint.people.models import Membership
from rallypoint.people.personal_data import declarations
from rallypoint.tenants.encryption import EncryptedTextField, KeyForgotten

#: Fields never handed out: they open the account or the person's other services, or are internal keys.
WITHHELD = frozenset({
    "password", "secret", "code_hash", "session_data", "session_key", "token_hash", "public_key", "credential_id",
    "p256dh", "auth", "endpoint", "endpoint_hash", "url", "row_key", "data_key", "link_nonce", "email_index", "key",
    "secret_hash", "hash", "prev_hash", "handle", "client_key", "idempotency_key",
})


def _value(value):
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat() if timezone.is_aware(value) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


def _row(obj) -> dict:
    out, withheld = {}, []
    for field in obj._meta.concrete_fields:
        if field.name in WITHHELD:
            withheld.append(field.name)
            continue
        if isinstance(field, models.ForeignKey):
            out[field.name] = getattr(obj, field.attname)
            continue
        try:
            value = getattr(obj, field.attname)
        except KeyForgotten:
            value = None
        if isinstance(field, EncryptedTextField) or not isinstance(value, bytes):
            out[field.name] = _value(value)
    if withheld:
        out["withheld"] = sorted(withheld)
    return out


def _targets(user: User | None, memberships: list[Membership]) -> dict[type, list]:
    return {Membership: memberships, User: [user] if user is not None else []}


def collect(*, user: User | None = None, memberships: list[Membership] | None = None) -> dict:
    """Everything about the person: their account (if any) and the given memberships (all of the account's by
    default). ``{"generated_at", "account", "memberships", "records": {table: [row, …]}}``."""
    if memberships is None:
        memberships = list(Membership.objects.filter(user=user)) if user is not None else []
    targets = _targets(user, memberships)
    records: dict[str, list] = {}
    for declared in declarations():
        model = declared.model
        if model in (User, Membership):
            continue
        seen: set = set()
        for ref in declared.person:
            field = model._meta.get_field(ref)
            for target in targets.get(field.related_model, []):
                for obj in model._base_manager.filter(**{ref: target}).order_by("pk"):
                    if obj.pk not in seen:
                        seen.add(obj.pk)
                        records.setdefault(model._meta.db_table, []).append(_row(obj))
    if memberships:  # what administrators changed about them, as the audit trail recorded it
        about = AuditEntry.objects.filter(object_type="person", object_id__in=[str(m.pk) for m in memberships])
        records["audit_auditentry_about_you"] = [_row(e) for e in about.order_by("pk")]
    return {
        "generated_at": timezone.now().isoformat(),
        "account": _row(user) if user is not None else None,
        "memberships": [_row(m) for m in memberships],
        "records": records,
    }


def as_json(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=str)


def readable(data: dict) -> list[dict]:
    """The export as sections for the page: a title (the model's name) and rows of (label, value)."""
    by_table = {m._meta.db_table: m for m in (d.model for d in declarations())}
    sections = []

    def section(title, model, rows):
        labels = {f.name: str(f.verbose_name) for f in model._meta.concrete_fields} if model else {}
        sections.append({"title": title, "rows": [[(labels.get(k, k), v) for k, v in row.items()] for row in rows]})

    if data["account"]:
        section(User._meta.verbose_name, User, [data["account"]])
    section(Membership._meta.verbose_name_plural, Membership, data["memberships"])
    for table, rows in data["records"].items():
        model = by_table.get(table) or (AuditEntry if table.startswith("audit_auditentry") else None)
        section(model._meta.verbose_name_plural if model else table, model, rows)
    return sections
