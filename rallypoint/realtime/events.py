"""Appending to a site's stream, and handing the event to the hub after commit.

Call :func:`append` inside the transaction of the change the event reports:
the event gets the site's next sequence number and is stored with the change;
only when the transaction commits is it published to the hub, so no client
ever sees a change that was rolled back.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from rallypoint.realtime import hub, schemas
from rallypoint.realtime.models import SiteStream, StreamEvent

_NEXT_SEQ = f"UPDATE {SiteStream._meta.db_table} SET last_seq = last_seq + 1 WHERE site_id = %s RETURNING last_seq"  # noqa: S608  # nosec B608 - our table


def next_seq(site_id: int) -> int:
    """Reserve the site's next sequence number (the counter row stays locked until commit): one statement,
    once the site's counter row exists."""
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_SEQ, [site_id])
        row = cursor.fetchone()
        if row is not None:
            return row[0]
    SiteStream.objects.bulk_create([SiteStream(site_id=site_id)], ignore_conflicts=True)
    return next_seq(site_id)


def as_frame(event: StreamEvent) -> dict:
    """The wire form of an event: what the hub carries and what a client receives (an event for named
    people also carries their ids under :data:`MEMBERS`, which the endpoints strip before sending)."""
    frame = {"seq": event.seq, "site": event.site_id, "type": event.type, "audience": event.audience,
             "alarm": event.alarm_id, "at": event.at.isoformat(), "data": event.payload}
    if event.perm:
        frame["perm"] = event.perm
    if event.members is not None:
        frame[MEMBERS] = event.members
    return frame


def purge_old(now=None) -> int:
    """Forget stream events older than RP_STREAM_RETENTION_DAYS: an app that was away longer reloads."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.STREAM_RETENTION_DAYS)
    deleted, _ = StreamEvent.objects.filter(at__lt=cutoff).delete()
    return deleted


#: Key of the published frame that carries the alarm's recipients to the stream endpoints (membership ids).
#: It travels over the hub only; the endpoints never send it to a client.
MEMBERS = "_members"


def append(site_id: int, type: str, payload: dict, *, audience: str = StreamEvent.Audience.SITE,
           alarm_id: int | None = None, members: list[int] | None = None, perm: str = "") -> StreamEvent:
    """Append an event of a registered type (:mod:`rallypoint.realtime.schemas`) for ``audience``:

    - ``site``: everyone signed in at the site; ``cockpit``: the crisis team;
    - ``perm``: holders of the permission ``perm``;
    - ``people``: the people whose membership ids are ``members`` (kept with the event for the replay);
    - ``alarm``: the alarm's recipients and the crisis team. ``members`` may give the recipients when the
      caller has them at hand: the endpoints then need not read them from the database before they can
      send the event (at 10,000 recipients that read costs tens of milliseconds of the alarm's way).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("stream events are appended inside the transaction of their change")
    schemas.check(type, audience, payload)
    if (audience == StreamEvent.Audience.PERM) != bool(perm):
        raise schemas.SchemaError("a permission is given with the audience 'perm', and only then")
    if audience == StreamEvent.Audience.PEOPLE and members is None:
        raise schemas.SchemaError("an event for people names them")
    stored = sorted(set(members)) if audience == StreamEvent.Audience.PEOPLE else None
    event = StreamEvent.objects.create(site_id=site_id, seq=next_seq(site_id), type=type, audience=audience,
                                       perm=perm, members=stored, alarm_id=alarm_id, payload=payload)
    frame = as_frame(event)
    if members is not None:
        frame[MEMBERS] = members
    transaction.on_commit(lambda: hub.publish(frame))
    return event


#: A hub message (no stream row, no sequence number) telling every process to close the sockets of
#: sessions that just ended: a signed-out socket closes at once instead of at the next re-check, so an
#: alarm raised a moment after sign-out does not reach it. Its ``sessions`` are :func:`session_digest`s.
SESSIONS_ENDED = "sessions.ended"


def session_digest(session_key: str) -> str:
    """What the hub carries instead of a session key (a key is a credential; its hash is not)."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def sessions_ended(session_keys, *, moved: bool = False) -> None:
    """After commit (at once outside a transaction): close the sockets of these sessions everywhere.
    ``moved``: the session lives on under a new key (sign-in, another site): the client reconnects at once
    instead of being told it was signed out."""
    digests = [session_digest(key) for key in session_keys if key]
    if digests:
        message = {"type": SESSIONS_ENDED, "site": None, "sessions": digests, "moved": moved}
        transaction.on_commit(lambda: hub.publish(message))
