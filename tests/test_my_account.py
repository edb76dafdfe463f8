"""My account: a person changes their own name, phone, language and password, and keeps their messenger
addresses; each change is audited, and nobody reaches someone else's."""

from __future__ import annotations

from django.test import Client

from rallypoint.accounts.models import AppToken, UserSession
from rallypoint.audit.models import AuditEntry, SecurityEvent
from rallypoint.notify.models import MessengerAddress
from rallypoint.tenants.roles import Role
from tests.conftest import PASSWORD


def test_a_person_changes_their_own_name_phone_and_language(world, signed_in):
    client = signed_in(Role.EMPLOYEE)
    me = world.a.people[Role.EMPLOYEE]
    page = client.get("/accounts/profile/").content.decode()
    assert 'value="NameAaemployeezq"' in page
    response = client.post("/accounts/profile/", {"details-full_name": "Erika Neu", "details-phone": "+49 30 555",
                                                  "language": "de"})
    assert response.status_code == 302
    me.refresh_from_db()
    me.user.refresh_from_db()
    assert (me.full_name, me.phone, me.user.language, me.role) == ("Erika Neu", "+49 30 555", "de", Role.EMPLOYEE)
    entry = AuditEntry.objects.get(action="person.updated", object_id=str(me.pk))
    assert entry.actor == me.user and set(entry.changes) == {"full_name", "phone"}
    assert "Erika Neu" not in str(entry.changes)  # fingerprints, not values


def test_bad_details_are_refused_with_a_message(world, signed_in):
    client = signed_in(Role.EMPLOYEE)
    response = client.post("/accounts/profile/", {"details-full_name": "  ", "details-phone": "call me",
                                                  "language": "en"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Enter a phone number with digits only" in page
    world.a.people[Role.EMPLOYEE].refresh_from_db()
    assert world.a.people[Role.EMPLOYEE].full_name == "NameAaemployeezq"


def test_a_new_password_needs_the_current_one_and_signs_out_the_other_devices(world, signed_in):
    me = world.a.people[Role.EMPLOYEE].user
    me.set_password(PASSWORD)
    me.save()
    other = Client()
    other.force_login(me)
    AppToken.objects.create(user=me, site=world.a.site, name="phone", token_hash="c" * 64)
    client = signed_in(Role.EMPLOYEE)
    wrong = client.post("/accounts/profile/password/", {"password-old_password": "not it",
                                                        "password-new_password1": "a fresh long passphrase",
                                                        "password-new_password2": "a fresh long passphrase"})
    assert wrong.status_code == 400
    me.refresh_from_db()
    assert me.check_password(PASSWORD)
    weak = client.post("/accounts/profile/password/", {"password-old_password": PASSWORD,
                                                       "password-new_password1": "short",
                                                       "password-new_password2": "short"})
    assert weak.status_code == 400 and "too short" in weak.content.decode()
    done = client.post("/accounts/profile/password/", {"password-old_password": PASSWORD,
                                                       "password-new_password1": "a fresh long passphrase",
                                                       "password-new_password2": "a fresh long passphrase"})
    assert done.status_code == 302
    me.refresh_from_db()
    assert me.check_password("a fresh long passphrase")
    assert client.get("/accounts/profile/").status_code == 200  # this device stays signed in
    assert other.get("/accounts/profile/").status_code == 302  # the other one is out
    assert UserSession.objects.filter(user=me).count() == 1
    assert not AppToken.objects.filter(user=me, revoked_at__isnull=True).exists()
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.PASSWORD_CHANGED, user=me).exists()


def test_a_person_adds_and_removes_a_messenger_address(world, signed_in):
    client = signed_in(Role.EMPLOYEE)
    me = world.a.people[Role.EMPLOYEE]
    bad = client.post("/accounts/profile/messenger/", {"messenger-label": "Chat", "messenger-url": "nonsense"})
    assert bad.status_code == 400 and "not an address Apprise knows" in bad.content.decode()
    assert not MessengerAddress.objects.exists()
    url = "json://localhost:8123/hook-secret-zq"
    assert client.post("/accounts/profile/messenger/", {"messenger-label": "Team chat",
                                                        "messenger-url": url}).status_code == 302
    address = MessengerAddress.objects.get(membership=me)
    assert (address.url, address.label, address.site_id) == (url, "Team chat", world.a.site.pk)
    page = client.get("/accounts/profile/").content.decode()
    assert "Team chat" in page and "json://…" in page and "hook-secret-zq" not in page
    added = AuditEntry.objects.get(action="messenger.added")
    assert added.changes == {"messenger": [None, "json"]} and added.actor == me.user
    assert client.post(f"/accounts/profile/messenger/{address.pk}/remove/").status_code == 302
    assert not MessengerAddress.objects.exists()
    assert AuditEntry.objects.filter(action="messenger.removed").exists()


def test_nobody_removes_someone_elses_messenger_address(world, signed_in):
    other = MessengerAddress.objects.create(site=world.a.site, membership=world.a.people[Role.LEAD],
                                            url="json://localhost/x", label="Lead's")
    client = signed_in(Role.EMPLOYEE)
    assert client.post(f"/accounts/profile/messenger/{other.pk}/remove/").status_code == 404
    assert MessengerAddress.objects.filter(pk=other.pk).exists()


def test_a_person_mutes_channels_for_information_but_alarms_still_use_them(world, signed_in):
    from rallypoint.alarms.actions import trigger_alarm
    from rallypoint.alarms.models import Scenario
    from rallypoint.notify.models import ChannelMute, Delivery
    from tests.alarm_fixtures import fire_scenario

    me = world.a.people[Role.EMPLOYEE]
    client = signed_in(Role.EMPLOYEE)
    response = client.post("/accounts/profile/notifications/", {"channel": ["push", "email", "voice", "apprise"]})
    assert response.status_code == 302
    assert list(ChannelMute.objects.filter(membership=me).values_list("channel", flat=True)) == ["sms"]
    assert 'value="sms">' in client.get("/accounts/profile/").content.decode()  # shown off (not checked)
    assert AuditEntry.objects.filter(action="person.updated", changes__has_key="muted_channels").exists()
    client.post("/accounts/profile/notifications/", {"channel": ["push", "email", "voice", "apprise", "bogus"]})
    assert ChannelMute.objects.filter(membership=me).count() == 1  # an unknown channel changes nothing

    lead = world.a.people[Role.LEAD].user
    news = fire_scenario(world.a.site, name="Canteen closed", channels=("inapp", "email", "sms"),
                         category=Scenario.Category.INFORMATION)
    info, _ = trigger_alarm(site=world.a.site, scenario=news, user=lead)
    fire = fire_scenario(world.a.site, name="Fire", channels=("inapp", "email", "sms"))
    alarm, _ = trigger_alarm(site=world.a.site, scenario=fire, user=lead)

    def channels(of):
        return set(Delivery.objects.filter(alarm=of, recipient__membership=me).values_list("channel", flat=True))

    assert channels(info) == {"inapp", "email"}  # no SMS for information
    assert channels(alarm) == {"inapp", "email", "sms"}  # the fire alarm still comes by SMS
