"""Subject access (Art. 15 and 20): a person sees and downloads everything Rallypoint keeps about them; an
administrator produces the same for a person after a second administrator approved; secrets stay out."""

from __future__ import annotations

import json

from django.test import Client

from rallypoint.accounts.mfa_models import TotpDevice
from rallypoint.alarms.actions import answer_alarm, trigger_alarm
from rallypoint.audit import approvals
from rallypoint.audit.models import Approval
from rallypoint.notify.models import MessengerAddress
from rallypoint.people.models import Membership
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario


def _client(user, site) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    session["rp_site_id"] = site.pk
    session.save()
    return client


def _lived_in(world):
    """The employee after some use: an answered alarm, a messenger address, a second factor, a second site."""
    employee = world.a.people[Role.EMPLOYEE]
    alarm, _ = trigger_alarm(site=world.a.site, scenario=fire_scenario(world.a.site),
                             user=world.a.people[Role.LEAD].user)
    answer_alarm(alarm=alarm, membership=employee, answer="accepted", via="app")
    MessengerAddress.objects.create(site=world.a.site, membership=employee, url="tgram://bot-SECRET/123",
                                    label="My Telegram")
    TotpDevice.objects.create(user=employee.user, secret="JBSWY3DPEHPK3PXP", confirmed=True)
    Membership.objects.create(site=world.a2.site, user=employee.user, full_name="Elsewhere Name")
    return employee, alarm


def test_a_person_downloads_everything_about_them_without_secrets(world):
    employee, alarm = _lived_in(world)
    client = _client(employee.user, world.a.site)
    response = client.get("/accounts/profile/my-data.json")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    data = json.loads(response.content)
    assert data["account"]["email"] == employee.user.email
    assert {m["full_name"] for m in data["memberships"]} == {"NameAaemployeezq", "Elsewhere Name"}
    answers = data["records"]["alarms_alarmrecipient"]
    assert [(r["alarm"], r["answer"]) for r in answers] == [(alarm.pk, "accepted")]
    assert data["records"]["notify_messengeraddress"][0]["label"] == "My Telegram"
    assert "tenants_group" in data["records"]  # the groups they are in
    text = response.content.decode()
    for secret in ("bot-SECRET", "JBSWY3DPEHPK3PXP", employee.data_key, employee.user.password):
        assert secret not in text
    assert "url" in data["records"]["notify_messengeraddress"][0]["withheld"]
    assert "NameAaleadzq" not in text  # nobody else's data
    page = client.get("/accounts/profile/my-data/").content.decode()
    assert "Elsewhere Name" in page and "My Telegram" in page and "bot-SECRET" not in page


def test_an_administrator_produces_a_persons_data_after_approval(world):
    employee, _alarm = _lived_in(world)
    admin = _client(world.a.people[Role.ADMIN].user, world.a.site)
    assert admin.post(f"/people/{employee.pk}/data/").status_code == 302
    approval = Approval.objects.get(process="export_person")
    assert admin.get(f"/people/data/{approval.pk}.json").status_code == 302  # not approved yet
    approvals.decide(approval=approval, approver=world.super_a, approve=True)
    response = admin.get(f"/people/data/{approval.pk}.json")
    data = json.loads(response.content)
    assert [m["full_name"] for m in data["memberships"]] == ["NameAaemployeezq"]  # this site only
    assert "Elsewhere Name" not in response.content.decode()
    assert admin.get(f"/people/data/{approval.pk}.json").status_code == 302  # once
