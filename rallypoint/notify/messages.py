"""What a recipient is told: one :class:`Message` per delivery, in the recipient's language."""

from __future__ import annotations

import dataclasses
import string

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from rallypoint.alarms import links
from rallypoint.alarms.models import Alarm, AlarmRecipient
from rallypoint.notify.channels.base import Message

SHORT_LIMIT = 300


#: The placeholders of a scenario's message, filled in by :func:`fill_template`.
PLACEHOLDERS = ("scenario", "level", "location", "site")


def check_template(template: str) -> None:
    """Refuse a message text with a placeholder :func:`fill_template` does not fill (``{unknown}``,
    ``{}``, ``{site.name}``, ``{site:>9}``) or a lone brace: the recipients would read it as it is."""
    known = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        raise ValidationError(_("A brace is not closed or not opened. Placeholders are written like {site}; "
                                "for a brace itself, write it twice: {{ or }}.")) from None
    unknown: dict[str, None] = {}
    for _literal, name, spec, conversion in parts:
        if name is not None and (name not in PLACEHOLDERS or spec or conversion):
            unknown["{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"] = None
    if unknown:
        raise ValidationError(ngettext(
            "Unknown placeholder %(found)s. The message can use %(known)s; for a brace itself, write it twice: "
            "{{ or }}.",
            "Unknown placeholders %(found)s. The message can use %(known)s; for a brace itself, write it twice: "
            "{{ or }}.", len(unknown)) % {"found": ", ".join(unknown), "known": known})


class _Template(string.Formatter):
    """``str.format`` that leaves unknown or malformed placeholders as they are (texts saved before
    :func:`check_template` refused them)."""

    def get_value(self, key, args, kwargs):
        return kwargs.get(key, "{" + str(key) + "}")

    def format_field(self, value, format_spec):
        return str(value)


def fill_template(template: str, alarm: Alarm) -> str:
    values = {"scenario": alarm.scenario.name, "level": alarm.level.name,
              "location": alarm.location_text or _("place not given"), "site": alarm.site.name}
    try:
        return _Template().vformat(template, (), values)
    except (ValueError, IndexError):
        return template


def _subject(alarm: Alarm, event: str) -> str:
    title = f"{alarm.scenario.name} — {alarm.level.name}"
    prefix = {
        "updated": _("Update"), "level_raised": _("Level raised"), "escalated": _("Reminder"),
        "ended": _("All clear"),
    }.get(event)
    if prefix:
        title = f"{prefix}: {title}"
    if alarm.is_drill:
        title = f"{_('DRILL')} · {title}"
    return title


#: Stands for a recipient's answer link in a message rendered once for many recipients.
_LINK_PLACEHOLDER = "https://answer-link.invalid/rallypoint"


def render_shared(alarm: Alarm, *, event: str, role: str, language: str) -> Message:
    """The message for everyone with this role and language; the answer link is a placeholder.

    ``alarm`` must come with scenario, level and site loaded. Rendering the templates is the
    expensive part of sending, so the worker does it once per batch and kind of recipient.
    """
    language = language or settings.LANGUAGE_CODE
    with translation.override(language):
        subject = _subject(alarm, event)
        body = fill_template(alarm.scenario.message_template, alarm)
        instruction = alarm.scenario.instruction_for(role) if event != "ended" else ""
        open_alarm = event != "ended" and alarm.is_active
        evacuating = open_alarm and bool(alarm.scenario.evacuates)
        wants_answer = open_alarm and (alarm.level.requires_acceptance or evacuating)
        url = settings.BASE_URL + reverse("alarms:detail", args=[alarm.pk])
        answer_url = _LINK_PLACEHOLDER if wants_answer else ""
        context = {"alarm": alarm, "subject": subject, "body": body, "instruction": instruction, "url": url,
                   "answer_url": answer_url, "event": event, "is_drill": alarm.is_drill, "evacuating": evacuating}
        text = render_to_string("notify/message.txt", context).strip()
        html = render_to_string("notify/message.html", context)
    return Message(delivery_key="", alarm_id=alarm.pk, site_id=alarm.site_id, event=event, subject=subject,
                   text=text, short=_short_head(subject, alarm), html=html, url=url, answer_url=answer_url,
                   priority=alarm.scenario.priority, is_drill=alarm.is_drill, silent=alarm.scenario.silent,
                   color=alarm.scenario.color, language=language,
                   extra={"body": body, "actions": _actions(evacuating, wants_answer)})


def _actions(evacuating: bool, wants_answer: bool) -> list[dict]:
    """The two buttons of a push notification, which answer with the recipient's one-time link."""
    if evacuating:
        return [{"action": "safe", "title": _("I'm safe")}, {"action": "need_help", "title": _("I need help")}]
    if wants_answer:
        return [{"action": "accepted", "title": _("Accept")}, {"action": "declined", "title": _("Decline")}]
    return []


def personalise(shared: Message, recipient: AlarmRecipient, *, delivery_key: str,
                answer_url: str | None = None) -> Message:
    """One recipient's message: their own answer link (``answer_url`` when already made for them) and the
    delivery's key."""
    if not shared.answer_url:
        answer_url = ""
    elif answer_url is None:
        answer_url = links.answer_url(recipient)
    return dataclasses.replace(
        shared, delivery_key=delivery_key, answer_url=answer_url,
        text=shared.text.replace(_LINK_PLACEHOLDER, answer_url),
        html=shared.html.replace(_LINK_PLACEHOLDER, answer_url),
        short=_short(shared.short, answer_url))


def render(alarm: Alarm, recipient: AlarmRecipient, *, event: str, delivery_key: str, language: str) -> Message:
    """The message for one recipient (see :func:`render_shared`)."""
    shared = render_shared(alarm, event=event, role=recipient.membership.role, language=language)
    return personalise(shared, recipient, delivery_key=delivery_key)


def _short_head(subject: str, alarm: Alarm) -> str:
    parts = [subject]
    if alarm.location_text:
        parts.append(alarm.location_text)
    if alarm.state == Alarm.State.ENDED and alarm.end_reason:
        parts.append(alarm.end_reason)
    return " · ".join(parts)


def _short(head: str, answer_url: str) -> str:
    """At most SHORT_LIMIT characters: the head, shortened if need be, and the whole link."""
    tail = f" {answer_url}" if answer_url else ""
    room = SHORT_LIMIT - len(tail)
    if len(head) > room:
        head = head[: room - 1] + "…"
    return head + tail
