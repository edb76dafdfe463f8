"""CSV files people edit in a spreadsheet: cells defused against formulas on the way out, rows read back
with the line each starts on, and every problem reported by line (nothing is guessed)."""

from __future__ import annotations

import csv
import io

from django.conf import settings
from django.utils.translation import gettext as _


class ImportErrors(Exception):
    """Row-level problems of a CSV import; nothing was written."""

    def __init__(self, rows: list[tuple[int, str]]):
        super().__init__(f"{len(rows)} row(s) with errors")
        self.rows = rows


#: A spreadsheet reads a cell that starts with one of these as a formula (or as the start of one).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: str) -> str:
    """Defuse spreadsheet formulas: an apostrophe before a cell that would start with a formula character.

    Leading apostrophes are looked through, so that a value that really starts with "'=" keeps its
    apostrophe on the way back (see :func:`csv_unsafe`)."""
    return "'" + value if value.lstrip("'").startswith(FORMULA_STARTS) else value


def csv_unsafe(value: str) -> str:
    """The value :func:`csv_safe` defused (an apostrophe typed in a spreadsheet to keep "+49…" as text, too)."""
    return value[1:] if value.startswith("'") and value.lstrip("'").startswith(FORMULA_STARTS) else value


def csv_error(line: int, message: str) -> ImportErrors:
    return ImportErrors([(line, message)])


def _read_header(reader, required: set[str], columns: tuple[str, ...]) -> list[str]:
    header = [cell.strip() for cell in next(reader, [])]
    if not required <= set(header):
        raise csv_error(1, _("The first line must name the columns: %(columns)s") % {"columns": ", ".join(columns)})
    return header


def read_csv(text: str, *, required: set[str], columns: tuple[str, ...]) -> list[tuple[int, dict]]:
    """``(line, {column: value})`` per row of a CSV text; the line is where the row starts in the file.

    The first line names the columns and must name every one of ``required`` (``columns`` is what the
    message lists). Raises :class:`ImportErrors` for a text that is not a readable CSV file with a header,
    and for rows with more values than the header has columns."""
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise csv_error(line, _("This line contains a NUL character: the file is not a text file. Save it "
                                "as CSV (UTF-8) and try again."))
    sample = text[:2048]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows, errors, line = [], [], 1
    try:
        header = _read_header(reader, required, columns)
        line = reader.line_num + 1
        for record in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue  # an empty line
            if len(rows) + len(errors) >= settings.CSV_IMPORT_MAX_ROWS:
                raise csv_error(1, _("At most %(n)d rows can be imported at once.")
                                % {"n": settings.CSV_IMPORT_MAX_ROWS})
            if any(cell.strip() for cell in record[len(header):]):
                errors.append((start, _("This row has %(found)d values, but the first line names %(expected)d "
                                        "columns.") % {"found": len(record), "expected": len(header)}))
                continue
            rows.append((start, {name: csv_unsafe(cell.strip()) for name, cell in zip(header, record, strict=False)
                                 if name}))
    except csv.Error:
        # The reader stops at the first broken line (e.g. a value longer than the reader allows).
        raise csv_error(reader.line_num or line, _("This line cannot be read as CSV (a value is too long or "
                                                   "its quotes do not match).")) from None
    if errors:
        raise ImportErrors(errors)
    return rows
