"""Queueing a message of any kind (see :mod:`rallypoint.notify.kinds`) into the delivery outbox.

The row is written in the caller's transaction; after commit the workers are woken, so the message goes
out within moments, is retried with back-off when the channel fails, and is recorded like an alarm's.
Nothing is sent inside the request: its answer neither waits for a mail server nor tells by its time
whether a message was sent at all.
"""

from __future__ import annotations

from django.db import transaction

from rallypoint.notify import kinds
from rallypoint.notify.models import Delivery
from rallypoint.realtime import hub

#: The hub message that wakes the workers (it is no stream event: no site, no sequence number).
QUEUED = "outbox.queued"


def queue(kind: str, *, channel: str = "email", site=None, user=None, membership=None, context=None,
          priority: int = 3, sendable: bool = True) -> Delivery:
    """One message of ``kind`` to ``user`` or ``membership``. ``sendable=False`` writes the row as
    skipped (nothing to send) — the same work as a real one, for answers that must not differ in time."""
    if kinds.kind_for(kind) is None:
        raise ValueError(f"unknown message kind {kind!r}")
    row = Delivery.objects.create(
        kind=kind, channel=channel, site=site, user=user, membership=membership, context=context or {},
        priority=priority, event="",
        state=Delivery.State.PENDING if sendable else Delivery.State.SKIPPED)
    if sendable:
        transaction.on_commit(lambda: hub.publish({"type": QUEUED, "site": None}))
    return row
