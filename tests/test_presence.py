"""Who is on site: arrivals, departures, visitors, the end of the day and the history kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from rallypoint.audit.models import AuditEntry
from rallypoint.evacuation import presence
from rallypoint.evacuation.models import Presence, Source
from rallypoint.people.models import Membership
from rallypoint.tenants.roles import Role


def test_a_presence_ends_at_midnight_in_the_sites_time_zone(world):
    site = world.a.site
    site.time_zone = "Europe/Berlin"
    evening = datetime(2026, 12, 3, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    assert presence.end_of_day(site, evening) == datetime(2026, 12, 3, 23, 0, tzinfo=UTC)
    site.time_zone = "America/New_York"
    assert presence.end_of_day(site, evening) == datetime(2026, 12, 4, 5, 0, tzinfo=UTC)


def test_arriving_and_leaving(world):
    person = world.a.people[Role.EMPLOYEE]
    assert not presence.is_present(person)
    presence.arrive(membership=person, source=Source.APP)
    assert presence.is_present(person)
    assert presence.leave(membership=person) == 1
    assert not presence.is_present(person)
    assert Presence.objects.filter(membership=person, left_at__isnull=False).count() == 1  # the history stays


def test_a_visitor_is_listed_without_an_account_and_present_until_the_end_of_the_day(world):
    host = world.a.people[Role.EMPLOYEE]
    visitor = presence.register_visitor(site=world.a.site, full_name=" Vera Visitor ", company="Acme", host=host,
                                        actor=None)
    assert (visitor.kind, visitor.user_id, visitor.full_name, visitor.host_id) == ("visitor", None, "Vera Visitor",
                                                                                     host.pk)
    assert presence.is_present(visitor)
    assert not presence.is_present(visitor, now=visitor.expires_at + timedelta(seconds=1))
    assert AuditEntry.objects.filter(action="visitor.registered", object_id=str(visitor.pk)).exists()


def test_a_visitor_needs_a_name_and_a_host_of_the_same_site(world):
    with pytest.raises(ValidationError):
        presence.register_visitor(site=world.a.site, full_name="   ")
    with pytest.raises(ValidationError):
        presence.register_visitor(site=world.a.site, full_name="V", host=world.b.people[Role.EMPLOYEE])
    assert not Membership.objects.filter(kind="visitor").exists()


def test_presence_history_is_kept_the_configured_days(world, settings):
    settings.PRESENCE_HISTORY_DAYS = 1
    person = world.a.people[Role.EMPLOYEE]
    now = timezone.now()
    old = presence.arrive(membership=person, source=Source.QR, now=now - timedelta(days=1, minutes=1))
    recent = presence.arrive(membership=person, source=Source.QR, now=now - timedelta(hours=23))
    assert presence.purge_expired(now) == 1
    assert list(Presence.objects.values_list("pk", flat=True)) == [recent.pk]
    assert old.pk != recent.pk
