"""The registry of personal data: what each model holds about people, how long, and how it goes.

Each model that holds personal data declares it right beside the model, with :func:`declare`:

- ``fields``: its personal fields (values about a person: a name, an address, a note, a network address);
- ``person``: the references that tie a row to a person (a membership or an account), so that the row is
  personal even without a personal field (a person's answer to an alarm, their presence);
- ``kept``: how long, as the name of a setting (``"AUDIT_RETENTION_DAYS"``; ``unit`` says whether it counts
  days or hours), or ``None`` when a row lives as long as what it belongs to (a person's membership, a
  site's structure); ``why`` says why, in words;
- ``purge``: the dotted path of ``purge(now) -> int`` that deletes or anonymises what is past its time;
- ``erased``: how a row goes when its person is forgotten or its time is up, in words for the Art. 32 report
  and docs/privacy.md;
- ``forget``: what "forget this person" (:mod:`rallypoint.people.forget`) does to the rows that ``person``
  ties to them, one word for all references or one per reference: ``"delete"`` (the person's own things: a
  device, a messenger address, a duty; a membership in a group), ``"detach"`` (the reference is set empty:
  a visitor's host), or ``"keep"`` (a documented action: an answer, a status report, an audit entry; it
  shows as "deleted person #N" until the person's last row goes, ``RP_FORGOTTEN_DAYS`` later).

The scheduled job ``personal_data.purge`` runs every declared purge (:func:`purge_all`), each once.
``tests/test_personal_data.py`` fails when a model holds a personal field or refers to a person and is not
declared here, so a new model cannot forget its data. Sentry's per-model deletion tasks in one registry
(``sentry/deletions``) are the model.

Handlers are named by dotted path because models may not import the actions that act on them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

log = logging.getLogger("rallypoint.personal_data")


@dataclass(frozen=True)
class Declaration:
    model: type
    fields: tuple[str, ...]
    person: tuple[str, ...]
    kept: str | None
    unit: str
    why: Promise | str
    erased: Promise | str
    purge: tuple[str, ...]
    forget: tuple[tuple[str, str], ...] = ()

    def forget_op(self, ref: str) -> str:
        return dict(self.forget)[ref]

    @property
    def label(self) -> str:
        return self.model._meta.label

    def kept_for(self) -> tuple[int, str] | None:
        """The retention as this installation sets it, with its unit ("days" or "hours"), or None (as long as
        what it belongs to)."""
        return (getattr(settings, self.kept), self.unit) if self.kept else None


_registry: dict[type, Declaration] = {}


FORGET_OPS = ("delete", "detach", "keep")


def declare(model: type, *, fields: tuple[str, ...] = (), person: tuple[str, ...] = (), kept: str | None = None,
            unit: str = "days", why: Promise | str, erased: Promise | str, purge: str | tuple[str, ...] = (),
            forget: str | dict[str, str] | None = None) -> None:
    """Declare what ``model`` holds about people (see the module's description)."""
    ops = {ref: forget for ref in person} if isinstance(forget, str) else dict(forget or {})
    if set(ops) != set(person) or not set(ops.values()) <= set(FORGET_OPS):
        raise ValueError(f"{model._meta.label}: say for each of {person} what forgetting the person does "
                         f"(one of {FORGET_OPS})")
    if model in _registry:
        raise ValueError(f"{model._meta.label} is declared twice")
    if kept is not None and not hasattr(settings, kept):
        raise ValueError(f"{model._meta.label}: there is no setting {kept}")
    if unit not in ("days", "hours"):
        raise ValueError(f"{model._meta.label}: retention counts days or hours, not {unit}")
    purge = (purge,) if isinstance(purge, str) else tuple(purge)
    _registry[model] = Declaration(model, tuple(fields), tuple(person), kept, unit, why, erased, purge,
                                   tuple(ops.items()))


def declarations() -> list[Declaration]:
    return sorted(_registry.values(), key=lambda d: d.label)


def declaration_of(model: type) -> Declaration | None:
    return _registry.get(model)


def purges() -> dict[str, Callable[[datetime], int]]:
    """Every declared purge, each once (one handler may serve several models), by dotted path."""
    return {path: import_string(path) for path in sorted({p for d in _registry.values() for p in d.purge})}


def purge_all(now: datetime | None = None) -> dict[str, int]:
    """Run every declared purge; returns the rows each deleted or anonymised. One failing purge does not
    stop the others: it is logged, and the job runs again at its next turn."""
    now = now or timezone.now()
    done: dict[str, int] = {}
    for path, purge in purges().items():
        try:
            done[path] = purge(now)
        except Exception:
            log.exception("a purge of personal data failed", extra={"job": path})
    return done


def _kept_words(declared: Declaration) -> str:
    kept = declared.kept_for()
    if kept is None:
        return str(_("as long as what it belongs to"))
    amount, unit = kept
    words = ngettext("%(n)d day", "%(n)d days", amount) if unit == "days" else ngettext(
        "%(n)d hour", "%(n)d hours", amount)
    return f"{words % {'n': amount}} (`{declared.kept}`)"


def _forget_words(declared: Declaration) -> str:
    return ", ".join(f"`{ref}`: {op}" for ref, op in declared.forget) or "–"


def render_markdown() -> str:
    """docs/personal-data.md: every declaration as a table row, in the active language."""
    lines = [
        "# Personal data: what Rallypoint keeps, and for how long",
        "",
        "Generated from the declarations beside the models (`rallypoint/people/personal_data.py`) by",
        "`make personal-data-doc`; `tests/test_personal_data.py` fails when this page is stale or a model with",
        "personal data is not declared. Retention settings are shown with this installation's defaults; the",
        "job `personal_data.purge` applies them every 15 minutes.",
        "",
        "\"Forgotten\" says what deleting a person (at their own wish, or by an administrator after a second one",
        "approved) does to each reference: *delete* the row, *detach* the reference, or *keep* the row as a",
        "documented action of \"deleted person #N\" until the person's last row goes (`RP_FORGOTTEN_DAYS`).",
        "",
        "| Table | Personal fields | Tied to a person by | Kept | Why | How it goes | Forgotten |",
        "|---|---|---|---|---|---|---|",
    ]
    for declared in declarations():
        fields = ", ".join(f"`{f}`" for f in declared.fields) or "–"
        person = ", ".join(f"`{f}`" for f in declared.person) or "–"
        lines.append(f"| `{declared.model._meta.db_table}` | {fields} | {person} | {_kept_words(declared)} | "
                     f"{declared.why} | {declared.erased} | {_forget_words(declared)} |")
    return "\n".join(lines) + "\n"
