"""The audit trail (seed: Eingabekontrolle).

An entry says who changed which structure or personal data, when (UTC), and
field-level old → new. Values of personal fields are stored as keyed
fingerprints, never in clear. Entries belong to a site (or, for org-level
changes such as a new site or a Super-admin grant, to the organisation only).

The entries of a site, and the organisation-level entries of an organisation,
each form a hash chain (``audit/chain.py``): an entry's ``hash`` covers its
content and the ``hash`` of the entry before it, and the chain's head
(:class:`AuditChain`) holds the newest link and, after a purge, the anchor the
remaining entries start from.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rallypoint.people.personal_data import declare
from rallypoint.tenants.encryption import EncryptedTextField, new_row_key
from rallypoint.tenants.models import Organization, Site


class AuditEntry(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    action = models.CharField(_("action"), max_length=64)
    object_type = models.CharField(_("object type"), max_length=32)
    object_id = models.CharField(_("object"), max_length=64)
    changes = models.JSONField(default=dict, blank=True)
    batch = models.UUIDField(null=True, blank=True, db_index=True)
    # The hash chain (audit/chain.py), written once with the entry. ``actor_ref`` is the actor's id as it
    # was: the ``actor`` column goes NULL when the user is deleted, and the chain must not break then.
    actor_ref = models.BigIntegerField(null=True, blank=True, editable=False)
    seq = models.PositiveBigIntegerField(editable=False)
    prev_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    hash = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["site", "-at"])]
        constraints = [
            # One entry per place in a chain: two writers can never both link to the same predecessor.
            models.UniqueConstraint(fields=["site", "seq"], condition=models.Q(site__isnull=False),
                                    name="audit_entry_one_per_site_seq"),
            models.UniqueConstraint(fields=["organization", "seq"], condition=models.Q(site__isnull=True),
                                    name="audit_entry_one_per_org_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type} #{self.object_id}"


class AuditChain(models.Model):
    """The head of one hash chain of the audit trail: a site's, or (no site) an organisation's own entries.

    Writers lock this row (``SELECT … FOR UPDATE``; SQLite has one writer anyway) to take the next number,
    so the chain never forks. ``anchor_*`` is the newest entry a purge deleted: what remains links to it.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    last_seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, blank=True, default="")
    anchor_seq = models.PositiveBigIntegerField(default=0)
    anchor_hash = models.CharField(max_length=64, blank=True, default="")
    anchor_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site"], condition=models.Q(site__isnull=False),
                                    name="audit_chain_one_per_site"),
            models.UniqueConstraint(fields=["organization"], condition=models.Q(site__isnull=True),
                                    name="audit_chain_one_per_org"),
        ]

    def __str__(self) -> str:
        return f"site {self.site_id}" if self.site_id else f"organisation {self.organization_id}"


class SecurityEvent(models.Model):
    """A security-relevant event (seed: "Login-Versuche werden protokolliert und 3 Monate gespeichert").

    Belongs to a site when it happened in one (a role granted there), otherwise to
    each organisation of the user (a sign-in happens before a site is chosen), or
    to no tenant at all (a failed sign-in for an address nobody uses). This is the
    only place where a client address is kept.
    """

    class Kind(models.TextChoices):
        SIGN_IN = "sign_in.succeeded", _("Signed in")
        SIGN_IN_FAILED = "sign_in.failed", _("Sign-in failed")
        SIGN_IN_THROTTLED = "sign_in.throttled", _("Sign-in held back (too many failures)")
        SIGN_OUT = "sign_out", _("Signed out")
        PASSWORD_CHANGED = "password.changed", _("Password changed")
        RESET_REQUESTED = "password.reset_requested", _("Password link requested")
        RESET_USED = "password.reset_used", _("Password link used")
        SECOND_FACTOR_ADDED = "second_factor.added", _("Second factor added")
        SECOND_FACTOR_REMOVED = "second_factor.removed", _("Second factor removed")
        ROLE_GRANTED = "role.granted", _("Role granted")
        ROLE_REVOKED = "role.revoked", _("Role revoked")
        TOKEN_ISSUED = "token.issued", _("App token issued")
        TOKEN_REVOKED = "token.revoked", _("App token revoked")
        SESSION_REVOKED = "session.revoked", _("Session ended")

    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="+")
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    kind = models.CharField(_("event"), max_length=32, choices=Kind.choices)
    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    row_key = models.CharField(max_length=32, default=new_row_key, editable=False)
    client_ip = EncryptedTextField(_("client address"), null=True, blank=True)  # personal data: encrypted
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["site", "-at"]), models.Index(fields=["organization", "-at"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class Approval(models.Model):
    """A four-eyes request (seed: "Vier-Augen-Prinzip für vordefinierte Prozesse"): one administrator asks,
    a second one approves or refuses within ``RP_APPROVAL_HOURS`` (24), else it expires. Carried out only
    when approved (:mod:`rallypoint.audit.approvals`). ``subject`` holds ids and settings, never personal data;
    ``without_second_person``: the site had no one else who could approve, and the requester said so — the
    Art. 32 report flags it."""

    class Process(models.TextChoices):
        GRANT_ADMIN = "grant_admin", _("Grant the Administrator role")
        GRANT_SUPER_ADMIN = "grant_super_admin", _("Grant the Super-admin role")
        EXPORT_PEOPLE = "export_people", _("Export the people of a site")
        EXPORT_PERSON = "export_person", _("Produce a person's data (Art. 15)")
        DELETE_PERSON = "delete_person", _("Delete a person")
        DELETE_SITE = "delete_site", _("Delete a site")
        RESET_SECOND_FACTOR = "reset_second_factor", _("Reset someone's second factor")
        CHANGE_RETENTION = "change_retention", _("Change how long data is kept")
        CHANGE_SECOND_FACTOR_RULE = "second_factor_rule", _("Change the second-factor rule")
        CREATE_TRIGGER_KEY = "trigger_key", _("Create an API key that may raise alarms")

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting for approval")
        DONE = "done", _("Approved and carried out")
        REFUSED = "refused", _("Refused")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Withdrawn")
        FAILED = "failed", _("Approved, but could not be carried out")

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    #: The site the process acts in; none for an organisation's own processes (a Super-admin, a site's deletion).
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    process = models.CharField(_("process"), max_length=24, choices=Process.choices)
    state = models.CharField(_("state"), max_length=12, choices=State.choices, default=State.PENDING,
                             db_index=True)
    subject = models.JSONField(default=dict, blank=True)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)
    without_second_person = models.BooleanField(default=False)
    #: Why it could not be carried out (FAILED), in the words of the check that refused it.
    result = models.CharField(max_length=500, blank=True)
    #: An approved export is downloaded once.
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        indexes = [models.Index(fields=["organization", "state"])]

    def __str__(self) -> str:
        return f"Approval #{self.pk} ({self.process})"


# --- Personal data: what these models hold about people, how long (rallypoint.people.personal_data) ---

declare(AuditEntry, fields=("changes", "actor_ref"), person=("actor",), kept="AUDIT_RETENTION_DAYS",
        why=_("the record of who changed what"), erased=_("deleted after this time"),
        purge="rallypoint.audit.actions.purge_expired",
        forget="keep")
declare(SecurityEvent, fields=("client_ip", "detail"), person=("user", "actor"), kept="SECURITY_EVENT_RETENTION_DAYS",
        why=_("sign-ins and other security events, to detect misuse"), erased=_("deleted after this time"),
        purge="rallypoint.audit.actions.purge_expired_security_events",
        forget="keep")
declare(Approval, fields=("reason", "note"), person=("requested_by", "decided_by"), kept="AUDIT_RETENTION_DAYS",
        why=_("the record of who asked for and who approved a four-eyes process"),
        erased=_("deleted after this time (when decided)"), purge="rallypoint.audit.approvals.purge_decided",
        forget="keep")
