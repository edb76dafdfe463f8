"""Messengers through Apprise, against a local HTTP server that Apprise's json:// plugin posts to."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from rallypoint.alarms import links
from rallypoint.alarms.actions import trigger_alarm
from rallypoint.notify.channels.base import Address, Message, TransportError
from rallypoint.notify.channels.messenger import AppriseChannel
from rallypoint.notify.models import Delivery, MessengerAddress
from rallypoint.notify.worker import DeliveryWorker
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario
from tests.sinks import HttpSink, free_port, stop_worker

ANSWER_URL = "https://localhost:8443/answer/12.1999999999.0123456789abcdef"
TOKEN = "zqtoken4711secret"


def make_message(**fields) -> Message:
    values = {
        "delivery_key": str(uuid.uuid4()), "alarm_id": 7, "site_id": 3, "event": "triggered",
        "subject": "Fire — evacuate", "text": "…", "short": f"Fire — evacuate · Hall 3 {ANSWER_URL}", "html": "",
        "url": "https://localhost:8443/alarms/7/", "answer_url": ANSWER_URL,
    }
    return Message(**{**values, **fields})


@pytest.fixture
def hook():
    with HttpSink() as sink:
        yield sink


@pytest.fixture
def channel():
    channel = AppriseChannel()
    yield channel
    channel.close()


def url(sink: HttpSink, path: str = f"/hook/{TOKEN}") -> str:
    return f"json://127.0.0.1:{sink.port}{path}"


def dead_url() -> str:
    return f"json://127.0.0.1:{free_port()}/hook/{TOKEN}"


def failure(channel: AppriseChannel, urls: tuple) -> TransportError:
    with pytest.raises(TransportError) as caught:
        channel.send(make_message(), Address(messenger=urls))
    assert TOKEN not in caught.value.message and "127.0.0.1" not in caught.value.message
    return caught.value


# --------------------------------------------------------------------------- the channel


def test_the_short_message_goes_to_the_messenger_with_the_subject_as_title(hook, channel):
    message = make_message()
    channel.send(message, Address(messenger=(url(hook),)))

    request = hook.wait_for(1)[0]
    assert request.path == f"/hook/{TOKEN}"
    assert request.json["title"] == "Fire — evacuate"
    assert request.json["message"] == message.short
    assert request.json["type"] == "warning"


def test_drills_and_the_all_clear_are_not_warnings(hook, channel):
    channel.send(make_message(is_drill=True), Address(messenger=(url(hook),)))
    channel.send(make_message(event="ended", answer_url=""), Address(messenger=(url(hook),)))
    assert [r.json["type"] for r in hook.wait_for(2)] == ["info", "success"]


def test_every_address_of_the_person_gets_it(hook, channel):
    channel.send(make_message(), Address(messenger=(url(hook, "/phone"), url(hook, "/desk"))))
    assert sorted(r.path for r in hook.wait_for(2)) == ["/desk", "/phone"]


def test_reaching_one_address_is_enough(hook, channel):
    channel.send(make_message(), Address(messenger=(dead_url(), url(hook))))
    assert hook.wait_for(1)[0].path == f"/hook/{TOKEN}"


def test_failing_on_every_address_is_retried(hook, channel):
    hook.script(500)
    error = failure(channel, (dead_url(), url(hook)))
    assert not error.permanent
    assert error.message == "messenger failed on all 2 addresses"


def test_without_an_address_the_delivery_is_skipped(channel):
    error = failure(channel, ())
    assert error.permanent and error.message == "no messenger address"


def test_an_address_apprise_does_not_understand_fails_for_good(channel):
    error = failure(channel, (f"nosuchservice://{TOKEN}@127.0.0.1/", "  "))
    assert error.permanent and error.message == "messenger address not valid"


def test_no_url_token_or_message_reaches_the_logs(hook, channel, caplog):
    caplog.set_level(logging.DEBUG)
    channel.send(make_message(), Address(messenger=(url(hook),)))
    hook.script(500)
    failure(channel, (url(hook), dead_url(), f"nosuchservice://{TOKEN}@127.0.0.1/"))

    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    for secret in (TOKEN, "/hook/", ANSWER_URL, "Hall 3"):
        assert secret not in logged
    assert any(r.name == "apprise" and r.levelno >= logging.WARNING for r in caplog.records)  # but failures show


# --------------------------------------------------------------------------- through the worker


def run_worker() -> int:
    worker = DeliveryWorker("test-apprise", threads=2)
    try:
        return worker.run_once()
    finally:
        stop_worker(worker)


@pytest.mark.django_db(transaction=True)
def test_an_alarm_reaches_everyone_with_a_messenger_address(world, hook):
    site = world.a.site
    lead, member = world.a.people[Role.LEAD], world.a.people[Role.MEMBER]
    for person in (lead, member):
        MessengerAddress.objects.create(site=site, membership=person, url=url(hook, f"/{person.pk}/{TOKEN}"))
    alarm, _ = trigger_alarm(site=site, scenario=fire_scenario(site, channels=("apprise",)), user=None)

    handled = run_worker()
    requests = hook.wait_for(2)
    deliveries = Delivery.objects.for_site(site).filter(alarm=alarm)
    assert handled == deliveries.count()
    for person, request in zip((lead, member), sorted(requests, key=lambda r: int(r.path.split("/")[1])),
                               strict=True):
        assert request.path == f"/{person.pk}/{TOKEN}"
        token = request.json["message"].rsplit("/answer/", 1)[1]
        assert links.check_token(token).membership_id == person.pk
        delivery = deliveries.get(recipient__membership=person)
        assert delivery.state == Delivery.State.SENT and delivery.attempt_rows.get().result == "ok"
    others = deliveries.exclude(recipient__membership__in=[lead, member])
    assert set(others.values_list("state", "last_error")) == {(Delivery.State.SKIPPED, "no messenger address")}


@pytest.mark.django_db(transaction=True)
def test_a_messenger_that_failed_is_tried_again(world, hook):
    site = world.a.site
    lead = world.a.people[Role.LEAD]
    MessengerAddress.objects.create(site=site, membership=lead, url=url(hook))
    alarm, _ = trigger_alarm(site=site, scenario=fire_scenario(site, channels=("apprise",), roles=[Role.LEAD]),
                             user=None)
    hook.script(502)

    run_worker()
    delivery = Delivery.objects.for_site(site).get(alarm=alarm)
    assert (delivery.state, delivery.last_error) == (Delivery.State.PENDING, "messenger failed on all 1 addresses")

    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert run_worker() == 1
    assert len(hook.wait_for(2)) == 2
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.SENT
    assert list(delivery.attempt_rows.values_list("result", flat=True)) == ["transient", "ok"]
