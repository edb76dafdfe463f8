"""What a recipient is told: one :class:`Message` per delivery, in the recipient's language."""

from __future__ import annotations

import string

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from rallypoint.alarms import links
from rallypoint.alarms.models import Alarm, AlarmRecipient
from rallypoint.notify.channels.base import Message

SHORT_LIMIT = 300


class _Template(string.Formatter):
    """``str.format`` that leaves unknown or malformed placeholders as they are."""

    def get_value(self, key, args, kwargs):
        return kwargs.get(key, "{" + str(key) + "}")

    def format_field(self, value, format_spec):
        return str(value)


def fill_template(template: str, alarm: Alarm) -> str:
    values = {"scenario": alarm.scenario.name, "level": alarm.level.name, "location": alarm.location_text,
              "site": alarm.site.name}
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


def render(alarm: Alarm, recipient: AlarmRecipient, *, event: str, delivery_key: str, language: str) -> Message:
    """The message for one recipient. ``alarm`` must come with scenario, level and site loaded."""
    with translation.override(language or settings.LANGUAGE_CODE):
        subject = _subject(alarm, event)
        body = fill_template(alarm.scenario.message_template, alarm)
        instruction = alarm.scenario.instruction_for(recipient.membership.role) if event != "ended" else ""
        wants_answer = alarm.level.requires_acceptance and event != "ended" and alarm.is_active
        url = settings.BASE_URL + reverse("alarms:detail", args=[alarm.pk])
        answer_url = links.answer_url(recipient) if wants_answer else ""
        context = {"alarm": alarm, "subject": subject, "body": body, "instruction": instruction, "url": url,
                   "answer_url": answer_url, "event": event, "is_drill": alarm.is_drill}
        text = render_to_string("notify/message.txt", context).strip()
        html = render_to_string("notify/message.html", context)
        short = _short(subject, alarm, answer_url)
    return Message(delivery_key=delivery_key, alarm_id=alarm.pk, site_id=alarm.site_id, event=event,
                   subject=subject, text=text, short=short, html=html, url=url, answer_url=answer_url,
                   priority=alarm.scenario.priority, is_drill=alarm.is_drill, silent=alarm.scenario.silent,
                   color=alarm.scenario.color, language=language or settings.LANGUAGE_CODE)


def _short(subject: str, alarm: Alarm, answer_url: str) -> str:
    parts = [subject]
    if alarm.location_text:
        parts.append(alarm.location_text)
    if alarm.state == Alarm.State.ENDED and alarm.end_reason:
        parts.append(alarm.end_reason)
    tail = f" {answer_url}" if answer_url else ""
    text = " · ".join(parts)
    room = SHORT_LIMIT - len(tail)
    if len(text) > room:
        text = text[: room - 1] + "…"
    return text + tail
