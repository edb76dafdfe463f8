"""Creating, rotating, scoping, revoking and checking the site's API keys.

A key reads ``rpk_<prefix>_<secret>``. The prefix (8 hex characters, unique) names the key
in lists and logs; only a SHA-256 hash of the whole key is stored, so the clear key exists
only in the answer that creates or rotates it. Every change is an audit entry; a use
that changes something (a trigger, an update) is one too (``api_key.used``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from rallypoint.alarms.actions import membership_of
from rallypoint.alarms.models import Scenario
from rallypoint.audit import approvals
from rallypoint.audit.actions import record
from rallypoint.integrations.models import ApiKey
from rallypoint.tenants.models import Site
from rallypoint.tenants.roles import Perm
from rallypoint.tenants.scoping import require_perm

KEY_PREFIX = "rpk_"
PREFIX_HEX = 8
#: An upper bound for a presented key, so a huge header costs nothing to reject.
MAX_KEY_LENGTH = 200


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _new_secret(prefix: str) -> tuple[str, str]:
    """``(clear key, its hash)`` for the given public prefix (``rpk_xxxxxxxx``)."""
    raw = f"{prefix}_{secrets.token_urlsafe(32)}"
    return raw, _digest(raw)


def _checked_scenarios(site: Site, scenarios, reports_presence: bool = False) -> list[Scenario]:
    scenarios = list(scenarios)
    if any(s.site_id != site.pk for s in scenarios):
        raise PermissionDenied
    if not scenarios and not reports_presence:
        raise ValidationError({"scenarios": _("Choose at least one scenario the key may trigger, or let it report "
                                              "who is on site.")})
    return scenarios


def _checked_name(site: Site, name: str, key: ApiKey | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Name the key, e.g. after the system that uses it.")})
    if len(name) > 120:
        raise ValidationError({"name": _("The name may have at most 120 characters.")})
    clash = ApiKey.objects.for_site(site).filter(name=name, revoked_at__isnull=True)
    if key is not None:
        clash = clash.exclude(pk=key.pk)
    if clash.exists():
        raise ValidationError({"name": _("A key with this name already exists.")})
    return name


def _scope_names(scenarios) -> list[str]:
    return sorted(s.name for s in scenarios)


def create_api_key(*, actor, site: Site, name: str, scenarios, reports_presence: bool = False) -> tuple[ApiKey, str]:
    """A new key for ``site`` that may trigger ``scenarios`` (and report presence); the clear key is returned
    only here."""
    require_perm(actor, site, Perm.MANAGE_API_KEYS)
    name = _checked_name(site, name)
    scenarios = _checked_scenarios(site, scenarios, reports_presence)
    creator = membership_of(actor, site)
    # A key that may raise alarms waits for a second administrator (four-eyes); it is shown once all the same.
    asks = bool(scenarios) and actor is not None and approvals.required(site.organization,
                                                                         approvals.Process.CREATE_TRIGGER_KEY)
    for _attempt in range(5):
        prefix = KEY_PREFIX + secrets.token_hex(PREFIX_HEX // 2)
        raw, digest = _new_secret(prefix)
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(site=site, name=name, prefix=prefix, secret_hash=digest,
                                            created_by=creator, reports_presence=reports_presence,
                                            approved=not asks)
                key.scenarios.set(scenarios)
                record(actor=actor, organization=site.organization, site=site, action="api_key.created",
                       object_type="api_key", object_id=key.pk,
                       changes={"name": [None, name], "prefix": [None, prefix],
                                "scenarios": [None, _scope_names(scenarios)],
                                "reports_presence": [None, reports_presence]})
                if asks:
                    key.pending_approval = approvals.request(
                        process=approvals.Process.CREATE_TRIGGER_KEY, actor=actor, organization=site.organization,
                        site=site, subject={"key": key.pk, "name": name})
        except IntegrityError:
            continue  # the prefix is taken (one in four billion): draw another
        return key, raw
    raise RuntimeError("could not draw an unused API key prefix")


def _locked_active(key: ApiKey) -> ApiKey:
    key = ApiKey.objects.select_for_update().select_related("site__organization").get(pk=key.pk)
    if not key.is_active:
        raise ValidationError(_("This key has been revoked."))
    return key


def rotate_api_key(*, actor, key: ApiKey) -> tuple[ApiKey, str]:
    """A new secret for the key (same prefix and scopes); the old secret stops working at once."""
    require_perm(actor, key.site, Perm.MANAGE_API_KEYS)
    with transaction.atomic():
        key = _locked_active(key)
        raw, key.secret_hash = _new_secret(key.prefix)
        key.save(update_fields=["secret_hash"])
        record(actor=actor, organization=key.site.organization, site=key.site, action="api_key.rotated",
               object_type="api_key", object_id=key.pk, changes={"secret": ["old", "new"]})
    return key, raw


def revoke_api_key(*, actor, key: ApiKey) -> ApiKey:
    """The key stops working for good. It stays listed, so the audit trail keeps its name."""
    require_perm(actor, key.site, Perm.MANAGE_API_KEYS)
    with transaction.atomic():
        key = _locked_active(key)
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        record(actor=actor, organization=key.site.organization, site=key.site, action="api_key.revoked",
               object_type="api_key", object_id=key.pk, changes={"state": ["active", "revoked"]})
    return key


def update_api_key(*, actor, key: ApiKey, name: str, scenarios, reports_presence: bool | None = None) -> ApiKey:
    """Rename the key and set the scenarios it may trigger (and whether it reports presence; None: unchanged)."""
    require_perm(actor, key.site, Perm.MANAGE_API_KEYS)
    name = _checked_name(key.site, name, key)
    if reports_presence is None:
        reports_presence = key.reports_presence
    scenarios = _checked_scenarios(key.site, scenarios, reports_presence)
    with transaction.atomic():
        key = _locked_active(key)
        before_scope = _scope_names(key.scenarios.all())
        changes = {}
        if name != key.name:
            changes["name"] = [key.name, name]
            key.name = name
            key.save(update_fields=["name"])
        if _scope_names(scenarios) != before_scope:
            changes["scenarios"] = [before_scope, _scope_names(scenarios)]
            key.scenarios.set(scenarios)
        if reports_presence != key.reports_presence:
            changes["reports_presence"] = [key.reports_presence, reports_presence]
            key.reports_presence = reports_presence
            key.save(update_fields=["reports_presence"])
        if changes:
            record(actor=actor, organization=key.site.organization, site=key.site, action="api_key.updated",
                   object_type="api_key", object_id=key.pk, changes=changes)
    return key


def set_api_key_scenarios(*, actor, key: ApiKey, scenarios) -> ApiKey:
    return update_api_key(actor=actor, key=key, name=key.name, scenarios=scenarios)


def authenticate_api_key(raw: str | None) -> ApiKey | None:
    """The active key ``raw`` is, or None. Each success counts as a use (``last_used_at``, ``use_count``)."""
    if not raw or len(raw) > MAX_KEY_LENGTH or not raw.startswith(KEY_PREFIX):
        return None
    cut = len(KEY_PREFIX) + PREFIX_HEX
    prefix, rest = raw[:cut], raw[cut:]
    if len(rest) < 2 or rest[0] != "_":
        return None
    key = ApiKey.objects.select_related("site__organization").filter(prefix=prefix).first()
    if key is None or not key.is_active or not hmac.compare_digest(key.secret_hash, _digest(raw)):
        return None
    now = timezone.now()
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now, use_count=F("use_count") + 1)
    key.last_used_at = now
    return key


def record_api_key_use(key: ApiKey, *, action: str, alarm_id: int | None = None, **details) -> None:
    """Audit entry ``api_key.used``: which key did what to which alarm (never the secret)."""
    changes = {"key": [None, key.prefix], "action": [None, action]}
    if alarm_id is not None:
        changes["alarm"] = [None, alarm_id]
    changes.update({name: [None, value] for name, value in details.items()})
    record(actor=None, organization=key.site.organization, site=key.site, action="api_key.used",
           object_type="api_key", object_id=key.pk, changes=changes)


def trigger_key_approved(approval, approver) -> None:
    """The approved key that may raise alarms (audit.approvals): it works from now on."""
    key = ApiKey.objects.filter(pk=approval.subject.get("key"), site_id=approval.site_id).first()
    if key is None or key.revoked_at is not None:
        raise ValidationError(_("The key was revoked meanwhile."))
    key.approved = True
    key.save(update_fields=["approved"])
    record(actor=approver, organization=approval.organization, site=key.site, action="api_key.approved",
           object_type="api_key", object_id=key.pk, changes={"approval": [None, approval.pk]})
