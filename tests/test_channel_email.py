"""The e-mail channel against a real SMTP server (aiosmtpd) on this machine, and through the real worker."""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.db.models import Count
from django.utils import timezone

from rallypoint.alarms import links
from rallypoint.alarms.actions import trigger_alarm
from rallypoint.notify.channels.base import Address, Message, TransportError
from rallypoint.notify.channels.email import EmailChannel
from rallypoint.notify.models import Delivery, DeliveryAttempt
from rallypoint.notify.worker import DeliveryWorker
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario
from tests.population import add_people
from tests.sinks import SmtpSink, free_port, stop_worker

ANSWER_URL = "https://localhost:8443/answer/12.1999999999.0123456789abcdef"
TEXT = (
    "*** DRILL — this is an exercise ***\n\nFire — evacuate\n\nFire in Hall 3. Leave the building.\n"
    ".a line that starts with a dot\n" + "a long line " * 20 + "\n\n"
    f"Accept or decline with one tap:\n{ANSWER_URL}\n"
)


def make_message(**fields) -> Message:
    values = {
        "delivery_key": str(uuid.uuid4()), "alarm_id": 7, "site_id": 3, "event": "triggered",
        "subject": "DRILL · Fire — evacuate", "text": TEXT, "short": f"DRILL · Fire — evacuate {ANSWER_URL}",
        "html": f'<p>Fire in Hall 3 — Gebäude räumen.</p><p><a href="{ANSWER_URL}">Accept</a></p>',
        "url": "https://localhost:8443/alarms/7/", "answer_url": ANSWER_URL, "is_drill": True,
    }
    return Message(**{**values, **fields})


@pytest.fixture
def smtp(settings):
    with SmtpSink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 5
        settings.DEFAULT_FROM_EMAIL = "Rallypoint <alarm@rallypoint.example>"
        yield sink


@pytest.fixture
def channel():
    channel = EmailChannel()
    yield channel
    channel.close()


def failure(channel: EmailChannel, message: Message, email: str) -> TransportError:
    with pytest.raises(TransportError) as caught:
        channel.send(message, Address(email=email))
    assert not email or email not in caught.value.message
    return caught.value


# --------------------------------------------------------------------------- the channel


def test_it_sends_plain_text_and_html_with_the_answer_link(smtp, channel):
    message = make_message()
    channel.send(message, Address(email="alice@example.org"))

    received = smtp.wait_for(1)[0]
    assert received.rcpt_tos == ["alice@example.org"]
    assert received.mail_from == "alarm@rallypoint.example"
    parsed = received.message
    assert parsed["Subject"] == "DRILL · Fire — evacuate"
    assert parsed["To"] == "alice@example.org"
    assert parsed["From"] == "Rallypoint <alarm@rallypoint.example>"
    assert parsed.get_content_type() == "multipart/alternative"
    assert received.body("plain") == TEXT  # long lines, dots and non-ASCII survive the encoding
    assert received.body("html") == message.html
    assert ANSWER_URL in received.body("plain") and ANSWER_URL in received.body("html")


def test_it_marks_the_message_urgent_and_automatic(smtp, channel):
    channel.send(make_message(priority=1), Address(email="alice@example.org"))
    channel.send(make_message(priority=3), Address(email="bob@example.org"))

    urgent, normal = (m.message for m in smtp.wait_for(2))
    assert (urgent["X-Priority"], urgent["Importance"], urgent["Priority"]) == ("1 (Highest)", "high", "urgent")
    assert (normal["X-Priority"], normal["Importance"]) == ("3 (Normal)", "normal")
    assert urgent["Auto-Submitted"] == "auto-generated"


def test_the_message_id_comes_from_the_delivery_key_so_a_resend_can_be_recognised(smtp, channel):
    message = make_message()
    channel.send(message, Address(email="alice@example.org"))
    channel.send(message, Address(email="alice@example.org"))  # e.g. after a worker crash

    first, second = (m.message for m in smtp.wait_for(2))
    assert first["Message-ID"] == second["Message-ID"] == f"<{message.delivery_key}@rallypoint.example>"
    other = make_message()
    channel.send(other, Address(email="alice@example.org"))
    assert smtp.wait_for(3)[2].message["Message-ID"] == f"<{other.delivery_key}@rallypoint.example>"


def test_a_long_non_ascii_subject_is_encoded_and_folded(smtp, channel):
    subject = "Übung · Brand im Gebäude — bitte sofort über die Fluchtwege räumen " * 2
    channel.send(make_message(subject=subject), Address(email="alice@example.org"))

    received = smtp.wait_for(1)[0]
    assert received.message["Subject"] == subject.strip()
    assert all(len(line) <= 998 for line in received.data.split(b"\r\n"))
    assert max(received.data) < 128  # 7-bit clean: no server has to convert it


def test_it_keeps_one_connection_for_many_messages(smtp, channel):
    for n in range(5):
        channel.send(make_message(), Address(email=f"p{n}@example.org"))
    smtp.wait_for(5)
    assert smtp.connections == 1


def test_it_reconnects_when_the_server_dropped_the_connection(smtp, channel):
    channel.send(make_message(), Address(email="alice@example.org"))
    smtp.wait_for(1)
    smtp.drop_connections()

    channel.send(make_message(), Address(email="bob@example.org"))  # no error: a fresh connection
    assert smtp.wait_for(2)[1].rcpt_tos == ["bob@example.org"]
    assert smtp.connections == 2


def test_it_reconnects_when_the_server_says_it_is_closing(smtp, channel):
    channel.send(make_message(), Address(email="alice@example.org"))
    smtp.fail_next("MAIL", "421 4.4.2 Idle too long, closing")

    channel.send(make_message(), Address(email="bob@example.org"))
    assert smtp.wait_for(2)[1].rcpt_tos == ["bob@example.org"]


def test_a_refused_recipient_fails_for_good_without_naming_the_address(smtp, channel):
    smtp.refuse("gone@example.org", "550 5.1.1 <gone@example.org>: Recipient address rejected")

    error = failure(channel, make_message(), "gone@example.org")
    assert error.permanent
    assert error.message == "mail server refused the recipient (SMTP 550 5.1.1)"
    channel.send(make_message(), Address(email="alice@example.org"))  # the connection is still good
    assert smtp.wait_for(1)[0].rcpt_tos == ["alice@example.org"]
    assert smtp.connections == 1


@pytest.mark.parametrize(("command", "reply", "permanent"), [
    ("RCPT", "450 4.2.1 Mailbox busy", False),
    ("MAIL", "451 4.3.0 Try again later", False),
    ("MAIL", "553 5.7.1 Sender not allowed", False),  # the operator's From address: fixable, so retried
    ("DATA", "552 5.3.4 Message too big", True),
    ("DATA", "451 4.3.0 Queue full", False),
])
def test_it_tells_temporary_from_permanent_refusals(smtp, channel, command, reply, permanent):
    smtp.fail_next(command, reply)
    error = failure(channel, make_message(), "alice@example.org")
    assert error.permanent is permanent
    assert reply.split()[0] in error.message and reply.split()[1] in error.message
    assert "Mailbox busy" not in error.message  # never the server's free text


def test_an_unreachable_server_is_retried(settings, channel):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", free_port(), False

    error = failure(channel, make_message(), "alice@example.org")
    assert not error.permanent
    assert error.message == "mail server unreachable (ConnectionRefusedError)"


def test_without_an_address_the_delivery_is_skipped(smtp, channel):
    error = failure(channel, make_message(), "")
    assert error.permanent and error.message == "no e-mail address"


def test_an_invalid_address_fails_for_good_without_being_named(smtp, channel):
    error = failure(channel, make_message(), "not an address@@example")
    assert error.permanent and error.message == "e-mail address not valid"
    assert smtp.connections == 0


def test_the_embedded_mode_writes_to_the_outbox_directory(settings, tmp_path, channel):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = tmp_path
    message = make_message()
    channel.send(message, Address(email="alice@example.org"))

    written = "".join(path.read_text() for path in tmp_path.iterdir())
    assert "To: alice@example.org" in written
    assert f"Message-ID: <{message.delivery_key}@" in written
    assert "multipart/alternative" in written and "X-Priority: 1 (Highest)" in written


def test_other_mail_backends_get_the_same_message(settings, channel):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox.clear()
    message = make_message()
    channel.send(message, Address(email="alice@example.org"))

    sent = mail.outbox[0]
    assert (sent.to, sent.subject, sent.body) == (["alice@example.org"], message.subject, TEXT)
    assert sent.alternatives[0][0] == message.html
    assert sent.extra_headers["Message-ID"] == f"<{message.delivery_key}@localhost>"


# --------------------------------------------------------------------------- through the worker


def run_worker() -> int:
    worker = DeliveryWorker("test-email", threads=2)
    try:
        return worker.run_once()
    finally:
        stop_worker(worker)


def answer_token(text: str) -> str:
    return re.search(r"/answer/([\w.]+)", text).group(1)


@pytest.mark.django_db(transaction=True)
def test_an_alarm_reaches_every_recipient_by_email(world, smtp):
    site = world.a.site
    scenario = fire_scenario(site, channels=("email",))
    alarm, _ = trigger_alarm(site=site, scenario=scenario, user=world.persona(Role.EMPLOYEE), location_text="Hall 3")
    deliveries = Delivery.objects.for_site(site).filter(alarm=alarm)
    people = deliveries.count()
    assert people >= 6  # five personas, the super-admin and whoever else works at the site

    assert run_worker() == people
    received = smtp.wait_for(people)
    assert sorted(r for m in received for r in m.rcpt_tos) == sorted(
        d.recipient.membership.user.email for d in deliveries.select_related("recipient__membership__user"))
    for each in received:
        token = answer_token(each.body("plain"))
        assert token in each.body("html")
        recipient = links.check_token(token)  # the link answers for exactly this person
        assert recipient.membership.user.email == each.rcpt_tos[0]
        assert each.message["Message-ID"] == f"<{deliveries.get(recipient=recipient).key}@rallypoint.example>"
    assert set(deliveries.values_list("state", flat=True)) == {Delivery.State.SENT}
    assert DeliveryAttempt.objects.for_site(site).filter(delivery__alarm=alarm, result="ok").count() == people


@pytest.mark.django_db(transaction=True)
def test_a_deferred_message_is_sent_on_the_next_attempt(world, smtp):
    site = world.a.site
    scenario = fire_scenario(site, channels=("email",))
    alarm, _ = trigger_alarm(site=site, scenario=scenario, user=None)
    busy = world.a.people[Role.MEMBER].user.email
    smtp.refuse(busy, "450 4.2.1 Mailbox busy", times=1)

    people = run_worker()
    delivery = Delivery.objects.for_site(site).get(alarm=alarm, recipient__membership=world.a.people[Role.MEMBER])
    assert (delivery.state, delivery.attempts) == (Delivery.State.PENDING, 1)
    assert delivery.last_error == "mail server deferred the recipient (SMTP 450 4.2.1)"
    assert smtp.wait_for(people - 1) and not smtp.to(busy)

    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert run_worker() == 1
    assert len(smtp.wait_for(people)) == people and smtp.to(busy)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (Delivery.State.SENT, 2)
    assert list(delivery.attempt_rows.values_list("result", flat=True)) == ["transient", "ok"]


@pytest.mark.django_db(transaction=True)
def test_a_refused_address_is_not_retried(world, smtp):
    site = world.a.site
    alarm, _ = trigger_alarm(site=site, scenario=fire_scenario(site, channels=("email",)), user=None)
    gone = world.a.people[Role.GUEST].user.email
    smtp.refuse(gone, f"550 5.1.1 <{gone}>: unknown user")

    run_worker()
    delivery = Delivery.objects.for_site(site).get(alarm=alarm, recipient__membership=world.a.people[Role.GUEST])
    assert (delivery.state, delivery.last_error) == (Delivery.State.FAILED,
                                                     "mail server refused the recipient (SMTP 550 5.1.1)")
    assert delivery.attempt_rows.get().result == "permanent"


def email_alarm(world, *, extra_people: int):
    """An alarm by e-mail only to site A's people and ``extra_people`` more; returns it and its deliveries."""
    add_people(world.a.site, extra_people, phone=False)
    scenario = fire_scenario(world.a.site, channels=("email",))
    alarm, _ = trigger_alarm(site=world.a.site, scenario=scenario, user=world.persona(Role.EMPLOYEE),
                             location_text="Hall 3")
    return alarm, Delivery.objects.for_site(world.a.site).filter(alarm=alarm)


@pytest.mark.django_db(transaction=True)
def test_stopping_the_worker_loop_leaves_no_claimed_message_unrecorded(world, smtp):
    """The loop hands the next batch to the senders while the previous one is still going out. Stopped at
    any moment, it records what went out and gives back what had not started: every delivery is sent
    with one attempt, or pending with none, never stranded in "sending" until its lease runs out; a
    second worker then sends the rest at once, nobody twice."""
    alarm, deliveries = email_alarm(world, extra_people=30)
    people = deliveries.count()

    # A slow mail server: when the first message is in, the first batch of 4 is still going out over the 2
    # threads and the second batch is queued behind it; the stop comes while both are in the worker.
    smtp.delay = 0.05
    stop = threading.Event()
    first = threading.Thread(target=DeliveryWorker("first", threads=2, batch=4).loop, args=(stop,))
    first.start()
    smtp.wait_for(1)
    stop.set()
    first.join(30)
    smtp.delay = 0.0
    assert not first.is_alive()
    states = dict(deliveries.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    assert set(states) <= {"sent", "pending"} and states.get("pending"), states
    attempts = DeliveryAttempt.objects.filter(delivery__alarm=alarm)
    assert attempts.count() == states["sent"] == attempts.filter(result="ok").count()
    assert len(smtp.wait_for(states["sent"])) == states["sent"]

    stop.clear()
    second = threading.Thread(target=DeliveryWorker("second", threads=2, batch=4).loop, args=(stop,),
                              kwargs={"idle_seconds": 0.05})
    second.start()
    try:
        received = smtp.wait_for(people)
    finally:
        stop.set()
        second.join(30)
    assert smtp.received == people  # every send has returned by now: no second copy is still on its way
    assert sorted(r for m in received for r in m.rcpt_tos) == sorted(
        d.recipient.membership.user.email for d in deliveries.select_related("recipient__membership__user"))
    assert deliveries.filter(state="sent").count() == people == attempts.count()


@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_the_lease_of_the_batch_it_sends_and_of_the_one_queued_behind_it(world, smtp, settings):
    """Sending a batch can take longer than the lease (a slow mail server). The worker renews the lease of
    the batch going out and of the next one, which waits claimed in its queue meanwhile: no lease it holds
    runs out (another worker would take those deliveries over and send them twice)."""
    alarm, deliveries = email_alarm(world, extra_people=9)
    people = deliveries.count()
    settings.DELIVERY_LEASE_SECONDS = 1.2  # renewed every 0.4 s
    smtp.delay = 0.25  # one thread: a batch of 6 takes 1.5 s, longer than the lease; the queued one waits as long
    stop = threading.Event()
    worker = threading.Thread(target=DeliveryWorker("slow", threads=1, batch=6).loop, args=(stop,),
                              kwargs={"idle_seconds": 0.05})
    worker.start()
    expired: set[int] = set()
    queued_seen = False
    deadline = time.monotonic() + 30
    try:
        while smtp.received < people and time.monotonic() < deadline:
            held = deliveries.filter(claimed_by="slow", state=Delivery.State.SENDING)
            queued_seen = queued_seen or held.count() > 6  # a batch going out and one queued behind it
            expired |= set(held.filter(claimed_until__lt=timezone.now()).values_list("pk", flat=True))
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(30)
    assert queued_seen
    assert expired == set()
    assert smtp.received == people
    assert deliveries.filter(state="sent").count() == people
    assert DeliveryAttempt.objects.filter(delivery__alarm=alarm).count() == people
