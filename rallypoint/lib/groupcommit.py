"""Many small writes as few transactions: a writer thread commits whatever queued up meanwhile at once.

When thousands of phones answer an alarm or report "safe" in the same minute, each write is a
transaction of a millisecond or two, and SQLite has one write lock per file: one after the other, the
transactions themselves become the limit. A :class:`GroupCommit` has one writer thread per process; a
caller hands it an item and waits; the writer takes every item that has queued up, runs the handler on all
of them in ONE transaction, and hands each caller its result. A caller thus waits for at most two
transactions, and the database sees one transaction per group instead of one per item.

If the group's transaction fails, each item is written again on its own, so one bad item cannot lose the
others; its caller gets the exception.

Only threads that say so (:func:`group_here`: the stream endpoint's request threads and the web process's
request threads, many of them waiting at once; see :mod:`rallypoint.web.asgi_handler`) hand their items to
the writer; any other caller (a command, the worker, a test) writes its item right there, in its own
transaction. Inside an open transaction (a composed action, a test's transaction) the item is written in
the caller's thread too: the writer's own connection would not see what the caller has not committed yet.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

from django.db import connections, transaction

from rallypoint.lib.dbpool import before_work, give_back

log = logging.getLogger("rallypoint.groupcommit")

#: The most items written in one transaction.
MAX_GROUP = 500


_local = threading.local()


def group_here() -> None:
    """From now on this thread's items go to the writer (a thread pool's initializer)."""
    _local.grouping = True


class GroupCommit:
    """``handler(items) -> results``: writes a list of items (inside a transaction it does not open itself)
    and returns one result per item, in order; a result that is an exception (an item refused without
    writing anything) is raised to that item's caller."""

    def __init__(self, name: str, handler: Callable[[list], list]):
        self.name = name
        self.handler = handler
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, item, timeout: float = 30.0):
        """Write ``item`` and return its result (or raise its exception)."""
        if transaction.get_connection().in_atomic_block or not getattr(_local, "grouping", False):
            return self._write_here(item)
        future: Future = Future()
        self._ensure_thread()
        self._queue.put((item, future))
        return future.result(timeout)

    def submit_many(self, items: list, timeout: float = 30.0) -> list:
        """Write several items (all queued at once, so they share transactions); returns each item's result
        or the exception that refused it, in order."""
        if transaction.get_connection().in_atomic_block or not getattr(_local, "grouping", False):
            with transaction.atomic():
                return self.handler(list(items))
        futures = []
        self._ensure_thread()
        for item in items:
            future: Future = Future()
            self._queue.put((item, future))
            futures.append(future)
        results = []
        for future in futures:
            try:
                results.append(future.result(timeout))
            except Exception as exc:
                results.append(exc)
        return results

    def _write_here(self, item):
        with transaction.atomic():
            result = self.handler([item])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=f"write-{self.name}", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_GROUP:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            before_work()
            try:
                self._write(batch)
            finally:
                give_back()

    def _write(self, batch: list) -> None:
        items = [item for item, _future in batch]
        try:
            with transaction.atomic():
                results = self.handler(items)
        except Exception as exc:
            connections["default"].close_if_unusable_or_obsolete()
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            log.warning("group write failed: writing its items one by one", extra={"job": self.name,
                                                                                 "count": len(batch)})
            for one in batch:
                self._write([one])
            return
        for (_item, future), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):  # refused without writing (no permission, bad input)
                future.set_exception(result)
            else:
                future.set_result(result)
