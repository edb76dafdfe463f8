"""Many writes at the same moment: every accepted answer is recorded, none fails with a 500.

On SQLite the process's transactions queue for the one write lock in arrival order
(``rallypoint.lib.sqlite3``); a request that still cannot get it in time is told 503 "try again",
with nothing written. The burst test runs on PostgreSQL as well.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time

import pytest
from django.db import connection
from django.db.backends.sqlite3.base import DatabaseWrapper as StockSqlite
from django.test import Client
from psycopg_pool import PoolTimeout

from rallypoint.accounts import apptokens
from rallypoint.alarms import actions as alarm_actions
from rallypoint.alarms.models import AlarmEvent, AlarmRecipient
from rallypoint.lib.sqlite3 import base as sqlite_base
from rallypoint.lib.sqlite3.base import DatabaseWrapper as QueuedSqlite
from rallypoint.lib.sqlite3.base import FairLock, _lock_for
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario
from tests.population import add_people

sqlite_only = pytest.mark.skipif("connection.vendor != 'sqlite'", reason="SQLite's write lock")


def _wait_until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


def test_the_lock_goes_to_its_waiters_in_the_order_they_came():
    lock, order = FairLock(), []
    assert lock.acquire(1)
    threads = []
    for i in range(6):
        def wait(i=i):
            assert lock.acquire(10)
            order.append(i)
            lock.release()
        threads.append(threading.Thread(target=wait))
        threads[-1].start()
        _wait_until(lambda n=i + 1: len(lock._waiters) == n)  # queued before the next one comes
    lock.release()
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2, 3, 4, 5]
    assert lock.acquire(0.01), "free again after the last one"


def test_a_waiter_that_gives_up_leaves_the_queue():
    lock = FairLock()
    assert lock.acquire(1)
    assert not lock.acquire(0.05)
    assert not lock._waiters
    lock.release()
    assert lock.acquire(0.01)


def _writers(wrapper_class, settings_dict, *, threads: int, each: int, hold: float) -> tuple[list, int]:
    """``threads`` threads, each ``each`` transactions that write a row and hold the lock ``hold`` s."""
    errors: list[str] = []
    written = [0]

    def work():
        db = wrapper_class(settings_dict, alias="burst")
        try:
            for _ in range(each):
                try:
                    with _atomic(db):
                        with db.cursor() as cursor:
                            cursor.execute("INSERT INTO burst (v) VALUES (1)")
                        time.sleep(hold)
                    written[0] += 1
                except Exception as exc:  # noqa: BLE001 - counted, and the test shows them
                    errors.append(str(exc))
        finally:
            db.close()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(120)
    return errors, written[0]


class _atomic:
    """A transaction on a wrapper that is not in ``connections`` (``transaction.atomic`` needs an alias)."""

    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.ensure_connection()
        self.db._start_transaction_under_autocommit()

    def __exit__(self, kind, exc, tb):
        if kind is None:
            self.db.commit()
        else:
            self.db.rollback()


def _write_pages(db, pages: int = 1500) -> None:
    """One transaction that adds about ``pages`` pages to the log (a row of 3,000 bytes fills a page)."""
    with _atomic(db):
        with db.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS big (id INTEGER PRIMARY KEY, v BLOB)")
            cursor.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s) "
                           "INSERT INTO big (v) SELECT randomblob(3000) FROM n", [pages])


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_commits_leave_the_checkpoint_to_the_process_checkpointer(tmp_path, monkeypatch):
    """A COMMIT that takes the write-ahead log past 1,000 pages copies it into the database file before
    it returns (an alarm to 10,000 people: ~20 ms between its commit and its event going out). In
    ``rallypoint run`` and ``rallypoint worker`` a thread does that instead, every second."""
    monkeypatch.setattr(sqlite_base, "_checkpointers", {})
    settings_dict = {**connection.settings_dict, "NAME": str(tmp_path / "plain.sqlite3")}
    plain = QueuedSqlite(settings_dict, alias="plain")
    _write_pages(plain)
    plain.close()
    assert (tmp_path / "plain.sqlite3").stat().st_size > 1000 * 4096  # copied by the COMMIT itself

    # A checkpointer that will not run for an hour: the commit leaves the log as it is.
    monkeypatch.setattr(sqlite_base, "CHECKPOINT_SECONDS", 3600)
    idle = {**connection.settings_dict, "NAME": str(tmp_path / "idle.sqlite3")}
    stops = [sqlite_base.start_checkpointer(idle)]
    db = QueuedSqlite(idle, alias="idle")
    _write_pages(db)
    try:
        assert (tmp_path / "idle.sqlite3").stat().st_size < 100 * 4096
        assert (tmp_path / "idle.sqlite3-wal").stat().st_size > 1000 * 4096
        # One that runs: it copies the log into the database file on its own.
        monkeypatch.setattr(sqlite_base, "CHECKPOINT_SECONDS", 0.02)
        busy = {**connection.settings_dict, "NAME": str(tmp_path / "busy.sqlite3")}
        stops.append(sqlite_base.start_checkpointer(busy))
        assert sqlite_base.start_checkpointer(busy) is stops[-1]  # one thread per database file
        other = QueuedSqlite(busy, alias="busy")
        _write_pages(other)  # (kept open: closing the last connection would checkpoint, too)
        _wait_until(lambda: (tmp_path / "busy.sqlite3").stat().st_size > 1000 * 4096)
        other.close()
    finally:
        db.close()
        for stop in stops:
            stop.set()


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_writers_queues_instead_of_timing_out(tmp_path):
    """100 threads × 4 transactions of ~5 ms with a 1.5 s busy timeout: taking turns, a transaction
    waits for the ≤ 99 before it (~0.5 s). With SQLite's own busy handler alone (Django's stock
    backend) some of them lose the race for longer than 1.5 s and fail: seen in every one of 3 runs."""
    settings_dict = {**connection.settings_dict, "NAME": str(tmp_path / "burst.sqlite3"),
                     "OPTIONS": {**connection.settings_dict["OPTIONS"], "timeout": 1.5}}
    setup = QueuedSqlite(settings_dict, alias="burst")
    with setup.cursor() as cursor:
        cursor.execute("CREATE TABLE burst (id INTEGER PRIMARY KEY, v INTEGER)")
    setup.close()
    errors, written = _writers(QueuedSqlite, settings_dict, threads=100, each=4, hold=0.005)
    assert errors == [] and written == 400
    check = StockSqlite(settings_dict, alias="burst")
    with check.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM burst")
        assert cursor.fetchone()[0] == 400
    check.close()


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_a_request_that_cannot_get_the_write_lock_is_told_to_try_again(world):
    """Another transaction holds the lock longer than the busy timeout: 503 with Retry-After and a
    clear text, the answer is not recorded, and it goes through once the lock is free."""
    alarm = alarm_actions.trigger_alarm(site=world.a.site, scenario=fire_scenario(world.a.site),
                                        user=world.persona(Role.LEAD))[0]
    _row, token = apptokens.issue(user=world.persona(Role.EMPLOYEE), site=world.a.site, name="Phone")
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {token}")
    answer = f"/api/v1/alarms/{alarm.pk}/answer"
    turn = _lock_for(connection.settings_dict["NAME"])
    options = connection.settings_dict["OPTIONS"]
    old_timeout, options["timeout"] = options["timeout"], 0.2
    assert turn.acquire(1)  # as a long transaction elsewhere in the process would
    try:
        busy = client.post(answer, json.dumps({"answer": "accepted"}), content_type="application/json")
    finally:
        turn.release()
        options["timeout"] = old_timeout
    assert busy.status_code == 503 and busy["Retry-After"] == "2"
    assert "503 with Retry-After" in client.get("/api/openapi.json").json()["info"]["description"]
    assert "try again" in busy.json()["detail"]
    assert not AlarmRecipient.objects.filter(alarm=alarm, answer="accepted").exists()
    again = client.post(answer, json.dumps({"answer": "accepted"}), content_type="application/json")
    assert again.status_code == 200
    assert AlarmRecipient.objects.filter(alarm=alarm, answer="accepted").count() == 1


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's connection pool")
@pytest.mark.django_db(transaction=True)
def test_a_request_that_gets_no_database_connection_in_time_is_told_to_try_again(world):
    """Every connection of the process's pool is taken: the app gets 503 with Retry-After and nothing
    is recorded; a browser gets a page that says so, built without the database. Once a connection
    is free again, the same request goes through."""
    alarm = alarm_actions.trigger_alarm(site=world.a.site, scenario=fire_scenario(world.a.site),
                                        user=world.persona(Role.LEAD))[0]
    _row, token = apptokens.issue(user=world.persona(Role.EMPLOYEE), site=world.a.site, name="Phone")
    app = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {token}")
    browser = Client(raise_request_exception=False)
    browser.force_login(world.persona(Role.EMPLOYEE))
    pool = connection.pool
    taken = []

    def in_own_thread(request):
        """Like every request of the server, in a thread of its own (this thread's connection is the test's)."""
        result = []

        def run():
            try:
                result.append(request())
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(30)
        return result[0]

    def answer():
        return app.post(f"/api/v1/alarms/{alarm.pk}/answer", json.dumps({"answer": "accepted"}),
                        content_type="application/json")

    old_timeout, pool.timeout = pool.timeout, 0.2
    try:
        with contextlib.suppress(PoolTimeout):
            while True:  # everything the pool will give, as a burst of slow requests would hold it
                taken.append(pool.getconn(timeout=0.2))
        busy = in_own_thread(answer)
        tries = []
        give = pool.getconn
        pool.getconn = lambda *args, **kwargs: tries.append(1) or give(*args, **kwargs)
        page = in_own_thread(lambda: browser.get("/"))
    finally:
        pool.__dict__.pop("getconn", None)
        for conn in taken:
            pool.putconn(conn)
        pool.timeout = old_timeout
    assert busy.status_code == 503 and busy["Retry-After"] == "2"
    assert "try again" in busy.json()["detail"]
    assert page.status_code == 503 and page["Retry-After"] == "2"
    assert "could not reach its database" in page.content.decode()
    # Django's session middleware looks for the session on the way in and again on the way out; the page
    # itself asks for no connection (a page built like the others waited once per middleware layer).
    assert len(tries) == 2
    assert not AlarmRecipient.objects.filter(alarm=alarm, answer="accepted").exists()
    assert in_own_thread(answer).status_code == 200
    assert AlarmRecipient.objects.filter(alarm=alarm, answer="accepted").count() == 1
    assert in_own_thread(lambda: browser.get("/")).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_everyone_answering_at_once_is_all_recorded(world):
    """60 people accept the same alarm in the same instant through the API (one thread each).
    ``test_realtime.py`` sends 150 at once through the real server."""
    site = world.a.site
    people = add_people(site, 60, prefix="burst")
    alarm = alarm_actions.trigger_alarm(site=site, scenario=fire_scenario(site, channels=("inapp",)),
                                        user=world.persona(Role.LEAD))[0]
    tokens = [apptokens.issue(user=m.user, site=site, name="Phone")[1] for m in people]
    barrier = threading.Barrier(len(tokens))
    statuses: list[int] = []

    def accept(token):
        try:
            client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
            barrier.wait(timeout=30)
            response = client.post(f"/api/v1/alarms/{alarm.pk}/answer", json.dumps({"answer": "accepted"}),
                                   content_type="application/json")
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(token,)) for token in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert statuses == [200] * 60
    accepted = AlarmRecipient.objects.filter(alarm=alarm, membership__in=people, answer="accepted").count()
    assert accepted == 60
    assert AlarmEvent.objects.filter(alarm=alarm, kind="accepted").count() == 60
    assert alarm_actions.counts(alarm)["accepted"] == 60
