"""The delivery outbox: one row per recipient × channel × alarm, and every attempt to send it.

Deliveries are written in the same transaction as their alarm. Workers claim
due rows (see :mod:`rallypoint.notify.worker`), send them through the
channel's transport and record each attempt.
"""

from __future__ import annotations

import os
import time
import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rallypoint.alarms.models import CHANNEL_CHOICES, Alarm, AlarmRecipient
from rallypoint.people.models import Membership
from rallypoint.people.personal_data import declare
from rallypoint.tenants.encryption import EncryptedTextField, new_row_key
from rallypoint.tenants.models import Site, SiteScopedQuerySet

#: The kind of an alarm's messages; other kinds are registered in rallypoint.notify.kinds.
ALARM_KIND = "alarm"


def time_ordered_key() -> uuid.UUID:
    """A delivery's key: a UUID of version 7 (RFC 9562), the time in milliseconds and then 74 random
    bits. Keys made together sort together, so the thousands of an alarm go to the end of the keys'
    unique index instead of to random places all over it (measured on SQLite at 10,000 people:
    a random key dirtied pages all over that index and made the trigger's transaction about 10 ms longer,
    more as the table grows)."""
    rand = int.from_bytes(os.urandom(10), "big")
    value = ((time.time_ns() // 1_000_000) & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 68) << 64 \
        | 0b10 << 62 | (rand & (2**62 - 1))
    return uuid.UUID(int=value)


def time_ordered_key_sql(vendor: str) -> str:
    """:func:`time_ordered_key` as an SQL expression, one new key per row of an ``INSERT … SELECT``."""
    if vendor == "postgresql":  # a version-4 UUID with its first 48 bits the time and its version 7
        return ("overlay(overlay(replace(gen_random_uuid()::text, '-', '') placing "
                "lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0') from 1 for 12) "
                "placing '7' from 13 for 1)::uuid")
    # 12 + 2 + 60 random bits from SQLite's generator (the one randomblob() uses), in one printf: half
    # the time of building the text from randomblob() pieces (3 ms per 10,000 rows).
    return ("printf('%012x7%03x%x%015x', CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER), "
            "random() & 4095, 8 + (random() & 3), random() & 1152921504606846975)")


class Delivery(models.Model):
    """One message to one person on one channel: an alarm's (``kind`` "alarm", with its recipient row)
    or another kind's (an invitation, a password link …: ``kind`` names its renderer in
    :mod:`rallypoint.notify.kinds`, ``user`` or ``membership`` whom it goes to, ``context`` what the
    renderer needs, ids only)."""

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("No address")
        CANCELLED = "cancelled", _("Cancelled")

    # Site and alarm are the recipient's, copied for scoping and counting. The database checks only the
    # recipient reference (whose own references cover alarm and site): on PostgreSQL each checked reference
    # costs a lookup per row at COMMIT, and with all three an alarm to 10,000 people by three channels
    # spent 355 ms committing, 220 ms of them on these two. Deleting cascades through the ORM as before.
    # An account message (a password link) may concern no particular site.
    site = models.ForeignKey(Site, null=True, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    kind = models.CharField(max_length=40, default=ALARM_KIND)
    alarm = models.ForeignKey(Alarm, null=True, on_delete=models.CASCADE, related_name="deliveries",
                              db_constraint=False, db_index=False)  # "delivery_counts" begins with it
    recipient = models.ForeignKey(AlarmRecipient, null=True, on_delete=models.CASCADE, related_name="deliveries")
    #: Whom a message of another kind goes to: a person at a site, or an account.
    membership = models.ForeignKey(Membership, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    #: What the kind's renderer needs (ids, a language); never personal data.
    context = models.JSONField(default=dict, blank=True)
    channel = models.CharField(max_length=12, choices=CHANNEL_CHOICES)
    #: Sent to providers that de-duplicate (Message-ID, gateway idempotency header): a re-send after a
    #: crash does not become a second message where the provider honours it.
    key = models.UUIDField(default=time_ordered_key, editable=False, unique=True)
    #: Which alarm event caused this message (triggered, updated, level raised, escalated, ended).
    event = models.CharField(max_length=16, default="triggered")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    priority = models.PositiveSmallIntegerField(default=1)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_by = models.CharField(max_length=80, blank=True, default="")
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, default="")

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["alarm", "channel", "state"], name="delivery_counts"),
        ]

    def __str__(self) -> str:
        return f"Delivery #{self.pk} ({self.channel})"


class DeliveryAttempt(models.Model):
    class Result(models.TextChoices):
        OK = "ok", _("Sent")
        TRANSIENT = "transient", _("Failed, will retry")
        PERMANENT = "permanent", _("Failed for good")

    site = models.ForeignKey(Site, null=True, on_delete=models.CASCADE, related_name="+")  # the delivery's
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_rows")
    worker = models.CharField(max_length=80, blank=True, default="")
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    result = models.CharField(max_length=10, choices=Result.choices)
    #: The transport's message, which never contains an address or a name.
    error = models.CharField(max_length=300, blank=True, default="")

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        ordering = ["started_at", "pk"]

    def __str__(self) -> str:
        return f"Attempt #{self.pk} of delivery #{self.delivery_id}"


class PushSubscription(models.Model):
    """A browser's Web Push subscription (RFC 8030 endpoint with RFC 8291 keys) for one person at a site."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="push_subscriptions")
    row_key = models.CharField(max_length=32, default=new_row_key, editable=False)
    endpoint = EncryptedTextField(owner="membership")
    #: SHA-256 of the endpoint, so that a browser that subscribes again replaces its row.
    endpoint_hash = models.CharField(max_length=64)
    p256dh = EncryptedTextField(owner="membership")
    auth = EncryptedTextField(owner="membership")
    label = models.CharField(_("device"), max_length=120, blank=True)
    #: The handle of the session that subscribed: signing out of that session ends the subscription.
    session_handle = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    last_success_at = models.DateTimeField(null=True, blank=True)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "endpoint_hash"], name="one_push_row_per_endpoint")]

    def __str__(self) -> str:
        return f"Push subscription #{self.pk}"


class MessengerAddress(models.Model):
    """A person's address on a messenger (Telegram, Signal, Matrix, ntfy, …) as an Apprise URL."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="messenger_addresses")
    row_key = models.CharField(max_length=32, default=new_row_key, editable=False)
    url = EncryptedTextField(_("Apprise URL"), owner="membership")
    label = models.CharField(_("label"), max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = SiteScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"Messenger address #{self.pk}"


class ChannelMute(models.Model):
    """A person does not want information messages on this channel (My account). Alarms reach every channel
    regardless: a person who turned SMS off still gets the fire alarm by SMS."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="channel_mutes")
    channel = models.CharField(max_length=12, choices=CHANNEL_CHOICES)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["membership", "channel"], name="one_mute_per_channel")]

    def __str__(self) -> str:
        return f"{self.channel} muted for membership #{self.membership_id}"


# --- Personal data: what these models hold about people, how long (rallypoint.people.personal_data) ---

declare(Delivery, person=("recipient", "membership", "user"), kept="ALARM_RECORD_DAYS",
        why=_("a message to a person: an alarm's kept with the alarm; others (password links, reminders) "
              "for RP_MESSAGE_LOG_DAYS"),
        erased=_("deleted after this time (the alarm keeps the counts per channel), or with the person"),
        forget="keep", purge=("rallypoint.people.retention.purge_alarm_records",
                              "rallypoint.people.retention.purge_message_log"))
declare(DeliveryAttempt, fields=("error",), why=_("each try to send a message, kept with it"),
        erased=_("deleted with the message"))
declare(PushSubscription, fields=("endpoint", "endpoint_hash", "p256dh", "auth", "label"), person=("membership",),
        kept="PUSH_IDLE_DAYS", why=_("as long as the device receives notifications"),
        erased=_("deleted when turned off, at sign-out, when the push service drops it, when unused this long, "
                 "and with the person"),
        purge="rallypoint.people.retention.purge_idle_push", forget="delete")
declare(MessengerAddress, fields=("url", "label"), person=("membership",), why=_("as long as the person keeps it"),
        erased=_("deleted when removed, and with the person"),
        forget="delete")
declare(ChannelMute, person=("membership",), why=_("as long as the person keeps the choice"),
        erased=_("deleted when changed back, and with the person"), forget="delete")
