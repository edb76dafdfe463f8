"""Dates and times follow the language's conventions: British style with the 24-hour clock in English,
German style in German, in the site's time zone, on the pages and in the alarm messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from rallypoint.alarms import actions
from rallypoint.alarms.models import Alarm
from rallypoint.notify import messages
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario

#: 16:15 in Berlin (the sites' time zone), an afternoon time a 12-hour clock would show as "4:15 p.m.".
AFTERNOON = datetime(2026, 2, 12, 15, 15, tzinfo=UTC)
SHORT = {"en": "12/02/2026 16:15", "de": "12.02.2026 16:15"}
LONG = {"en": "12 February 2026, 16:15", "de": "12. Februar 2026 16:15"}


@pytest.fixture
def ended_alarm(world):
    """An alarm raised and ended in the afternoon, with its audit entries."""
    lead = world.a.people[Role.LEAD].user
    with time_machine.travel(AFTERNOON, tick=False):
        alarm, _created = actions.trigger_alarm(site=world.a.site, scenario=fire_scenario(world.a.site), user=lead)
        actions.end_alarm(user=lead, alarm=alarm, reason="Drill over")
    return Alarm.objects.select_related("scenario", "level", "site").get(pk=alarm.pk)


@pytest.mark.parametrize("language", ["en", "de"])
def test_pages_show_dates_in_the_languages_style_with_the_24_hour_clock(world, signed_in, ended_alarm, language):
    client = signed_in(Role.ADMIN)
    for path in ("/audit/", "/cockpit/"):
        page = client.get(path, headers={"accept-language": language}).content.decode()
        assert SHORT[language] in page, path
        assert "p.m." not in page and "a.m." not in page, path


@pytest.mark.parametrize("language", ["en", "de"])
def test_the_audit_filter_keeps_its_dates_in_the_form_a_date_field_reads(world, signed_in, language):
    page = signed_in(Role.ADMIN).get("/audit/?since=2026-02-12&until=2026-02-13",
                                     headers={"accept-language": language}).content.decode()
    assert 'value="2026-02-12"' in page and 'value="2026-02-13"' in page


@pytest.mark.parametrize("language", ["en", "de"])
def test_alarm_messages_say_when_the_alarm_was_raised_and_ended(world, ended_alarm, language):
    recipient = ended_alarm.recipients.select_related("membership").get(membership=world.a.people[Role.EMPLOYEE])
    message = messages.render(ended_alarm, recipient, event="ended", delivery_key="k", language=language)
    raised, ended = {"en": ("Raised", "Ended"), "de": ("Ausgelöst", "Beendet")}[language]
    assert f"{raised}: {LONG[language]}" in message.text
    assert f"{ended}: {LONG[language]}" in message.text
    assert f"{raised}:</strong> {LONG[language]}" in message.html
    assert "p.m." not in message.text
