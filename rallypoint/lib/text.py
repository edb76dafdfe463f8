"""Text that comes from outside (forms, JSON, CSV, a fire panel), made safe to store and show.

Control characters are stripped: a stray byte from a panel's serial line must never make the
database refuse an alarm (PostgreSQL refuses NUL in text columns, and nobody can read the others).
Tab, line feed and carriage return stay; they are text. A lone surrogate (``"\\ud800"`` in JSON) is
no character at all and cannot be stored as UTF-8: such input is refused, not guessed at.
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class NotText(ValueError):
    """The value holds a lone surrogate: it is not Unicode text."""


def strip_controls(text: str) -> str:
    """``text`` without control characters other than tab, line feed and carriage return."""
    return _CONTROL.sub("", text)


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def has_lone_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def clean_text(text: str) -> str:
    """``text`` without control characters; :class:`NotText` if it holds a lone surrogate."""
    if has_lone_surrogate(text):
        raise NotText("lone surrogate")
    return strip_controls(text)


def clean_data(value):
    """Every string in a decoded JSON document (keys included) through :func:`clean_text`."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_data(item) for item in value]
    if isinstance(value, dict):
        return {clean_data(key): clean_data(item) for key, item in value.items()}
    return value
