"""Threads outside the request cycle and the PostgreSQL connection pool.

Django hands a request's connection back to the pool when the request ends. A long-lived thread
(the worker's loops and sending threads, the stream endpoint's database threads) must do the same after
each piece of work (:func:`give_back`), or it keeps a connection of the pool for as long as it lives,
and check its connection before the next piece (:func:`before_work`).
"""

from __future__ import annotations

from django.db import close_old_connections, connection


def before_work() -> None:
    """Before a piece of work in a long-lived thread. PostgreSQL: drop a connection that is broken or too
    old (Django's usual rules). SQLite: keep the thread's own connection; with ``CONN_MAX_AGE`` 0 Django
    would close and reopen it every time, and opening one (with its PRAGMAs) was a fifth of a stream
    handshake's time while 10,000 clients connected."""
    if connection.vendor != "sqlite" or connection.connection is None:
        close_old_connections()


def give_back() -> None:
    """Return this thread's PostgreSQL connection to the pool. On SQLite (no pool), nothing happens:
    each thread keeps its own connection, which costs the server nothing while it is idle."""
    if connection.connection is None or connection.in_atomic_block:
        return
    if getattr(connection, "pool", None) is not None:
        connection.close()
