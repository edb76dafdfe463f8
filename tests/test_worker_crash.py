"""A worker killed with SIGKILL in the middle of a large alarm loses nothing.

The real ``rallypoint worker`` runs as a subprocess against the test database and
sends e-mail to a local SMTP server and SMS to a local HTTP gateway. It is
killed once a few hundred messages have arrived; a second worker started after
it must bring every recipient each channel's message.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from rallypoint.alarms import actions
from rallypoint.alarms.models import AlarmRecipient
from rallypoint.notify.models import Delivery, DeliveryAttempt
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario
from tests.population import add_people
from tests.sinks import HttpSink, SmtpSink

# The production setting this guards (separate worker processes on one database) is PostgreSQL's; the
# SQLite pass leaves it out to keep the suite fast.
pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(not os.environ.get("RP_DATABASE_URL", "").startswith("postgres"),
                                 reason="worker processes sharing a database: run in the PostgreSQL pass")]
PEOPLE = 2000
LEASE_SECONDS = 3
THREADS = 8


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    return f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _start_worker(smtp: SmtpSink, gateway: HttpSink, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RP_")}
    env.update(RP_DATA_DIR=str(settings.DATA_DIR), RP_DATABASE_URL=_database_url(), RP_SMTP_HOST="127.0.0.1",
               RP_SMTP_PORT=str(smtp.port), RP_SMTP_SECURITY="none", RP_SMS_GATEWAY_URL=gateway.url("/sms"),
               RP_DELIVERY_LEASE_SECONDS=str(LEASE_SECONDS), RP_WORKER_BATCH="200", RP_DEMO="false",
               RP_WORKER_THREADS=str(THREADS))
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "rallypoint", "worker"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def _reached(smtp: SmtpSink, gateway: HttpSink) -> tuple[set[str], set[str]]:
    mailed = {rcpt.lower() for mail in list(smtp.mails) for rcpt in mail.rcpt_tos}
    texted = {r.json["to"] for r in list(gateway.requests) if isinstance(r.json, dict)}
    return mailed, texted


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_killing_a_worker_half_way_through_an_alarm_loses_no_message(world, tmp_path):
    people = add_people(world.a.site, PEOPLE)
    scenario = fire_scenario(world.a.site, channels=("email", "sms"), roles=[Role.EMPLOYEE])
    expected_mail = {m.user.email for m in people} | {world.a.people[Role.EMPLOYEE].user.email}
    expected_sms = {m.phone.replace(" ", "") for m in people} | {world.a.people[Role.EMPLOYEE].phone.replace(" ", "")}
    log = tmp_path / "worker.log"
    with SmtpSink() as smtp, HttpSink() as gateway:
        first = _start_worker(smtp, gateway, log)
        try:
            alarm, _ = actions.trigger_alarm(site=world.a.site, scenario=scenario,
                                             user=world.a.people[Role.LEAD].user, location_text="Hall 4")
            _wait(lambda: smtp.received + gateway.received >= 300 or first.poll() is not None, 60,
                  "the first worker to start sending")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        at_kill = smtp.received + gateway.received
        assert first.returncode == -signal.SIGKILL, log.read_text()
        assert at_kill < 2 * len(expected_mail), "the worker finished before it was killed: the test proves nothing"
        stranded = Delivery.objects.filter(alarm=alarm, state__in=["sending", "pending"]).count()
        assert stranded > 0

        second = _start_worker(smtp, gateway, log)
        try:
            _wait(lambda: _reached(smtp, gateway) == (expected_mail, expected_sms), 120,
                  "every recipient to get an e-mail and an SMS")
            _wait(lambda: not Delivery.objects.filter(alarm=alarm).exclude(state="sent").exists(), 30,
                  "every delivery to be recorded as sent")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    mailed, texted = _reached(smtp, gateway)
    assert mailed == expected_mail and texted == expected_sms
    recipients = AlarmRecipient.objects.filter(alarm=alarm).count()
    assert Delivery.objects.filter(alarm=alarm, state="sent").count() == 2 * recipients
    assert DeliveryAttempt.objects.filter(delivery__alarm=alarm, result="ok").count() >= 2 * recipients
    # Each outcome is recorded as it completes, before its thread takes the next message: only what was
    # in flight when the worker died can have gone out twice, at most one message per sending thread (with
    # outcomes written per batch it was up to two batches: 506 of 2,000 in one run).
    duplicates = smtp.received + gateway.received - 2 * recipients
    assert 0 <= duplicates <= THREADS, duplicates
    links = [mail for mail in smtp.mails if "/answer/" in mail.body()]
    assert len({mail.rcpt_tos[0] for mail in links}) == recipients
