"""SMS and voice calls against a local HTTP gateway (the protocol of docs/channels.md), and through the worker."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from rallypoint.alarms import links
from rallypoint.alarms.actions import trigger_alarm
from rallypoint.notify.channels.base import Address, Message, TransportError
from rallypoint.notify.channels.sms import SmsChannel, VoiceChannel
from rallypoint.notify.channels.sms.providers import HttpGateway, Outgoing
from rallypoint.notify.channels.sms.transport import normalise_phone
from rallypoint.notify.models import Delivery
from rallypoint.notify.worker import DeliveryWorker
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario
from tests.sinks import HttpSink, Reply, free_port, stop_worker

ANSWER_URL = "https://localhost:8443/answer/12.1999999999.0123456789abcdef"
PHONE = "+49 170 5550123"


def make_message(**fields) -> Message:
    values = {
        "delivery_key": str(uuid.uuid4()), "alarm_id": 7, "site_id": 3, "event": "triggered",
        "subject": "DRILL · Fire — evacuate", "text": "…", "short": f"DRILL · Fire — evacuate · Hall 3 {ANSWER_URL}",
        "html": "", "url": "https://localhost:8443/alarms/7/", "answer_url": ANSWER_URL, "is_drill": True,
        "priority": 2, "language": "de",
    }
    return Message(**{**values, **fields})


@pytest.fixture
def gateway(settings):
    with HttpSink() as sink:
        settings.SMS_GATEWAY_URL, settings.SMS_GATEWAY_TOKEN = sink.url("/sms"), "sms-secret"
        settings.VOICE_GATEWAY_URL, settings.VOICE_GATEWAY_TOKEN = sink.url("/voice"), ""
        yield sink


@pytest.fixture
def sms():
    channel = SmsChannel()
    yield channel
    channel.close()


def failure(channel, message: Message, phone: str = PHONE) -> TransportError:
    with pytest.raises(TransportError) as caught:
        channel.send(message, Address(phone=phone))
    assert "5550123" not in caught.value.message
    return caught.value


# --------------------------------------------------------------------------- the channel


def test_an_sms_is_posted_to_the_gateway_with_its_idempotency_key(gateway, sms):
    message = make_message()
    provider_id = sms.send(message, Address(phone=PHONE))

    request = gateway.wait_for(1)[0]
    assert provider_id == "msg-1"
    assert (request.method, request.path) == ("POST", "/sms")
    assert request.json == {"kind": "sms", "to": "+491705550123", "text": message.short,
                            "idempotency_key": message.delivery_key, "priority": 2, "drill": True, "language": "de"}
    assert request.headers["Idempotency-Key"] == message.delivery_key
    assert request.headers["Authorization"] == "Bearer sms-secret"
    assert request.headers["Content-Type"] == "application/json"


def test_a_voice_call_reads_the_message_without_the_link(gateway):
    voice = VoiceChannel()
    voice.send(make_message(), Address(phone=PHONE))
    voice.close()

    request = gateway.wait_for(1)[0]
    assert request.path == "/voice"
    assert request.json["kind"] == "voice"
    assert request.json["text"] == "DRILL · Fire — evacuate · Hall 3"
    assert "Authorization" not in request.headers  # no token configured for voice


def test_the_provider_id_is_optional(gateway, sms):
    gateway.script(Reply(202, {}), Reply(200, {"id": 4711}))
    assert sms.send(make_message(), Address(phone=PHONE)) == ""
    assert sms.send(make_message(), Address(phone=PHONE)) == "4711"


def test_it_keeps_one_connection_for_many_messages(gateway, sms):
    for _ in range(5):
        sms.send(make_message(), Address(phone=PHONE))
    gateway.wait_for(5)
    assert gateway.connections == 1


def test_it_reconnects_when_the_gateway_closed_the_connection(gateway, sms):
    sms.send(make_message(), Address(phone=PHONE))
    gateway.drop_connections()
    sms.send(make_message(), Address(phone=PHONE))
    gateway.keep_alive = False  # "Connection: close" after every answer
    sms.send(make_message(), Address(phone=PHONE))
    sms.send(make_message(), Address(phone=PHONE))
    assert len(gateway.wait_for(4)) == 4


@pytest.mark.parametrize(("status", "permanent"), [
    (500, False), (502, False), (503, False), (408, False), (429, False),
    (400, True), (401, True), (404, True), (422, True),
])
def test_it_tells_temporary_from_permanent_gateway_errors(gateway, sms, status, permanent):
    gateway.script(Reply(status, {"error": "number_blocked" if permanent else "busy", "detail": PHONE}))
    error = failure(sms, make_message())
    assert error.permanent is permanent
    assert str(status) in error.message


def test_a_gateway_that_does_not_answer_in_time_is_retried(gateway):
    provider = HttpGateway(gateway.url("/sms"), timeout=(1.0, 0.2))
    gateway.script(Reply(200, delay=0.5))
    with pytest.raises(TransportError) as caught:
        provider.send(Outgoing(kind="sms", to="+491705550123", text="Fire", key="k1"))
    provider.close()
    assert not caught.value.permanent
    assert caught.value.message == "SMS gateway did not answer in time"


def test_an_unreachable_gateway_is_retried(settings, sms):
    settings.SMS_GATEWAY_URL = f"http://127.0.0.1:{free_port()}/sms"
    error = failure(sms, make_message())
    assert not error.permanent
    assert error.message == "SMS gateway unreachable (connection failed)"


def test_without_a_gateway_sms_fail_for_good(settings, sms):
    settings.SMS_GATEWAY_URL = ""
    error = failure(sms, make_message())
    assert error.permanent and error.message == "SMS gateway not configured"
    settings.VOICE_GATEWAY_URL = ""
    assert failure(VoiceChannel(), make_message()).message == "voice gateway not configured"


def test_without_a_number_the_delivery_is_skipped(gateway, sms):
    error = failure(sms, make_message(), phone="  ")
    assert error.permanent and error.message == "no phone number"
    assert gateway.received == 0


@pytest.mark.parametrize(("written", "sent"), [
    ("+49 170 5550123", "+491705550123"),
    ("0049 (170) 555-01.23", "+491705550123"),
    ("+1\u00a0202/555 0143", "+12025550143"),
    ("0170 5550123", "01705550123"),  # national: the gateway knows the country
])
def test_numbers_are_normalised(written, sent):
    assert normalise_phone(written) == sent


@pytest.mark.parametrize("written", ["call me", "+49 170 555 0123 ext. 5", "++491705550123", "12"])
def test_a_number_that_is_not_one_fails_for_good(gateway, sms, written):
    error = failure(sms, make_message(), phone=written)
    assert error.permanent and error.message == "phone number not valid"


# --------------------------------------------------------------------------- through the worker


def run_worker() -> int:
    worker = DeliveryWorker("test-sms", threads=2)
    try:
        return worker.run_once()
    finally:
        stop_worker(worker)


@pytest.mark.django_db(transaction=True)
def test_an_alarm_reaches_every_phone_by_sms_and_voice(world, gateway):
    site = world.a.site
    alarm, _ = trigger_alarm(site=site, scenario=fire_scenario(site, channels=("sms", "voice")), user=None,
                             location_text="Hall 3")
    deliveries = Delivery.objects.for_site(site).filter(alarm=alarm).select_related("recipient__membership")
    with_phone = [d for d in deliveries if d.recipient.membership.phone]
    assert len(with_phone) >= 10  # five personas × two channels

    assert run_worker() == len(deliveries)
    requests = gateway.wait_for(len(with_phone))
    assert sorted(r.json["idempotency_key"] for r in requests) == sorted(str(d.key) for d in with_phone)
    by_key = {str(d.key): d for d in with_phone}
    for request in requests:
        delivery = by_key[request.json["idempotency_key"]]
        assert request.path == f"/{delivery.channel}"
        assert request.json["to"] == normalise_phone(delivery.recipient.membership.phone)
        if delivery.channel == "sms":  # the link answers for exactly this person
            token = request.json["text"].rsplit("/answer/", 1)[1]
            assert links.check_token(token).pk == delivery.recipient_id
    states = {d.pk: d.state for d in Delivery.objects.for_site(site).filter(alarm=alarm)}
    assert all(states[d.pk] == Delivery.State.SENT for d in with_phone)
    skipped = Delivery.objects.for_site(site).filter(alarm=alarm, state=Delivery.State.SKIPPED)
    assert skipped.count() == len(deliveries) - len(with_phone)  # people without a number
    assert set(skipped.values_list("last_error", flat=True)) <= {"no phone number"}


@pytest.mark.django_db(transaction=True)
def test_a_gateway_error_is_retried_with_the_same_idempotency_key(world, gateway):
    site = world.a.site
    alarm, _ = trigger_alarm(site=site, scenario=fire_scenario(site, channels=("sms",), roles=[Role.LEAD]), user=None)
    gateway.script(503)

    run_worker()
    delivery = Delivery.objects.for_site(site).get(alarm=alarm)
    assert (delivery.state, delivery.last_error) == (Delivery.State.PENDING, "SMS gateway answered HTTP 503 scripted")

    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert run_worker() == 1
    first, second = gateway.wait_for(2)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"] == str(delivery.key)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (Delivery.State.SENT, 2)
    assert list(delivery.attempt_rows.values_list("result", flat=True)) == ["transient", "ok"]
