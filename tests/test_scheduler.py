"""The worker's periodic jobs: claimed in the database, never run twice at once, taken over after a crash."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from rallypoint.ops import scheduler
from rallypoint.ops.models import JobState


def counting_job(name="test.count", every=timedelta(hours=1)):
    runs = []
    job = scheduler.Job(name, every, lambda: runs.append(1) or len(runs), lease=timedelta(minutes=5))
    return job, runs


@pytest.mark.django_db
def test_a_due_job_runs_once_and_is_rescheduled():
    job, runs = counting_job()
    jobs = {job.name: job}
    scheduler.ensure_job_rows(jobs)
    assert scheduler.run_due_jobs("w1", jobs) == [job.name]
    assert scheduler.run_due_jobs("w2", jobs) == []
    state = JobState.objects.get(name=job.name)
    assert runs == [1] and state.runs == 1 and state.locked_by == "" and state.last_error == ""
    assert state.next_run_at > timezone.now() + timedelta(minutes=59)


@pytest.mark.django_db
def test_a_claimed_job_is_not_claimed_by_a_second_worker():
    job, _ = counting_job()
    scheduler.ensure_job_rows({job.name: job})
    assert scheduler.claim(job, "w1") is True
    assert scheduler.claim(job, "w2") is False


@pytest.mark.django_db
def test_the_claim_of_a_crashed_worker_expires_and_another_takes_over():
    job, runs = counting_job()
    jobs = {job.name: job}
    scheduler.ensure_job_rows(jobs)
    assert scheduler.claim(job, "crashed")  # and never finishes
    later = timezone.now() + job.lease + timedelta(seconds=1)
    assert scheduler.claim(job, "w2", now=later) is True
    assert JobState.objects.get(name=job.name).locked_by == "w2"


@pytest.mark.django_db
def test_a_failing_job_is_recorded_and_does_not_stop_the_worker():
    def broken():
        raise ValueError("boom")

    job = scheduler.Job("test.broken", timedelta(minutes=1), broken)
    other, runs = counting_job("test.other")
    jobs = {job.name: job, other.name: other}
    scheduler.ensure_job_rows(jobs)
    assert scheduler.run_due_jobs("w1", jobs) == [job.name, other.name]
    assert JobState.objects.get(name=job.name).last_error == "ValueError"
    assert runs == [1]


@pytest.mark.django_db(transaction=True)
def test_workers_racing_for_the_same_job_run_it_exactly_once():
    job, runs = counting_job("test.race")
    jobs = {job.name: job}
    scheduler.ensure_job_rows(jobs)
    start = threading.Barrier(4)
    errors = []

    def worker(n):
        try:
            start.wait()
            scheduler.run_due_jobs(f"w{n}", jobs)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert runs == [1]
    assert JobState.objects.get(name=job.name).runs == 1


@pytest.mark.django_db(transaction=True)
def test_the_worker_loop_runs_due_jobs_and_stops_on_request():
    job, runs = counting_job("test.loop")
    stop = threading.Event()
    done = threading.Event()
    original = job.run

    def run_and_signal():
        result = original()
        done.set()
        return result

    looped = {job.name: scheduler.Job(job.name, job.every, run_and_signal)}
    thread = threading.Thread(target=scheduler.loop, args=(stop,), kwargs={"poll_seconds": 0.05, "jobs": looped})
    thread.start()
    assert done.wait(timeout=30)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive() and runs == [1]
