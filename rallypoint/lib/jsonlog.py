"""Structured JSON log lines with a redaction filter.

Log lines must never carry personal data (seed: "Es werden zu keinem Zeitpunkt
personenbezogene Daten geloggt"). Code logs identifiers, not values; this
filter is the safety net: it masks anything shaped like an e-mail address,
phone number or credential, and drops arguments that are not plain scalars.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

# Every pattern here must take time linear in the text: a log line can hold what a client sent (a path, a
# Host header), and the filter runs while the logging thread holds the interpreter. The look-behind lets a
# match start only where a run of address characters starts; without it, each of n characters of a long
# run started a scan to the run's end (n² steps: 8 s for 20,000 characters, during which no alarm went out).
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d /()-]{6,}\d")
_SECRET_QUERY = re.compile(r"(?i)((?:password|token|secret|key|code)=)[^&\s]+")
# One-time answer links and wall-screen links carry their secret in the path: never let a logged path show it.
_ANSWER_PATH = re.compile(r"(/answer/|/display/)[^\s\"'?]+")
_SAFE_EXTRA = {"event", "site_id", "org_id", "user_id", "object_id", "job", "worker", "status",
               "method", "path", "duration_ms", "count", "channel", "delivery", "error", "type"}
_STANDARD = set(vars(logging.makeLogRecord({})))
#: A line's message, traceback and extra values are cut to these lengths (characters) before they are
#: redacted and written: a client controls some of them, and nobody reads 60 KB of a path anyway.
MAX_MESSAGE = 2000
MAX_TRACEBACK = 8000
MAX_EXTRA = 300


def bounded(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, without a word cut in half at the end (half an address
    would no longer look like one to the patterns below)."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(None, 1)[0] + " …[cut]" if " " in text[:limit] else "…[cut]"


def redact(text: str) -> str:
    text = _EMAIL.sub("[email]", text)
    text = _SECRET_QUERY.sub(r"\1[redacted]", text)
    text = _ANSWER_PATH.sub(r"\1[redacted]", text)
    return _PHONE.sub("[number]", text)


class RedactionFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the line
            message = str(record.msg)
        record.msg = redact(bounded(message, MAX_MESSAGE))
        record.args = None
        if str(record.name).startswith("django.security"):
            # Reports of suspicious requests (a foreign Host header, a forged CSRF token): the traceback
            # says nothing about our code and repeats what the client sent.
            record.exc_info = record.exc_text = None
        for key in list(vars(record)):
            if key not in _STANDARD and key not in _SAFE_EXTRA and key != "message":
                delattr(record, key)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in _SAFE_EXTRA:
            if hasattr(record, key):
                value = getattr(record, key)
                line[key] = value if isinstance(value, int | float | bool) else redact(bounded(str(value), MAX_EXTRA))
        if record.exc_info:
            line["exc"] = redact(bounded(self.formatException(record.exc_info), MAX_TRACEBACK))
        return json.dumps(line, ensure_ascii=False)
