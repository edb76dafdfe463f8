"""The delivery worker: claims due deliveries, sends them, records every attempt, escalates.

Claiming is one conditional UPDATE … RETURNING over a sub-select of due rows
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite runs writes one at a time):
a row goes to exactly one worker. A claim is a lease. A worker killed half-way
leaves rows in "sending" whose lease runs out; then any worker claims them
again, so nothing is lost. Each outcome is recorded as it completes (see
:class:`Recorder`), so what goes out twice after a crash is at most one
message per sending thread; the delivery's key goes to providers that
de-duplicate.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import F
from django.utils import timezone

from rallypoint.alarms import actions as alarm_actions
from rallypoint.alarms import links
from rallypoint.alarms.models import Alarm, AlarmRecipient
from rallypoint.evacuation import status as evacuation_status
from rallypoint.lib.bulk import insert_rows
from rallypoint.lib.dbpool import before_work, give_back
from rallypoint.notify import kinds, messages, outbox, registry
from rallypoint.notify.channels.base import Address, Message, TransportError
from rallypoint.notify.models import ALARM_KIND, Delivery, DeliveryAttempt, MessengerAddress, PushSubscription
from rallypoint.ops.scheduler import worker_id
from rallypoint.realtime import hub

log = logging.getLogger("rallypoint.worker")

_CLAIM_SQL = """
UPDATE notify_delivery SET state = 'sending', claimed_by = %s, claimed_until = %s
WHERE id IN (
    SELECT id FROM notify_delivery
    WHERE channel <> 'inapp'
      AND ((state = 'pending' AND next_attempt_at <= %s) OR (state = 'sending' AND claimed_until < %s))
    ORDER BY priority, next_attempt_at, recipient_id, id
    LIMIT %s {lock}
)
RETURNING id, site_id, alarm_id, recipient_id, channel, key, event, priority, attempts, kind, user_id,
          membership_id, context
"""


@dataclass(eq=False)
class Claimed:
    """A claimed delivery as sending and recording it need it, read by the claim itself: no second query
    and no model instance per row."""

    pk: int
    site_id: int | None
    alarm_id: int | None
    recipient_id: int | None
    channel: str
    key: uuid.UUID
    event: str
    priority: int
    attempts: int
    kind: str = ALARM_KIND
    user_id: int | None = None
    membership_id: int | None = None
    context: dict | None = None
    alarm: Alarm | None = None
    recipient: AlarmRecipient | None = None


def claim_rows(worker: str, limit: int, now=None) -> list[Claimed]:
    """Claim up to ``limit`` due deliveries for ``worker``.

    Most urgent first; within one moment person by person, each with all of their channels: in an
    alarm to thousands, everyone's e-mail, SMS and push go out together, instead of the last person's
    SMS waiting behind every e-mail and every push of the alarm."""
    now = now or timezone.now()
    lock = "FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    until = now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL.format(lock=lock), [worker, until, now, now, limit])
        rows = cursor.fetchall()
    as_uuid = Delivery._meta.get_field("key").to_python  # SQLite returns the key as hex text
    as_dict = Delivery._meta.get_field("context").from_db_value  # SQLite returns JSON as text
    claimed = [Claimed(pk, site_id, alarm_id, recipient_id, channel, as_uuid(key), event, priority, attempts, kind,
                       user_id, membership_id, context if kind == ALARM_KIND else as_dict(context, None, connection))
               for (pk, site_id, alarm_id, recipient_id, channel, key, event, priority, attempts, kind, user_id,
                    membership_id, context) in rows]
    claimed.sort(key=lambda c: (c.priority, c.pk))  # RETURNING keeps no order
    return claimed


def claim(worker: str, limit: int, now=None) -> list[int]:
    """Claim up to ``limit`` due deliveries for ``worker``; returns their ids."""
    return [c.pk for c in claim_rows(worker, limit, now)]


@dataclass
class Outcome:
    delivery: Claimed
    started: object
    duration_ms: int
    error: str = ""
    permanent: bool = False

    @property
    def ok(self) -> bool:
        return not self.error


def _addresses(deliveries: list[Claimed]) -> dict[int, Address]:
    """Where each delivery's recipient is reached on its channel (decrypted only here, never logged)."""
    membership_ids = {d.recipient.membership_id for d in deliveries}
    push, messenger = defaultdict(list), defaultdict(list)
    if any(d.channel == "push" for d in deliveries):
        for sub in PushSubscription.objects.filter(membership_id__in=membership_ids):
            push[sub.membership_id].append(sub)
    if any(d.channel == "apprise" for d in deliveries):
        for row in MessengerAddress.objects.filter(membership_id__in=membership_ids):
            messenger[row.membership_id].append(row.url)
    result = {}
    for d in deliveries:
        m = d.recipient.membership
        if d.channel == "email":
            result[d.pk] = Address(email=m.user.email)
        elif d.channel in ("sms", "voice"):
            result[d.pk] = Address(phone=m.phone)
        elif d.channel == "push":
            result[d.pk] = Address(push=tuple(push[m.pk]))
        elif d.channel == "apprise":
            result[d.pk] = Address(messenger=tuple(messenger[m.pk]))
        else:
            result[d.pk] = Address()
    return result


def _load(claimed: list[Claimed]) -> list[Claimed]:
    """The claimed deliveries with their alarm and recipient. Each alarm and each recipient is read and
    built once per batch and shared by its deliveries: a person's e-mail, SMS and push, and every delivery
    of an alarm, are in the same batch (building them per row was a quarter of a worker's CPU time)."""
    alarms = Alarm.objects.filter(pk__in={d.alarm_id for d in claimed}).select_related("scenario", "level", "site")
    recipients = AlarmRecipient.objects.filter(pk__in={d.recipient_id for d in claimed}).select_related(
        "membership__user")
    by_alarm = {a.pk: a for a in alarms}
    by_recipient = {r.pk: r for r in recipients}
    # A person removed since the claim takes their recipient and delivery rows with them: skip.
    deliveries = [d for d in claimed if d.alarm_id in by_alarm and d.recipient_id in by_recipient]
    for d in deliveries:
        d.alarm, d.recipient = by_alarm[d.alarm_id], by_recipient[d.recipient_id]
    return deliveries


def _messages(deliveries: list[Claimed]) -> dict[int, Message]:
    """Each delivery's message. Templates are rendered once per alarm, event, role and language."""
    shared: dict[tuple, Message] = {}
    answer_urls: dict[int, str] = {}  # one link per person, whichever of their channels carries it
    result = {}
    for d in deliveries:
        membership = d.recipient.membership
        key = (d.alarm_id, d.event, membership.role, membership.user.language)
        if key not in shared:
            shared[key] = messages.render_shared(d.alarm, event=d.event, role=membership.role,
                                                 language=membership.user.language)
        if shared[key].answer_url and d.recipient_id not in answer_urls:
            answer_urls[d.recipient_id] = links.answer_url(d.recipient)
        result[d.pk] = messages.personalise(shared[key], d.recipient, delivery_key=str(d.key),
                                            answer_url=answer_urls.get(d.recipient_id))
    return result


def _prepare_other_kinds(claimed: list[Claimed]) -> tuple[dict[Claimed, tuple[Message, Address]], list[Outcome]]:
    """Messages of kinds other than alarms, each rendered by its kind (:mod:`rallypoint.notify.kinds`):
    ``(sendable, outcomes of the unsendable)``."""
    by_kind: dict[str, list[Claimed]] = defaultdict(list)
    for c in claimed:
        by_kind[c.kind].append(c)
    sendable, unsendable = {}, []
    for name, rows in by_kind.items():
        kind = kinds.kind_for(name)
        prepared = kind.prepare(rows) if kind is not None else {}
        for c in rows:
            result = prepared.get(c.pk, TransportError(f"unknown message kind {name[:40]}", permanent=True))
            if isinstance(result, TransportError):
                unsendable.append(Outcome(c, timezone.now(), 0, result.message[:300], result.permanent))
            else:
                sendable[c] = result
    return sendable, unsendable


def _send_one(delivery: Claimed, message: Message, address: Address) -> Outcome:
    started = timezone.now()
    t0 = time.perf_counter()
    try:
        registry.channel_for_thread(delivery.channel).send(message, address)
    except TransportError as exc:
        return Outcome(delivery, started, int((time.perf_counter() - t0) * 1000), exc.message[:300] or "error",
                       exc.permanent)
    except Exception as exc:  # a bug in one channel must not lose the delivery: retry it later
        # Only the type: a third-party exception's text may quote an address.
        log.error("channel raised", extra={"channel": delivery.channel, "delivery": delivery.pk,
                                           "error": type(exc).__name__})
        return Outcome(delivery, started, int((time.perf_counter() - t0) * 1000), type(exc).__name__)
    finally:
        give_back()  # a channel that used the database (push removing an expired subscription) frees it
    return Outcome(delivery, started, int((time.perf_counter() - t0) * 1000))


def release(worker: str, ids: list[int]) -> int:
    """Give claimed deliveries that were not sent back to the queue, due at once (a stopping worker's
    queued ones): another worker takes them now instead of after the lease."""
    return Delivery.objects.filter(pk__in=ids, claimed_by=worker, state=Delivery.State.SENDING).update(
        state=Delivery.State.PENDING, claimed_by="", claimed_until=None)


def extend_lease(worker: str, ids: list[int]) -> int:
    """Keep a claim while its batch is still being sent (slow gateways must not let it expire)."""
    until = timezone.now() + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    return Delivery.objects.filter(pk__in=ids, claimed_by=worker, state=Delivery.State.SENDING).update(
        claimed_until=until)


def backoff_seconds(attempts: int) -> float:
    """2, 4, 8 … seconds, at most 5 minutes, with ±20 % jitter so retries do not arrive in waves."""
    base = min(2 ** attempts, 300)
    return base * random.uniform(0.8, 1.2)  # noqa: S311  # nosec B311 - jitter, not a secret


def _record(worker: str, outcomes: list[Outcome]) -> None:
    now = timezone.now()
    mine = Delivery.objects.filter(claimed_by=worker, state=Delivery.State.SENDING)
    ok = [o.delivery.pk for o in outcomes if o.ok]
    done = {"claimed_by": "", "claimed_until": None, "attempts": F("attempts") + 1}
    with transaction.atomic():
        if ok:
            mine.filter(pk__in=ok).update(state=Delivery.State.SENT, sent_at=now, last_error="", **done)
        for o in outcomes:
            if o.ok:
                continue
            attempts = o.delivery.attempts + 1
            if o.permanent or attempts >= settings.DELIVERY_MAX_ATTEMPTS:
                no_address = o.permanent and o.error.startswith("no ")
                state = Delivery.State.SKIPPED if no_address else Delivery.State.FAILED
                mine.filter(pk=o.delivery.pk).update(state=state, last_error=o.error, **done)
            else:
                mine.filter(pk=o.delivery.pk).update(
                    state=Delivery.State.PENDING, last_error=o.error,
                    next_attempt_at=now + timedelta(seconds=backoff_seconds(attempts)), **done)
        _insert_attempts(worker, outcomes)


def _insert_attempts(worker: str, outcomes: list[Outcome]) -> None:
    """One row per attempt (``bulk_create`` built and checked a model instance and its SQL for each row:
    a twentieth of a worker's time in a large alarm)."""
    adapt = connection.ops.adapt_datetimefield_value
    insert_rows(DeliveryAttempt._meta.db_table,
                ("site_id", "delivery_id", "worker", "started_at", "duration_ms", "result", "error"),
                [(o.delivery.site_id, o.delivery.pk, worker, adapt(o.started), o.duration_ms,
                  "ok" if o.ok else "permanent" if o.permanent else "transient", o.error) for o in outcomes])


#: Tries to write a group of outcomes before the recorder gives up on it (the rows then stay claimed and
#: are sent again after their lease: at least once, never lost).
RECORD_TRIES = 3


class Recorder:
    """Writes outcomes as they come in, each group in one transaction: whatever arrived while the previous
    group was written (a database's group commit, in small).

    A sending thread hands over its outcome and waits until it is written before it takes its next message.
    So at any moment each thread has at most one message that went out but is not recorded: a worker killed
    half-way through a batch sends again at most one message per sending thread, not the whole batch it had
    claimed (506 of 2,000 went out twice when outcomes were written per batch)."""

    def __init__(self, worker: str):
        self.worker = worker
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="record", daemon=True)
        self._thread.start()

    def record(self, outcome: Outcome) -> bool:
        """Write ``outcome``; returns once it is committed (True) or could not be (False)."""
        done, written = threading.Event(), []
        self._queue.put((outcome, done, written))
        done.wait()
        return bool(written)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        before_work()
        try:
            self._loop()
        finally:
            connections.close_all()

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            items = [first]
            with contextlib.suppress(queue.Empty):
                while True:
                    item = self._queue.get_nowait()
                    if item is None:
                        stopping = True
                        break
                    items.append(item)
            ok = self._write([outcome for outcome, _done, _written in items])
            for _outcome, done, written in items:
                if ok:
                    written.append(True)
                done.set()
            give_back()

    def _write(self, outcomes: list[Outcome]) -> bool:
        for attempt in range(RECORD_TRIES):
            try:
                _record(self.worker, outcomes)
                return True
            except Exception:
                log.exception("recording deliveries failed", extra={"worker": self.worker, "count": len(outcomes)})
                time.sleep(0.2 * (attempt + 1))
        return False


class _InThisThread:
    """``threads=0``: sending and recording in the calling thread, one message after the other (``rallypoint
    worker --drain``; tests, whose open transaction only the calling thread sees)."""

    def __init__(self, worker: str):
        self.worker = worker

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def record(self, outcome: Outcome) -> bool:
        _record(self.worker, [outcome])
        return True

    def shutdown(self, wait: bool = True) -> None:
        registry.close_thread_channels()

    def close(self) -> None:
        pass


def _send_and_record(recorder: Recorder, delivery: Claimed, message: Message, address: Address) -> Outcome:
    outcome = _send_one(delivery, message, address)
    recorder.record(outcome)
    return outcome


@dataclass
class _Batch:
    """Claimed deliveries whose messages are with the sending threads."""

    ids: list[int]
    deliveries: list[Claimed]
    futures: list
    leased_at: float = 0.0  # time.monotonic() just before the lease was taken or last renewed


class DeliveryWorker:
    """Sends deliveries until stopped. ``threads`` senders share each claimed batch."""

    def __init__(self, worker: str | None = None, *, threads: int | None = None, batch: int | None = None):
        self.worker = worker or worker_id()
        self.threads = settings.WORKER_THREADS if threads is None else threads
        self.batch = batch or settings.WORKER_BATCH
        self.wake = threading.Event()
        self._counts_due: dict[int, float] = {}
        self._evacuation_due: set[int] = set()
        self._swept_at = None
        if self.threads:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="send", initializer=before_work)
            self._recorder = Recorder(self.worker)
        else:
            self._pool = self._recorder = _InThisThread(self.worker)

    def on_stream_event(self, frame: dict) -> None:
        kind = frame.get("type", "")
        if kind.startswith("alarm.") or kind == outbox.QUEUED:
            self.wake.set()

    def run_once(self) -> int:
        """Claim and send one batch; returns how many deliveries it handled."""
        batch = self._start()
        return self._finish(batch) if batch is not None else 0

    def drain(self) -> int:
        """Send everything that is due now, batch after batch, and publish the counts; returns how many."""
        total = 0
        while handled := self.run_once():
            total += handled
        self.publish_counts(force=True)
        return total

    def _start(self) -> _Batch | None:
        """Claim a batch, prepare its messages and hand them to the sending threads (it does not wait)."""
        leased_at = time.monotonic()
        claimed = claim_rows(self.worker, self.batch)
        if not claimed:
            return None
        ids = [c.pk for c in claimed]
        alarm_rows = [c for c in claimed if c.kind == ALARM_KIND]
        deliveries = _load(alarm_rows)
        addresses = _addresses(deliveries)
        texts = _messages(deliveries)
        other, unsendable = _prepare_other_kinds([c for c in claimed if c.kind != ALARM_KIND])
        for d, (message, address) in other.items():
            deliveries.append(d)
            texts[d.pk], addresses[d.pk] = message, address
        futures = [self._pool.submit(_send_and_record, self._recorder, d, texts[d.pk], addresses[d.pk])
                   for d in deliveries]
        if unsendable:
            _record(self.worker, unsendable)
        return _Batch(ids, deliveries, futures, leased_at)

    def _finish(self, batch: _Batch, also: _Batch | None = None) -> int:
        """Wait until the batch is sent and recorded (keeping its lease, and that of ``also``, the batch
        queued after it); returns how many deliveries it held."""
        renew_every = settings.DELIVERY_LEASE_SECONDS / 3
        queued = also.ids if also is not None else []
        # Renewed when a third of the lease has passed since it was taken or last renewed (not a third
        # after the waiting began: the queued batch may have waited meanwhile).
        while wait(batch.futures, timeout=max(0.0, batch.leased_at + renew_every - time.monotonic())).not_done:
            renewed = time.monotonic()
            extend_lease(self.worker, batch.ids + queued)
            batch.leased_at = renewed
            if also is not None:
                also.leased_at = renewed
        # The queued batch is waited for only after this batch's bookkeeping: renew it now unless its lease
        # is younger than a third (usual in a large alarm).
        if also is not None and time.monotonic() - also.leased_at > renew_every:
            also.leased_at = time.monotonic()
            extend_lease(self.worker, queued)
        now = time.monotonic()
        for d in batch.deliveries:
            if d.alarm_id is not None:
                self._counts_due.setdefault(d.alarm_id, now)
        for kind in sorted({d.channel for d in batch.deliveries}):
            try:
                registry.channel_class(kind).after_batch()
            except Exception:  # bookkeeping only: the batch is recorded
                log.exception("channel bookkeeping failed", extra={"worker": self.worker, "channel": kind})
        return len(batch.ids)

    def _stop(self, batch: _Batch) -> None:
        """On the way out: what has not started sending goes back to the queue at once; what is being
        sent is waited for (and recorded as it completes), or it would go out again after the lease."""
        unsent = {d.pk for d, f in zip(batch.deliveries, batch.futures, strict=True) if f.cancel()}
        release(self.worker, list(unsent))
        running = [(d, f) for d, f in zip(batch.deliveries, batch.futures, strict=True) if d.pk not in unsent]
        if running:
            deliveries, futures = (list(column) for column in zip(*running, strict=True))
            self._finish(_Batch([d.pk for d in deliveries], deliveries, futures, batch.leased_at))

    def sweep_answers(self) -> None:
        """Answers and receipts arrive through the web processes, which publish the counts at most once a
        second per alarm; publish what they left for later. The window overlaps the previous one, so an
        answer committed during a sweep is not missed (a duplicate count event is harmless)."""
        now = timezone.now()
        if self._swept_at and (now - self._swept_at).total_seconds() < 1.0:
            return
        since = (self._swept_at or now) - timedelta(seconds=3)
        self._swept_at = now
        for alarm_id in alarm_actions.alarms_with_new_answers(since):
            self._counts_due.setdefault(alarm_id, 0.0)
        for alarm_id in evacuation_status.alarms_with_new_reports(since):
            self._evacuation_due.add(alarm_id)

    def publish_counts(self, force: bool = False) -> None:
        """Tell the cockpit about changed delivery counts, at most once a second per alarm."""
        self.sweep_answers()
        now = time.monotonic()
        for alarm_id, since in list(self._counts_due.items()):
            if not force and now - since < 1.0:
                continue
            del self._counts_due[alarm_id]
            alarm = Alarm.objects.filter(pk=alarm_id).first()
            if alarm is not None:
                alarm_actions.publish_counts(alarm)
        due, self._evacuation_due = self._evacuation_due, set()
        for alarm_id in due:  # status reports: the web processes publish at most once a second per alarm
            evacuation_status.publish_counts(alarm_id)

    def loop(self, stop: threading.Event, *, idle_seconds: float = 0.5) -> None:
        """Send until ``stop`` is set. Two batches overlap: the next one is claimed, prepared and queued
        while the sending threads still work on the previous one, so that they never stand idle during
        the database work between two batches; the previous one is then recorded. (A new alarm's
        deliveries may thus wait behind up to two batches.) On stop, the queued deliveries that have not
        started go back to the queue and the ones under way are recorded."""
        unsubscribe = hub.subscribe(self.on_stream_event)
        log.info("delivery worker started", extra={"worker": self.worker})
        in_flight: _Batch | None = None
        try:
            while not stop.is_set():
                before_work()
                try:
                    queued = self._start()
                    previous, in_flight = in_flight, queued
                    handled = self._finish(previous, also=queued) if previous is not None else 0
                    self.publish_counts(force=not handled)
                    if not handled and in_flight is None:
                        alarm_actions.run_escalations()
                        give_back()  # PostgreSQL: the pool's connection is free for others while idle
                        self.wake.wait(idle_seconds)
                        self.wake.clear()
                except Exception:
                    log.exception("delivery cycle failed", extra={"worker": self.worker})
                    stop.wait(1.0)
        finally:
            try:
                if in_flight is not None:
                    self._stop(in_flight)
            except Exception:
                log.exception("delivery cycle failed", extra={"worker": self.worker})
            finally:
                unsubscribe()
                self.close()
                connections.close_all()
                log.info("delivery worker stopped", extra={"worker": self.worker})

    def close(self) -> None:
        """Close every sending thread's kept connections (channels, database), then stop the threads."""
        if not self.threads:
            self._pool.shutdown()
            return
        barrier = threading.Barrier(self.threads)

        def close_thread(_: int) -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(5)  # so that each thread of the pool runs exactly one of these
            registry.close_thread_channels()
            connections.close_all()

        list(self._pool.map(close_thread, range(self.threads)))
        self._pool.shutdown(wait=True)
        self._recorder.close()
