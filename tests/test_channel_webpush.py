"""Web Push: a browser subscribes through the app, an alarm reaches its push service encrypted.

The push service is a real local HTTPS server (tests/pushservice.py) that checks
the VAPID token and decrypts the RFC 8291 body with the browser's keys.
"""

from __future__ import annotations

import base64
import json
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from django.contrib.staticfiles import finders
from django.test import Client

from rallypoint.alarms.actions import trigger_alarm
from rallypoint.audit.models import AuditEntry
from rallypoint.evacuation.models import PersonState
from rallypoint.notify.channels.webpush import vapid
from rallypoint.notify.models import Delivery, PushSubscription
from rallypoint.notify.worker import DeliveryWorker
from tests.alarm_fixtures import fire_scenario
from tests.proxy import ConnectProxy
from tests.pushservice import PushService

# The worker sends from its own threads, with their own database connections: commit for real.
pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIBE, REMOVE, KEY = "/push/subscriptions/", "/push/subscriptions/remove/", "/push/key"


@pytest.fixture
def push_service(tmp_path, settings, monkeypatch):
    settings.VAPID_KEY_FILE = tmp_path / "keys" / "vapid.pem"
    with PushService(tmp_path) as service:
        settings.PUSH_SERVICE_HOSTS = ["fcm.googleapis.com", service.host]
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(service.ca_file))  # trust its self-signed certificate
        yield service


def browser_subscribes(client, service, **extra):
    """What push.js does: subscribe with the server's key, then send the subscription to the server."""
    key = client.get(KEY).json()["key"]
    subscription = service.subscribe(key)
    response = client.post(SUBSCRIBE, {**subscription.to_json(), **extra}, content_type="application/json")
    assert response.status_code == 201, response.content
    return subscription


def send_deliveries() -> int:
    worker = DeliveryWorker("t", threads=2)
    try:
        return worker.run_once()
    finally:
        worker.close()  # its threads hold database connections


def raise_alarm(world, **fields):
    scenario = fire_scenario(world.a.site, channels=("push",), **fields)
    alarm, _ = trigger_alarm(site=world.a.site, scenario=scenario, user=world.persona("lead"), is_drill=True,
                             location_text="Building 2")
    return alarm


def push_delivery(alarm, membership) -> Delivery:
    return Delivery.objects.get(alarm=alarm, channel="push", recipient__membership=membership)


def test_a_subscribed_browser_receives_the_alarm_and_decrypts_it(world, signed_in, push_service):
    client = signed_in("employee")
    browser_subscribes(client, push_service)
    alarm = raise_alarm(world)

    assert send_deliveries() > 0

    [payload] = push_service.payloads()
    assert payload["alarm"] == alarm.pk
    assert payload["title"] == "DRILL · Fire — Pre-alarm"
    assert payload["drill"] is True and payload["silent"] is False
    assert payload["tag"] == f"alarm-{alarm.pk}" and payload["event"] == "triggered"
    assert payload["url"].endswith(f"/alarms/{alarm.pk}/")
    assert "Building 2" in payload["body"] and "/answer/" not in payload["body"]
    [received] = push_service.received
    assert received.headers["urgency"] == "high" and int(received.headers["ttl"]) > 0
    assert received.headers["topic"] == f"alarm-{alarm.pk}"
    employee = world.a.people["employee"]
    assert push_delivery(alarm, employee).state == Delivery.State.SENT
    assert PushSubscription.objects.get(membership=employee).last_success_at is not None
    # People without a subscription are not reachable this way: skipped, not failed.
    lead = push_delivery(alarm, world.a.people["lead"])
    assert lead.state == Delivery.State.SKIPPED and lead.last_error == "no push subscription"


def test_one_signed_token_is_reused_for_the_same_push_service(world, signed_in, push_service):
    browser_subscribes(signed_in("employee"), push_service)
    raise_alarm(world)
    raise_alarm(world, name="Gas")
    send_deliveries()
    tokens = {r.headers["authorization"] for r in push_service.received}
    assert len(push_service.received) == 2 and len(tokens) == 1


def test_a_subscription_the_push_service_has_forgotten_is_removed(world, signed_in, push_service):
    subscription = browser_subscribes(signed_in("employee"), push_service)
    push_service.answer(subscription, 410)
    alarm = raise_alarm(world)

    send_deliveries()

    employee = world.a.people["employee"]
    assert not PushSubscription.objects.filter(membership=employee).exists()
    delivery = push_delivery(alarm, employee)
    assert delivery.state == Delivery.State.SKIPPED
    assert delivery.last_error.startswith("no push subscription left")
    assert subscription.endpoint not in delivery.last_error


def test_reaching_one_of_two_browsers_is_enough(world, signed_in, push_service):
    client = signed_in("employee")
    gone = browser_subscribes(client, push_service)
    browser_subscribes(client, push_service)
    push_service.answer(gone, 404)
    alarm = raise_alarm(world)

    send_deliveries()

    employee = world.a.people["employee"]
    assert push_delivery(alarm, employee).state == Delivery.State.SENT
    assert PushSubscription.objects.filter(membership=employee).count() == 1
    assert len(push_service.payloads()) == 1


@pytest.mark.parametrize(("status", "state"), [(503, Delivery.State.PENDING), (429, Delivery.State.PENDING),
                                               (400, Delivery.State.FAILED)])
def test_busy_push_services_are_retried_and_refusals_are_final(world, signed_in, push_service, status, state):
    subscription = browser_subscribes(signed_in("employee"), push_service)
    push_service.answer(subscription, status)
    alarm = raise_alarm(world)

    send_deliveries()

    delivery = push_delivery(alarm, world.a.people["employee"])
    assert delivery.state == state
    assert str(status) in delivery.last_error and "127.0.0.1" not in delivery.last_error
    assert PushSubscription.objects.filter(membership=world.a.people["employee"]).exists()


def test_an_unreachable_push_service_is_retried(world, signed_in, push_service, settings):
    subscription = browser_subscribes(signed_in("employee"), push_service)
    push_service.stop()
    alarm = raise_alarm(world)

    send_deliveries()

    delivery = push_delivery(alarm, world.a.people["employee"])
    assert delivery.state == Delivery.State.PENDING
    assert delivery.last_error == "push service unreachable"
    assert subscription.endpoint not in delivery.last_error


def test_the_push_service_is_reached_through_the_https_proxy_the_environment_names(world, signed_in, push_service,
                                                                                   monkeypatch):
    browser_subscribes(signed_in("employee"), push_service)
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        alarm = raise_alarm(world)
        send_deliveries()
        assert proxy.tunnels == [push_service.host]  # a tunnel: TLS and the VAPID check end to end
        assert push_delivery(alarm, world.a.people["employee"]).state == Delivery.State.SENT
        assert len(push_service.payloads()) == 1

        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # hosts reached directly
        raise_alarm(world, name="Gas")
        send_deliveries()
        assert len(proxy.tunnels) == 1 and len(push_service.payloads()) == 2


def test_a_proxy_named_without_scheme_and_with_credentials_is_used_as_named(world, signed_in, push_service,
                                                                            monkeypatch):
    browser_subscribes(signed_in("employee"), push_service)
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with ConnectProxy(credentials="rally:s3cret") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"rally:s3cret@{proxy.url.removeprefix('http://')}")
        alarm = raise_alarm(world)
        send_deliveries()
        assert proxy.tunnels == [push_service.host]
        assert push_delivery(alarm, world.a.people["employee"]).state == Delivery.State.SENT

        monkeypatch.setenv("HTTPS_PROXY", f"http://rally:wrong@{proxy.url.removeprefix('http://')}")
        alarm = raise_alarm(world, name="Gas")
        send_deliveries()
        delivery = push_delivery(alarm, world.a.people["employee"])
        assert delivery.state == Delivery.State.PENDING and delivery.last_error == "push service unreachable"
        assert "wrong" not in delivery.last_error and len(push_service.payloads()) == 1


def test_a_proxy_that_cannot_be_reached_leaves_the_message_for_a_retry(world, signed_in, push_service, monkeypatch):
    browser_subscribes(signed_in("employee"), push_service)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with ConnectProxy() as proxy:
        closed = proxy.url
    monkeypatch.setenv("HTTPS_PROXY", closed)
    alarm = raise_alarm(world)

    send_deliveries()

    delivery = push_delivery(alarm, world.a.people["employee"])
    assert delivery.state == Delivery.State.PENDING and delivery.last_error == "push service unreachable"
    assert push_service.requests == []


def test_a_push_service_removed_from_the_allowed_hosts_is_not_contacted(world, signed_in, push_service, settings):
    browser_subscribes(signed_in("employee"), push_service)
    settings.PUSH_SERVICE_HOSTS = ["fcm.googleapis.com"]
    alarm = raise_alarm(world)

    send_deliveries()

    assert push_service.requests == []
    assert push_delivery(alarm, world.a.people["employee"]).state == Delivery.State.FAILED


@pytest.mark.parametrize("endpoint", [
    "https://attacker.example/wpush/abc",  # not a push service
    "https://169.254.169.254/latest/meta-data",  # cloud metadata
    "http://127.0.0.1:{port}/wpush/v2/abc",  # the right host without TLS
    "https://127.0.0.1:22/wpush/v2/abc",  # the right host, another port
    "https://user@127.0.0.1:{port}/wpush/v2/abc",  # credentials in the URL
    "https://fcm.googleapis.com.attacker.example/fcm/send/abc",
    "ftp://fcm.googleapis.com/abc",
])
def test_an_endpoint_outside_the_allowed_push_services_is_refused(world, signed_in, push_service, endpoint):
    client = signed_in("employee")
    subscription = push_service.subscribe(client.get(KEY).json()["key"]).to_json()
    subscription["endpoint"] = endpoint.format(port=push_service.port)
    response = client.post(SUBSCRIBE, subscription, content_type="application/json")
    assert response.status_code == 400
    assert "push service is not allowed" in response.json()["detail"]
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize(("keys", "message"), [
    ({"p256dh": "BAAA", "auth": "A" * 22}, "p256dh"),  # too short
    ({"p256dh": "BP" + "A" * 85, "auth": "A" * 22}, "p256dh"),  # 65 bytes, but not a point on the curve
    ({"p256dh": None, "auth": "A" * 22}, "p256dh"),
    ({"auth": "A" * 22}, "p256dh"),
    ({"p256dh": "<valid>", "auth": "A" * 20}, "auth"),  # 15 bytes
    ({"p256dh": "<valid>", "auth": "A+/" * 7 + "A"}, "auth"),  # not base64url
])
def test_malformed_keys_are_refused_with_a_clear_message(world, signed_in, push_service, keys, message):
    client = signed_in("employee")
    subscription = push_service.subscribe(client.get(KEY).json()["key"]).to_json()
    if keys.get("p256dh") == "<valid>":
        keys["p256dh"] = subscription["keys"]["p256dh"]
    subscription["keys"] = keys
    response = client.post(SUBSCRIBE, subscription, content_type="application/json")
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"endpoint"', b"{}"])
def test_a_body_that_is_no_subscription_gets_400(world, signed_in, push_service, body):
    response = signed_in("employee").post(SUBSCRIBE, body, content_type="application/json")
    assert response.status_code == 400 and response.json()["detail"]


def test_subscribing_again_keeps_one_row_and_the_audit_trail_never_holds_the_endpoint(world, signed_in,
                                                                                       push_service):
    client = signed_in("employee")
    subscription = browser_subscribes(client, push_service, label="Phone")
    client.post(SUBSCRIBE, {**subscription.to_json(), "label": "Work phone"}, content_type="application/json")

    row = PushSubscription.objects.get()
    assert row.label == "Work phone" and row.membership == world.a.people["employee"]
    actions = list(AuditEntry.objects.filter(object_type="push_subscription").order_by("pk")
                   .values_list("action", flat=True))
    assert actions == ["push.subscribed", "push.renewed"]
    secrets_ = (subscription.endpoint, subscription.to_json()["keys"]["auth"], subscription.endpoint.rsplit("/")[-1])
    for entry in AuditEntry.objects.all():
        assert not any(s in json.dumps(entry.changes) for s in secrets_)


def test_without_a_label_the_browser_is_described_from_its_user_agent(world, signed_in, push_service):
    client = signed_in("employee")
    subscription = push_service.subscribe(client.get(KEY).json()["key"])
    client.post(SUBSCRIBE, subscription.to_json(), content_type="application/json",
                HTTP_USER_AGENT="Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36")
    assert PushSubscription.objects.get().label == "Chrome · Android"


def test_the_endpoint_is_stored_encrypted(world, signed_in, push_service):
    subscription = browser_subscribes(signed_in("employee"), push_service)
    stored = PushSubscription.objects.values_list("endpoint", "p256dh", "auth").get()
    assert subscription.endpoint not in stored[0]
    assert PushSubscription.objects.get().endpoint == subscription.endpoint


def test_a_browser_removes_its_own_subscription(world, signed_in, push_service):
    client = signed_in("employee")
    subscription = browser_subscribes(client, push_service)
    response = client.post(REMOVE, {"endpoint": subscription.endpoint}, content_type="application/json")
    assert response.status_code == 200 and response.json() == {"removed": 1}
    assert not PushSubscription.objects.exists()
    assert AuditEntry.objects.filter(action="push.unsubscribed").count() == 1


def test_nobody_else_can_remove_a_subscription(world, signed_in, push_service):
    subscription = browser_subscribes(signed_in("employee"), push_service)
    others = [(world.b.people["admin"].user, world.b.site), (world.a.people["admin"].user, world.a.site),
              (world.super_b, world.b.site)]
    for user, site in others:
        other = Client()
        other.force_login(user)
        session = other.session
        session["rp_site_id"] = site.pk
        session.save()
        response = other.post(REMOVE, {"endpoint": subscription.endpoint}, content_type="application/json")
        assert response.status_code == 200 and response.json() == {"removed": 0}
    assert PushSubscription.objects.filter(membership=world.a.people["employee"]).exists()


def test_subscribing_needs_sign_in_and_the_csrf_token(world, push_service):
    subscription = push_service.subscribe(vapid.application_server_key()).to_json()
    anonymous = Client().post(SUBSCRIBE, subscription, content_type="application/json")
    assert anonymous.status_code == 401
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(world.a.people["employee"].user)
    assert strict.post(SUBSCRIBE, subscription, content_type="application/json").status_code == 403
    assert strict.post(REMOVE, {"endpoint": subscription["endpoint"]},
                       content_type="application/json").status_code == 403
    assert not PushSubscription.objects.exists()


def test_the_vapid_key_is_made_once_private_and_its_public_half_is_served(client, settings, tmp_path):
    settings.VAPID_KEY_FILE = tmp_path / "data" / "vapid.pem"
    key = client.get(KEY).json()["key"]

    assert stat.S_IMODE(settings.VAPID_KEY_FILE.stat().st_mode) == 0o600
    private = serialization.load_pem_private_key(settings.VAPID_KEY_FILE.read_bytes(), password=None)
    point = private.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
    assert base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)) == point and "=" not in key
    assert client.get(KEY).json()["key"] == key  # the same key again, not a new one
    assert list(settings.VAPID_KEY_FILE.parent.iterdir()) == [settings.VAPID_KEY_FILE]  # no temporary file left


def test_the_service_worker_is_served_for_the_whole_app(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Service-Worker-Allowed"] == "/"
    assert response["Cache-Control"] in ("no-cache", "no-store")
    assert b"showNotification" in response.content


def test_the_manifest_describes_an_installable_app():
    manifest = json.loads(open(finders.find("web/manifest.webmanifest"), encoding="utf-8").read())
    assert manifest["start_url"] == "/" and manifest["display"] == "standalone"
    assert {"192x192", "512x512"} <= {icon["sizes"] for icon in manifest["icons"]}
    for icon in manifest["icons"]:
        assert finders.find(icon["src"].removeprefix("/static/")), icon["src"]
    assert manifest["theme_color"].lower() not in ("#b3261e", "#ff0000", "red")


def test_a_push_service_refuses_messages_signed_with_another_key(world, signed_in, push_service, settings, tmp_path):
    browser_subscribes(signed_in("employee"), push_service)
    settings.VAPID_KEY_FILE = tmp_path / "new" / "vapid.pem"  # the key file was lost and made anew
    alarm = raise_alarm(world)

    send_deliveries()

    assert push_service.payloads() == []
    assert push_service.rejected == ["k is not the key this subscription was made for"]
    delivery = push_delivery(alarm, world.a.people["employee"])
    assert delivery.state == Delivery.State.FAILED and "403" in delivery.last_error


def test_signing_out_ends_this_browsers_notifications_but_an_expired_session_does_not(world, push_service):
    """A shared device must not show the next alarms: signing out removes that browser's subscription.
    A session that only expired keeps it (alarms still reach the phone); "sign out everywhere" removes
    every device's (a lost phone)."""
    employee = world.persona("employee")
    shared, own, phone = Client(), Client(), Client()
    subscriptions = []
    for browser in (shared, own, phone):
        browser.force_login(employee)
        subscriptions.append(browser_subscribes(browser, push_service))
    rows = PushSubscription.objects.filter(membership=world.a.people["employee"])
    assert rows.count() == 3

    shared.post("/accounts/logout/")
    assert rows.count() == 2
    assert AuditEntry.objects.filter(action="push.signed_out").count() == 1

    own.session.flush()  # this browser's session simply ends (idle): its notifications go on
    assert rows.count() == 2

    phone.post("/accounts/sessions/end-all/")  # "sign out everywhere": every device, the idle one too
    assert rows.count() == 0
    assert AuditEntry.objects.filter(action="push.signed_out").count() == 3
    raise_alarm(world)
    assert send_deliveries() > 0
    assert push_service.received == []


def test_the_notifications_buttons_answer_with_the_one_time_link(world, signed_in, push_service, client):
    """The payload (encrypted to the browser) carries the recipient's answer link and two buttons: accept and
    decline for an alarm that asks for it; "I'm safe" and "I need help" in an evacuation. sw.js posts the
    chosen button to the link, as the answer link page's own buttons do."""
    signed_in_client = signed_in("employee")
    browser_subscribes(signed_in_client, push_service)
    raise_alarm(world)
    send_deliveries()
    [payload] = push_service.payloads()
    assert [a["action"] for a in payload["actions"]] == ["accepted", "declined"]
    assert "/answer/" in payload["answer"]

    evacuation = fire_scenario(world.a.site, channels=("push",), name="Evacuation", evacuates="all")
    evac_alarm, _ = trigger_alarm(site=world.a.site, scenario=evacuation, level=evacuation.levels.last())
    send_deliveries()
    evac_payload = next(p for p in push_service.payloads() if p["alarm"] == evac_alarm.pk)
    assert [(a["action"], a["title"]) for a in evac_payload["actions"]] == [("safe", "I'm safe"),
                                                                          ("need_help", "I need help")]
    answer = evac_payload["answer"][evac_payload["answer"].index("/answer/"):]
    assert client.post(answer, {"status": "need_help"}).status_code == 200
    state = PersonState.objects.get(alarm=evac_alarm, membership=world.a.people["employee"])
    assert (state.status, state.report.via) == ("need_help", "link")
