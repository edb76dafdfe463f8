"""Threads outside the request cycle and the PostgreSQL connection pool.

Django hands a request's connection back to the pool when the request ends. A long-lived thread
(the worker's sending threads, the stream endpoint's database threads) must do the same after each
piece of work, or it keeps a connection of the pool for as long as it lives.
"""

from __future__ import annotations

from django.db import connection


def give_back() -> None:
    """Return this thread's PostgreSQL connection to the pool. On SQLite (no pool), nothing happens:
    each thread keeps its own connection, which costs the server nothing while it is idle."""
    if connection.connection is None or connection.in_atomic_block:
        return
    if getattr(connection, "pool", None) is not None:
        connection.close()
