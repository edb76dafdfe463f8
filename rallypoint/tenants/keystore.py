"""The key store: each person's data key, kept apart from the database it protects (crypto-shredding).

A person's personal fields are encrypted under a data key of their own (``p1`` tokens, see
:mod:`rallypoint.lib.crypto`). The data keys live here, wrapped by the key ring, and *not* in the main
database: a backup of the database holds no data key, so a person forgotten after the backup was taken
cannot be brought back by restoring it. Destroying a key is final. What is kept instead is the handle
(a random name, not personal) in the list of forgotten keys, so that a restored backup can be told which
people to forget again (:func:`rallypoint.people.forget.reapply`).

Where: ``RP_PERSON_KEYSTORE``, by default ``person-keys.sqlite3`` in the data directory, or a
``postgresql://`` URL of a database of its own (never the main one). Its backups must be kept no longer
than the erasure deadline (``RP_FORGOTTEN_DAYS``), and losing it loses every person's data: see
docs/privacy.md.

SQLite: ``secure_delete`` overwrites a deleted key in the file, ``synchronous=FULL`` keeps a key that was
written through a power cut, and the write-ahead log is truncated after each destruction. PostgreSQL:
the table is vacuumed after each destruction, so the deleted row's space is reused.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from rallypoint.lib.crypto import check_handle
from rallypoint.lib.env import ConfigError

CHUNK = 500  # handles per statement (SQLite allows 32,766 parameters; PostgreSQL 65,535)


class KeyForgotten(Exception):
    """The handle was destroyed: the person was forgotten."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _chunks(handles: Iterable[str]) -> Iterable[list[str]]:
    batch: list[str] = []
    for handle in handles:
        batch.append(check_handle(handle))
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


class _Store:
    """What both kinds of store do; a subclass says how to connect and how its SQL differs."""

    mark = "?"

    def __init__(self) -> None:
        self._local = threading.local()

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            self._create_tables(conn)
        return conn

    def _create_tables(self, conn) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS data_keys (handle TEXT PRIMARY KEY, wrapped TEXT NOT NULL, "
                     "created_at TEXT NOT NULL)")
        conn.execute("CREATE TABLE IF NOT EXISTS forgotten (handle TEXT PRIMARY KEY, at TEXT NOT NULL)")

    def _fetch(self, conn, sql: str, params: list) -> list:
        return conn.execute(sql, params).fetchall()

    def _marks(self, n: int) -> str:
        return ", ".join([self.mark] * n)

    def get_many(self, handles: Iterable[str]) -> dict[str, str]:
        """``{handle: wrapped key}`` for the handles that have a key."""
        found: dict[str, str] = {}
        conn = self._conn()
        for batch in _chunks(handles):
            # Only placeholders are formatted into the statement; the handles are parameters.
            sql = f"SELECT handle, wrapped FROM data_keys WHERE handle IN ({self._marks(len(batch))})"  # noqa: S608  # nosec B608
            found.update(self._fetch(conn, sql, batch))
        return found

    def forgotten(self, handles: Iterable[str]) -> set[str]:
        """Which of ``handles`` were destroyed."""
        gone: set[str] = set()
        conn = self._conn()
        for batch in _chunks(handles):
            sql = f"SELECT handle FROM forgotten WHERE handle IN ({self._marks(len(batch))})"  # noqa: S608  # nosec B608
            gone.update(row[0] for row in self._fetch(conn, sql, batch))
        return gone

    def all_forgotten(self) -> set[str]:
        return {row[0] for row in self._fetch(self._conn(), "SELECT handle FROM forgotten", [])}

    def handles(self) -> list[str]:
        return [row[0] for row in self._fetch(self._conn(), "SELECT handle FROM data_keys ORDER BY handle", [])]


class SqliteKeyStore(_Store):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"SqliteKeyStore({str(self.path)!r})"

    def _connect(self):
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
        try:
            self.path.chmod(0o600)
        except OSError:
            pass
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "secure_delete=ON", "busy_timeout=30000"):
            conn.execute(f"PRAGMA {pragma}")
        return conn


    def add(self, handle: str, wrapped: str) -> str:
        """Store a new key; if another process stored one for this handle first, theirs wins and is returned.
        :class:`KeyForgotten` if the handle was destroyed: a forgotten person gets no new key."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM forgotten WHERE handle = ?", [check_handle(handle)]).fetchone():
                raise KeyForgotten(handle)
            conn.execute("INSERT OR IGNORE INTO data_keys (handle, wrapped, created_at) VALUES (?, ?, ?)",
                         [handle, wrapped, _now()])
            stored = conn.execute("SELECT wrapped FROM data_keys WHERE handle = ?", [handle]).fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return stored

    def add_many(self, pairs: list[tuple[str, str]]) -> dict[str, str]:
        """:meth:`add` for many keys in one transaction; handles that were forgotten are left out."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            gone = self.forgotten(h for h, _ in pairs)
            conn.executemany("INSERT OR IGNORE INTO data_keys (handle, wrapped, created_at) VALUES (?, ?, ?)",
                             [(h, w, _now()) for h, w in pairs if h not in gone])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return self.get_many(h for h, _ in pairs)

    def replace_wrapped(self, handle: str, wrapped: str) -> None:
        self._conn().execute("UPDATE data_keys SET wrapped = ? WHERE handle = ?", [wrapped, check_handle(handle)])

    def destroy(self, handles: Iterable[str]) -> int:
        """Delete the keys for good and remember their handles as forgotten; returns how many were deleted."""
        conn = self._conn()
        deleted = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            for batch in _chunks(handles):
                marks = self._marks(len(batch))
                deleted += conn.execute(f"DELETE FROM data_keys WHERE handle IN ({marks})", batch).rowcount  # noqa: S608  # nosec B608
                conn.executemany("INSERT OR IGNORE INTO forgotten (handle, at) VALUES (?, ?)",
                                 [(h, _now()) for h in batch])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        # The deleted cells are zeroed (secure_delete); the log's older copies of the page go with the log.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted


class PostgresKeyStore(_Store):
    mark = "%s"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def __repr__(self) -> str:
        return "PostgresKeyStore(…)"  # the URL may hold a password

    def _connect(self):
        import psycopg  # only an installation that keeps its keys in PostgreSQL needs the driver loaded here

        return psycopg.connect(self.url, autocommit=True)


    def add(self, handle: str, wrapped: str) -> str:
        conn = self._conn()
        with conn.transaction():
            conn.execute("LOCK TABLE forgotten IN SHARE MODE")
            if conn.execute("SELECT 1 FROM forgotten WHERE handle = %s", [check_handle(handle)]).fetchone():
                raise KeyForgotten(handle)
            conn.execute("INSERT INTO data_keys (handle, wrapped, created_at) VALUES (%s, %s, %s) "
                         "ON CONFLICT (handle) DO NOTHING", [handle, wrapped, _now()])
            return conn.execute("SELECT wrapped FROM data_keys WHERE handle = %s", [handle]).fetchone()[0]

    def add_many(self, pairs: list[tuple[str, str]]) -> dict[str, str]:
        conn = self._conn()
        with conn.transaction():
            conn.execute("LOCK TABLE forgotten IN SHARE MODE")
            gone = self.forgotten(h for h, _ in pairs)
            conn.cursor().executemany("INSERT INTO data_keys (handle, wrapped, created_at) VALUES (%s, %s, %s) "
                                      "ON CONFLICT (handle) DO NOTHING",
                                      [(h, w, _now()) for h, w in pairs if h not in gone])
        return self.get_many(h for h, _ in pairs)

    def replace_wrapped(self, handle: str, wrapped: str) -> None:
        self._conn().execute("UPDATE data_keys SET wrapped = %s WHERE handle = %s", [wrapped, check_handle(handle)])

    def destroy(self, handles: Iterable[str]) -> int:
        conn = self._conn()
        deleted = 0
        with conn.transaction():
            for batch in _chunks(handles):
                cur = conn.execute(f"DELETE FROM data_keys WHERE handle IN ({self._marks(len(batch))})",  # noqa: S608  # nosec B608
                                   batch)
                deleted += cur.rowcount
                conn.cursor().executemany("INSERT INTO forgotten (handle, at) VALUES (%s, %s) "
                                          "ON CONFLICT (handle) DO NOTHING", [(h, _now()) for h in batch])
        conn.execute("VACUUM data_keys")
        return deleted


def _same_database(a: str, b: str) -> bool:
    def where(url: str) -> tuple:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        return ("localhost" if host in ("127.0.0.1", "::1") else host, parts.port or 5432, parts.path.strip("/"))
    return where(a) == where(b)


def open_store(where: str, *, main_database: str = "") -> _Store:
    """The store named by ``RP_PERSON_KEYSTORE``: a file path (SQLite) or a ``postgresql://`` URL."""
    if where.startswith(("postgresql://", "postgres://")):
        if main_database and _same_database(where, main_database):
            raise ConfigError("RP_PERSON_KEYSTORE must not be the main database: a backup of it would hold the keys")
        return PostgresKeyStore(where)
    if "://" in where:
        raise ConfigError("RP_PERSON_KEYSTORE is a file path or a postgresql:// URL")
    return SqliteKeyStore(Path(where))
