"""Django's SQLite backend, with the process's write transactions taking turns in a queue.

SQLite has one write lock per database file. A connection that wants it while another holds it polls:
SQLite's busy handler sleeps (up to 100 ms at a time) and tries again until the busy timeout. With a
few writers that is fine. With hundreds of request threads answering one alarm at the same moment,
the lock is free for a few microseconds between two transactions and whoever happens to poll then
wins; an unlucky thread can lose for longer than the timeout and its request fails with "database is
locked", although the database was never busier than a few milliseconds per answer.

Here every transaction (our settings begin them all with ``BEGIN IMMEDIATE``, so each takes the write
lock at its start) first waits for its turn on a lock in the process, then begins. Within one process
the write lock then passes from one transaction to the next at once, and a thread waits as long as the
transactions before it take, not as long as its luck. Other processes (a separate ``rallypoint
worker``) still meet at SQLite's lock with its busy timeout, as before.

Checkpoints: in WAL mode SQLite copies the log into the database file once the log holds 1,000 pages,
and the connection whose COMMIT crossed that mark does it before its COMMIT returns. An alarm to 10,000
people writes about 1,500 pages, so every such alarm paid for a checkpoint (about 20 ms) between its
commit and the moment its event could go out. The long-running processes (``rallypoint run``,
``rallypoint worker``) therefore start :func:`start_checkpointer`: one thread that checkpoints every
second on its own connection, without blocking readers or writers (``PASSIVE``); their connections then
checkpoint themselves only if the log grows past ``FALLBACK_CHECKPOINT_PAGES`` (the thread stuck).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import deque
from contextlib import contextmanager

from django.db import OperationalError
from django.db.backends.sqlite3 import base


class FairLock:
    """A lock that is handed to its waiters in the order they came (``threading.Lock`` is not: a thread
    that releases it and asks again at once usually wins again)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self, timeout: float) -> bool:
        with self._guard:
            if not self._held:
                self._held = True
                return True
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        if waiter.acquire(timeout=timeout):
            return True  # handed over by release()
        with self._guard:
            try:
                self._waiters.remove(waiter)
            except ValueError:
                return True  # handed over between the timeout and now: it is ours
            return False

    def release(self) -> None:
        with self._guard:
            if self._waiters:
                self._waiters.popleft().release()  # still held, now by the next in line
            else:
                self._held = False


#: database file → the lock that its transactions in this process queue on
_locks: dict[str, FairLock] = {}
_locks_guard = threading.Lock()


def _lock_for(name: str) -> FairLock:
    with _locks_guard:
        return _locks.setdefault(name, FairLock())


def wait_turn(lock: FairLock, timeout: float) -> None:
    if not lock.acquire(timeout):
        raise OperationalError(f"database is locked (waited {timeout:g} s for the transactions before)")


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")

log = logging.getLogger("rallypoint.db")

#: How often the checkpointer thread copies the write-ahead log into the database file.
CHECKPOINT_SECONDS = 1.0
#: With the checkpointer running, a committing connection checkpoints only past this many log pages
#: (80 MB at 4 KiB), so that a stuck checkpointer cannot let the log grow without end.
FALLBACK_CHECKPOINT_PAGES = 20_000

#: database file → the stop event of this process's checkpointer thread for it
_checkpointers: dict[str, threading.Event] = {}


def start_checkpointer(settings_dict: dict) -> threading.Event | None:
    """Checkpoint this SQLite database in a thread of this process (once per file); returns the event
    that stops it. Connections opened afterwards leave checkpoints to it. Not SQLite: nothing."""
    if settings_dict.get("ENGINE") != __package__:
        return None
    name = str(settings_dict["NAME"])
    with _locks_guard:
        if name not in _checkpointers:
            stop = _checkpointers[name] = threading.Event()
            threading.Thread(target=_checkpoint_loop, args=(name, stop), name="sqlite-checkpoint",
                             daemon=True).start()
        return _checkpointers[name]


def _checkpoint_loop(name: str, stop: threading.Event) -> None:
    failing = False
    connection = None
    while not stop.wait(CHECKPOINT_SECONDS):
        try:
            if connection is None:
                connection = sqlite3.connect(name, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            if failing:
                failing = False
                log.info("sqlite checkpoints work again")
        except sqlite3.Error as exc:
            if not failing:
                failing = True
                log.warning("sqlite checkpoint failed, retrying every %g s (%s)", CHECKPOINT_SECONDS,
                            type(exc).__name__)
            if connection is not None:
                connection.close()
                connection = None
    if connection is not None:
        connection.close()


class _Cursor(base.SQLiteCursorWrapper):
    """A write outside a transaction (``QuerySet.update()`` in autocommit mode) is a transaction of its
    own for SQLite: it queues like the others."""

    turn: FairLock
    timeout: float

    @contextmanager
    def _queued(self, query: str):
        if self.connection.in_transaction or query.lstrip()[:6].upper() not in _WRITES:
            yield
            return
        wait_turn(self.turn, self.timeout)
        try:
            yield
        finally:
            self.turn.release()

    def execute(self, query, params=None):
        with self._queued(query):
            return super().execute(query, params)

    def executemany(self, query, param_list):
        with self._queued(query):
            return super().executemany(query, param_list)


class DatabaseWrapper(base.DatabaseWrapper):
    _turn: FairLock | None = None

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if str(self.settings_dict["NAME"]) in _checkpointers:
            connection.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_CHECKPOINT_PAGES}")
        return connection

    def create_cursor(self, name=None):
        cursor = self.connection.cursor(factory=_Cursor)
        cursor.turn = _lock_for(str(self.settings_dict["NAME"]))
        cursor.timeout = self._timeout()
        return cursor

    def _timeout(self) -> float:
        return float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))

    def _start_transaction_under_autocommit(self):
        lock = _lock_for(str(self.settings_dict["NAME"]))
        timeout = self._timeout()
        wait_turn(lock, timeout)
        self._turn = lock
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._end_turn()
            raise

    def _end_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.release()

    def _commit(self):
        try:
            return super()._commit()
        finally:
            # A failed COMMIT leaves the transaction open; Django rolls it back next, and that ends the turn.
            if self.connection is None or not self.connection.in_transaction:
                self._end_turn()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._end_turn()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._end_turn()
