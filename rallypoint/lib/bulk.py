"""Writing many rows at once, for the hot paths of an alarm (its recipients, deliveries and attempts)."""

from __future__ import annotations

from django.db import connection


def insert_rows(table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert ``rows`` (values already adapted for the database) into ``table``: COPY on PostgreSQL, one
    prepared statement on SQLite. Neither builds a model instance or SQL per row, as ``bulk_create``
    does. ``table`` and ``columns`` are our own names, never input."""
    if not rows:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608  # nosec B608
                               rows)
