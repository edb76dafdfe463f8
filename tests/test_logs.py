"""No personal data in any log line (seed: "Es werden zu keinem Zeitpunkt personenbezogene Daten geloggt").

The main flows run with marker values in every personal field, with every
logger at DEBUG; then everything that was written through the product's log
handler is searched for the markers.
"""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import timedelta

import pyotp
import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from rallypoint.accounts import apptokens
from rallypoint.accounts.models import email_index
from rallypoint.alarms import actions as alarm_actions
from rallypoint.alarms.actions import trigger_alarm
from rallypoint.integrations import actions as key_actions
from rallypoint.lib.jsonlog import JsonFormatter, RedactionFilter, redact
from rallypoint.notify.channels.webpush import vapid
from rallypoint.notify.channels.webpush.subscriptions import endpoint_hash
from rallypoint.notify.models import PushSubscription
from rallypoint.notify.worker import DeliveryWorker
from rallypoint.people.actions import create_person
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario
from tests.conftest import PASSWORD
from tests.pow import pow_field
from tests.pushservice import PushService
from tests.sinks import HttpSink, SmtpSink, stop_worker
from tests.test_evacuation_status import Evacuation

MARK = {"full_name": "Zqname Logscan", "email": "zqmail.logscan@example.org", "phone": "+49 151 98765432",
        "department": "Zqdept Logscan"}
CLIENT = "198.51.100.213"  # a client address is personal data too: security events only
MARKERS = [*MARK.values(), "Zqname", "zqmail", "98765432", "Zqdept", PASSWORD, CLIENT]


@pytest.fixture
def captured():
    """A handler exactly like the product's stdout handler, on every logger that emits, at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactionFilter())
    loggers = [logging.getLogger(name) for name in ("", "django", "django.request", "django.security",
                                                     "rallypoint", "uvicorn")]
    previous = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield stream
    for lg, level in previous:
        lg.removeHandler(handler)
        lg.setLevel(level)


def test_main_flows_log_no_personal_data(world, signed_in, client, captured, send_outbox):
    admin = signed_in(Role.ADMIN)
    admin.post("/people/new/", {**MARK, "role": "member", "invite": "on"})
    send_outbox()
    membership = world.a.site.memberships.get(user__email_index=email_index(MARK["email"]))
    admin.post(f"/people/{membership.pk}/", {**MARK, "department": MARK["department"] + "2", "role": "lead"})
    admin.post("/people/new/", {**MARK, "email": "broken@", "role": "member"})  # invalid input
    admin.post("/people/import/", {"file": SimpleUploadedFile("p.csv", (
        "full_name,email,phone,department\n"
        f"{MARK['full_name']} Two,two.{MARK['email']},{MARK['phone']},{MARK['department']}\n"
        f"{MARK['full_name']} Bad,bad-address,{MARK['phone']},\n").encode())})
    admin.get("/people/export.csv")
    admin.post("/people/", {"action": "deactivate", "selected": [membership.pk]})
    admin.get("/people/999999/")  # 404
    admin.post("/api/v1/people", data=json.dumps({"name": MARK["full_name"], "email": "api." + MARK["email"]}),
               content_type="application/json")
    admin.post("/api/v1/people", data=json.dumps({"name": MARK["full_name"], "email": 5}),
               content_type="application/json")
    admin.get("/audit/")
    # Sign-in with the marker e-mail: wrong, then right password.
    client.logout()
    user = membership.user
    user.set_password(PASSWORD)
    user.save()
    membership.is_active = True
    membership.save()
    for password in ("wrong " + PASSWORD, PASSWORD):
        client.post("/accounts/login/", {"username": MARK["email"], "password": password,
                                         **pow_field(client, "/accounts/login/")}, REMOTE_ADDR=CLIENT)
    assert client.get("/").status_code == 200  # really signed in
    client.post("/accounts/password-reset/", {"email": MARK["email"], **pow_field(client, "/accounts/password-reset/")})
    send_outbox()
    client.get("/people/")  # a 403 for a lead
    client.get("/accounts/sessions/", REMOTE_ADDR=CLIENT)
    client.post("/accounts/app-tokens/", {"name": MARK["full_name"]}, REMOTE_ADDR=CLIENT)
    client.get("/?email=" + MARK["email"], REMOTE_ADDR=CLIENT)  # refused: personal data in a query string
    _second_factor_flows(client, user)
    client.post("/accounts/sessions/end-all/", REMOTE_ADDR=CLIENT)
    output = captured.getvalue()
    assert output, "the flows logged nothing at all: the capture is broken"
    for marker in MARKERS:
        assert marker not in output, f"personal data {marker!r} in the logs"
    for line in output.splitlines():
        json.loads(line)  # every line is structured JSON


def _second_factor_flows(client, user) -> None:
    """Enrol an authenticator app, fail and pass the second step, use a recovery code."""
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client.force_login(user)  # a fresh sign-in: changing factors needs one within ten minutes
        page = client.post("/accounts/second-factor/setup/totp/", {"action": "start"}, follow=True).content.decode()
        secret = re.search(r"data-totp-secret>([A-Z2-7 ]+)<", page).group(1).replace(" ", "")
        done = client.post("/accounts/second-factor/setup/totp/", {"action": "confirm",
                                                                   "code": pyotp.TOTP(secret).now()})
        codes = re.findall(r"<code>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</code>", done.content.decode())
        assert codes, "enrolment did not finish"
        client.post("/accounts/logout/", REMOTE_ADDR=CLIENT)
        clock.shift(timedelta(seconds=30))
        for code in ("000000", pyotp.TOTP(secret).now()):
            client.post("/accounts/login/", {"username": MARK["email"], "password": PASSWORD,
                                             **pow_field(client, "/accounts/login/")}, REMOTE_ADDR=CLIENT)
            client.post("/accounts/second-factor/verify/", {"method": "totp", "code": code}, REMOTE_ADDR=CLIENT)
        assert client.get("/").status_code == 200  # signed in with the second factor
        client.post("/accounts/logout/", REMOTE_ADDR=CLIENT)
        client.post("/accounts/login/", {"username": MARK["email"], "password": PASSWORD,
                                         **pow_field(client, "/accounts/login/")}, REMOTE_ADDR=CLIENT)
        client.post("/accounts/second-factor/verify/", {"method": "recovery", "recovery_code": codes[0]},
                    REMOTE_ADDR=CLIENT)
        assert client.get("/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_an_alarm_flow_logs_no_personal_data(world, captured, settings, tmp_path, monkeypatch):
    """Trigger → e-mail, SMS and Web Push through the worker → answers by link, in the app and by API →
    cockpit → end: no name, address, number, push endpoint, answer token or message text in the logs."""
    site = world.a.site
    person = create_person(actor=world.persona(Role.ADMIN), site=site, data={**MARK, "role": Role.EMPLOYEE})
    scenario = fire_scenario(site, channels=("inapp", "email", "sms", "push"))
    scenario.message_template = "Zqtext fire at {location}. Leave the building."
    scenario.save()
    lead = world.persona(Role.LEAD)
    settings.VAPID_KEY_FILE = tmp_path / "vapid.pem"
    with SmtpSink() as smtp, HttpSink() as gateway, PushService(tmp_path) as push:
        settings.PUSH_SERVICE_HOSTS = [push.host]
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(push.ca_file))
        browser = push.subscribe(vapid.application_server_key()).to_json()
        PushSubscription.objects.create(site=site, membership=person, endpoint=browser["endpoint"],
                                        endpoint_hash=endpoint_hash(browser["endpoint"]),
                                        p256dh=browser["keys"]["p256dh"], auth=browser["keys"]["auth"])
        endpoint_token = browser["endpoint"].rsplit("/", 1)[1]
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.SMS_GATEWAY_URL, settings.SMS_GATEWAY_TOKEN = gateway.url("/sms"), "sms-secret"
        raiser = Client()
        raiser.force_login(lead)
        alarm, _created = trigger_alarm(site=site, scenario=scenario, user=lead, location_text="Zqplace Hall")
        worker = DeliveryWorker("log-scan", threads=2)
        try:
            worker.run_once()
        finally:
            stop_worker(worker)
        mail_token = re.search(r"/answer/([\w.]+)", smtp.to(MARK["email"])[0].body("plain")).group(1)
        sms_token = [r.json["text"].rsplit("/answer/", 1)[1] for r in gateway.wait_for(1)
                     if r.json["to"].endswith("98765432")][0]
        assert len(push.payloads()) == 1  # the push went out (through urllib3, whose DEBUG lines name paths)
    link = Client()
    link.get(f"/answer/{mail_token}")
    link.post(f"/answer/{mail_token}", {"answer": "declined"})
    link.post(f"/answer/{mail_token}", {"answer": "accepted"})  # used: refused
    link.get("/answer/1.1.forged")
    app = Client()
    app.force_login(person.user)
    app.get(f"/alarms/{alarm.pk}/")
    app.post(f"/alarms/{alarm.pk}/answer/", {"answer": "accepted"})
    _row, token = apptokens.issue(user=person.user, site=site, name="Phone")
    app.post(f"/api/v1/alarms/{alarm.pk}/answer", json.dumps({"answer": "declined"}),
             content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    raiser.get("/cockpit/")
    raiser.get(f"/cockpit/{alarm.pk}/")
    alarm_actions.end_alarm(user=lead, alarm=alarm, reason="Zqreason all clear")
    link.post(f"/answer/{sms_token}", {"answer": "accepted"})  # after the end
    output = captured.getvalue()
    assert output, "the flow logged nothing at all: the capture is broken"
    for marker in [*MARKERS, mail_token, sms_token, token, endpoint_token, "Zqtext", "Leave the building"]:
        assert marker not in output, f"{marker!r} in the logs"


def test_the_redaction_filter_masks_what_slips_through():
    assert redact("mail to jane.doe@example.org now") == "mail to [email] now"
    assert redact("call +49 170 1234567") == "call [number]"
    assert redact("GET /x?token=abc123&password=hunter2") == "GET /x?token=[redacted]&password=[redacted]"
    record = logging.makeLogRecord({"msg": "user %s", "args": ("jane@example.org",), "email": "jane@example.org",
                                    "site_id": 4})
    assert RedactionFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "user [email]" and line["site_id"] == 4 and "email" not in line


def test_the_evacuation_flows_log_no_personal_data(world, captured):
    """Status notes, a helper's "where", walk-ins, visitors, listed people, presence from a door system, the
    missing list and the handover: none of their personal values reaches the log."""
    evac = Evacuation(world)
    lead = Client()
    lead.force_login(world.a.people[Role.LEAD].user)
    base = f"/alarms/{evac.alarm.pk}"
    lead.post(f"{base}/status/", {"status": "need_help", "note": "Zqnote ankle"})
    lead.post(f"{base}/zones/{evac.west.pk}/", {"state": "remaining", "remaining": "2", "where": "Zqwhere room"})
    lead.post(f"{base}/zones/{evac.west.pk}/", {"state": "remaining", "where": "Zqwhere room"})  # refused
    lead.post(f"{base}/assembly/{evac.yard.pk}/", {"walk_in_name": "Zqwalkin Person", "walk_in_company": "Zqcompany"})
    lead.post(f"{base}/assembly/{evac.yard.pk}/", {"person": [p.pk for p in evac.pupils]})
    lead.get(f"{base}/missing/")
    lead.get(f"{base}/handover/")
    lead.get(f"{base}/handover.pdf")
    lead.get(f"{base}/assembly/999999/")  # 404: logged, by path only
    lead.post(f"/api/v1/alarms/{evac.alarm.pk}/statuses", json.dumps({"reports": [
        {"membership_id": evac.guest.pk, "status": "lost", "note": "Zqnote api"}]}), content_type="application/json")
    admin = Client()
    admin.force_login(world.a.people[Role.ADMIN].user)
    admin.post("/visitors/", {"full_name": "Zqvisitor Person", "company": "Zqcompany"})
    admin.post("/people/import/", {"file": SimpleUploadedFile("p.csv", (
        b"full_name,email,groups\nZqlisted Pupil,,Zqclass\n"))})
    _key, raw = key_actions.create_api_key(actor=None, site=world.a.site, name="Doors", scenarios=[],
                                           reports_presence=True)
    Client().post("/api/v1/presence", json.dumps({"entries": [
        {"email": MARK["email"], "state": "in"}, {"email": world.a.people[Role.GUEST].user.email, "state": "in"}]}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    Client().post("/api/v1/presence", json.dumps({"entries": [{"email": MARK["email"], "state": 5}]}),
                  content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")  # 422
    output = captured.getvalue()
    assert output, "the flows logged nothing at all: the capture is broken"
    for marker in ("Zqnote", "Zqwhere", "Zqwalkin", "Zqcompany", "Zqvisitor", "Zqlisted", "Zqclass", "zqmail",
                   "Pupil 0zq", world.a.people[Role.GUEST].user.email):
        assert marker not in output, f"personal data {marker!r} in the logs"


def test_the_data_protection_flows_log_no_personal_data(world, signed_in, captured, send_outbox):
    """Four-eyes requests and decisions, subject access, retention, the Art. 32 report, self-deletion."""
    from rallypoint.audit import approvals
    from rallypoint.audit.models import Approval

    admin = signed_in(Role.ADMIN)
    admin.post("/people/new/", {**MARK, "role": "admin"})  # the role waits for a second administrator
    membership = world.a.site.memberships.get(user__email_index=email_index(MARK["email"]))
    admin.post(f"/people/{membership.pk}/data/")
    admin.post(f"/people/{membership.pk}/delete/", {"reason": MARK["full_name"]})
    admin.post("/people/export.csv")
    send_outbox()  # the approval requests go out
    for approval in Approval.objects.filter(state="pending").exclude(process="delete_person"):
        approvals.decide(approval=approval, approver=world.super_a, approve=True)
    admin.get("/audit/approvals/")
    admin.get(f"/people/data/{Approval.objects.get(process='export_person').pk}.json")
    superadmin = Client()
    superadmin.force_login(world.super_a)
    session = superadmin.session
    session["rp_site_id"] = world.a.site.pk
    session.save()
    superadmin.post("/retention/", {"alarm_record_days": "400", "push_idle_days": "60", "deactivated_days": "180",
                                    "reason": MARK["full_name"]})
    superadmin.get("/report/")
    superadmin.get("/report/report.pdf")
    superadmin.post("/report/declarations/", {"training_text": MARK["full_name"], "officer": str(membership.pk)})
    approvals.decide(approval=Approval.objects.get(process="delete_person"), approver=world.super_a, approve=True)
    person = Client()
    me = world.a.people[Role.EMPLOYEE]
    me.user.set_password(PASSWORD)
    me.user.save()
    person.force_login(me.user)
    person.get("/accounts/profile/my-data/")
    person.get("/accounts/profile/my-data.json")
    person.post("/accounts/profile/delete/", {"password": "wrong " + PASSWORD, "confirm": "on"}, REMOTE_ADDR=CLIENT)
    person.post("/accounts/profile/delete/", {"password": PASSWORD, "confirm": "on"}, REMOTE_ADDR=CLIENT)
    output = captured.getvalue()
    assert output, "the flows logged nothing at all: the capture is broken"
    for marker in [*MARKERS, "NameAaemployeezq", me.user.email]:
        assert marker not in output, f"personal data {marker!r} in the logs"
