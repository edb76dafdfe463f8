"""Garbage collection for a web process that holds thousands of sockets.

Each open socket is about a hundred objects that Python's cycle collector tracks (measured: 1.08
million at 10,000 sockets). A collection of the oldest generation walks all of them and holds every
thread of the process meanwhile: 0.8 s at 10,000 sockets. Python starts one whenever the long-lived
objects have grown by a quarter, which is what happens while thousands of clients connect, e.g. after
a restart; in the fan-out benchmark one fell inside an alarm's transaction and delayed the alarm for
all 10,000 by 0.8 s.

So the process freezes what has survived a full collection (``gc.freeze()``: those objects are not
walked again), and later full collections only walk what is newer. Objects that become unreachable
by reference counting are still freed at once; only a reference cycle among frozen objects would
stay. To collect those too, the process unfreezes and collects everything itself, once in a while,
when the site has been quiet (no alarm event for a while), and freezes again.
"""

from __future__ import annotations

import gc
import time

#: A full collection by the process itself at most this often, and only when quiet for QUIET_SECONDS.
CLEANUP_SECONDS = 30 * 60
QUIET_SECONDS = 5 * 60


class GcPolicy:
    def __init__(self) -> None:
        self._full_seen = self._full_collections()
        self._cleaned_at = time.monotonic()
        self._busy_at = float("-inf")

    @staticmethod
    def _full_collections() -> int:
        return gc.get_stats()[2]["collections"]

    def busy(self) -> None:
        """An alarm event passed through: no deliberate full collection for a while."""
        self._busy_at = time.monotonic()

    def tick(self) -> str | None:
        """Call every few seconds. Returns what it did ("froze", "cleaned") or None."""
        now = time.monotonic()
        if now - self._cleaned_at >= CLEANUP_SECONDS and now - self._busy_at >= QUIET_SECONDS:
            self.cleanup()
            return "cleaned"
        full = self._full_collections()
        if full != self._full_seen:
            self._full_seen = full
            gc.freeze()  # what survived that collection is not walked again
            return "froze"
        return None

    def cleanup(self) -> None:
        """Collect everything, frozen objects included, then freeze the survivors."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._full_seen = self._full_collections()
        self._cleaned_at = time.monotonic()
