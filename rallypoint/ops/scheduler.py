"""Periodic jobs, claimed through the database so two workers never run the same job twice.

A worker claims a due job with one conditional UPDATE (due, and not claimed
or its claim expired) and runs it only when exactly one row changed. A worker
that dies mid-job leaves a claim that expires after the job's lease; then
another worker takes it over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import connections
from django.db.models import F, Q
from django.utils import timezone

from rallypoint.accounts.pow import purge_used
from rallypoint.audit.approvals import expire_due
from rallypoint.lib.dbpool import before_work, give_back
from rallypoint.ops.models import JobState
from rallypoint.ops.tom_report import send_monthly
from rallypoint.people.personal_data import purge_all
from rallypoint.people.reviews import open_due_reviews

log = logging.getLogger("rallypoint.worker")


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[], object]
    lease: timedelta = timedelta(minutes=10)


JOBS: dict[str, Job] = {
    job.name: job
    for job in [
        # Every model's retention, as the models declare it (rallypoint.people.personal_data).
        Job("personal_data.purge", timedelta(minutes=15), purge_all),
        Job("proof_of_work.purge_used", timedelta(minutes=15), purge_used),
        Job("access_review.open_due", timedelta(days=1), open_due_reviews),
        Job("approvals.expire", timedelta(minutes=15), expire_due),
        Job("tom_report.monthly", timedelta(days=1), send_monthly),
    ]
}


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def ensure_job_rows(jobs: dict[str, Job] = JOBS) -> None:
    JobState.objects.bulk_create([JobState(name=name) for name in jobs], ignore_conflicts=True)


def claim(job: Job, worker: str, now=None) -> bool:
    now = now or timezone.now()
    changed = (
        JobState.objects.filter(name=job.name, next_run_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_by=worker, locked_until=now + job.lease, last_started_at=now)
    )
    return changed == 1


def run_due_jobs(worker: str, jobs: dict[str, Job] = JOBS) -> list[str]:
    """Run every due job this worker manages to claim; return the names it ran."""
    ran = []
    for job in jobs.values():
        if not claim(job, worker):
            continue
        error = ""
        try:
            result = job.run()
            log.info("job finished", extra={"job": job.name, "worker": worker,
                                            "count": result if isinstance(result, int) else 0})
        except Exception as exc:  # a failing job must not stop the worker
            error = type(exc).__name__
            log.exception("job failed", extra={"job": job.name, "worker": worker})
        finished = timezone.now()
        JobState.objects.filter(name=job.name, locked_by=worker).update(
            locked_by="", locked_until=None, last_finished_at=finished, last_error=error,
            next_run_at=finished + job.every, runs=F("runs") + 1,
        )
        ran.append(job.name)
    return ran


def loop(stop: threading.Event, *, poll_seconds: float = 5.0, jobs: dict[str, Job] = JOBS) -> None:
    """Run until ``stop`` is set. Used by ``rallypoint worker`` and inside ``rallypoint run``."""
    worker = worker_id()
    log.info("worker started", extra={"worker": worker})
    ensure_job_rows(jobs)
    while not stop.is_set():
        before_work()
        try:
            run_due_jobs(worker, jobs)
        except Exception:
            log.exception("worker cycle failed", extra={"worker": worker})
        give_back()  # PostgreSQL: the pool's connection is free for others while this thread waits
        stop.wait(poll_seconds)
    connections.close_all()  # this thread's connections end with it
    log.info("worker stopped", extra={"worker": worker})
