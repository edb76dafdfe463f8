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

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d /()-]{6,}\d")
_SECRET_QUERY = re.compile(r"(?i)((?:password|token|secret|key|code)=)[^&\s]+")
# One-time answer links carry their token in the path: never let a logged path show it.
_ANSWER_PATH = re.compile(r"(/answer/)[^\s\"'?]+")
_SAFE_EXTRA = {"event", "site_id", "org_id", "user_id", "object_id", "job", "worker", "status",
               "method", "path", "duration_ms", "count", "channel", "delivery", "error", "type"}
_STANDARD = set(vars(logging.makeLogRecord({})))


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
        record.msg = redact(message)
        record.args = None
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
                line[key] = value if isinstance(value, int | float | bool) else redact(str(value))
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)
