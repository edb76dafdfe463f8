"""The installable app in a real headless Chromium: service worker, Web Push, notifications.

Headless Chromium has no push service: ``pushManager.subscribe()`` is refused in
Playwright's (off-the-record) contexts and never settles in a persistent
profile without a connection to Google's push service. So:

* a push message reaches the service worker through the DevTools protocol
  (``ServiceWorker.deliverPushMessage``), which runs the worker's real ``push``
  handler; notifications are read back with ``registration.getNotifications()``;
* in the full-story test the browser's side of the push service is played by
  tests/pushservice.py: ``PushManager.subscribe`` returns a subscription made by
  that push service (the only stand-in), push.js sends it to the real server, the
  server's worker pushes an alarm to the push service, which checks and decrypts
  it, and the decrypted message is handed to the service worker through the
  DevTools protocol, as the browser's push client would.

Chromium refuses to register a service worker from a server with a certificate
error, even with ``ignore_https_errors``: this browser trusts exactly the test
server's certificate (``--ignore-certificate-errors-spki-list``; tests/test_browser_local_ca.py trusts
the local certificate authority instead, as a person would).
A tap on a notification cannot be simulated in headless Chromium (no CDP method
clicks a notification), so the ``notificationclick`` handler is not run here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import expect

from tests.browser import CHROMIUM, FLAGS, PHONE, enter_password, screenshot
from tests.pushservice import PushService
from tests.server import fresh_database, insecure_context, run_server

pytestmark = pytest.mark.browser

DEADLINE_SECONDS = 20


@pytest.fixture(scope="module")
def push_service(tmp_path_factory):
    with PushService(tmp_path_factory.mktemp("push-service")) as service:
        yield service


@pytest.fixture(scope="module")
def server(tmp_path_factory, push_service):
    """The real server; it may reach the local push service and trusts its certificate."""
    tmp = tmp_path_factory.mktemp("browser-push")
    env = {"RP_PUSH_SERVICE_HOSTS": push_service.host, "REQUESTS_CA_BUNDLE": str(push_service.ca_file)}
    with fresh_database() as database_url, run_server(tmp, env, database_url or "") as running:
        running.database_url = database_url
        yield running


def trusting(server) -> list[str]:
    """Chromium's flags, plus trust in exactly this server's certificate."""
    cert = x509.load_pem_x509_certificate((server.data_dir / "tls" / "cert.pem").read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    return [*FLAGS, f"--ignore-certificate-errors-spki-list={pin}"]


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright  # imported here: only browser tests need it

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def pinned_browser(playwright, server):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=trusting(server))
    yield browser
    browser.close()


def new_app_page(browser, server):
    context = browser.new_context(base_url=server.base_url, ignore_https_errors=True, viewport=PHONE,
                                  locale="en-GB")
    context.grant_permissions(["notifications"])
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


def sign_in(page, server, role: str) -> None:
    enter_password(page, server, role)
    expect(page.get_by_role("heading", level=1)).to_have_text("Headquarters")


class ServiceWorkers:
    """The DevTools protocol's view of the page's service worker registrations."""

    def __init__(self, page):
        self.cdp = page.context.new_cdp_session(page)
        self.registrations: dict[str, str] = {}
        self.cdp.on("ServiceWorker.workerRegistrationUpdated", self._updated)
        self.cdp.send("ServiceWorker.enable")

    def _updated(self, event) -> None:
        for registration in event["registrations"]:
            if not registration["isDeleted"]:
                self.registrations[registration["scopeURL"]] = registration["registrationId"]

    def push(self, origin: str, payload: dict) -> None:
        """What the browser does when its push service hands it a message for this origin's worker."""
        registration = self.registrations[origin + "/"]
        self.cdp.send("ServiceWorker.deliverPushMessage",
                      {"origin": origin, "registrationId": registration, "data": json.dumps(payload)})


def active_worker(page) -> str:
    """Wait until the page has an active service worker; returns its scope."""
    return page.evaluate("navigator.serviceWorker.ready.then(r => r.active && r.scope)")


def notifications(page, count: int) -> list[dict]:
    """The service worker's notifications, once there are ``count`` (or the deadline passes)."""
    script = """navigator.serviceWorker.ready.then(r => r.getNotifications()).then(list => list.map(n => ({
        title: n.title, body: n.body, tag: n.tag, requireInteraction: n.requireInteraction, silent: n.silent,
        vibrate: Array.from(n.vibrate || []), data: n.data})))"""
    deadline = time.monotonic() + DEADLINE_SECONDS
    shown = page.evaluate(script)
    while len(shown) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        shown = page.evaluate(script)
    return shown


def alarm_payload(server, **fields) -> dict:
    return {"alarm": 41, "title": "DRILL · Fire — Evacuate", "body": "Leave by the nearest exit.",
            "url": f"{server.base_url}/alarms/41/", "drill": True, "silent": False, "priority": 1,
            "tag": "alarm-41", "event": "triggered", "lang": "en", **fields}


def test_the_service_worker_shows_a_pushed_alarm_as_a_notification(pinned_browser, server):
    page, errors = new_app_page(pinned_browser, server)
    workers = ServiceWorkers(page)
    sign_in(page, server, "employee")
    assert active_worker(page) == server.base_url + "/"

    workers.push(server.base_url, alarm_payload(server))
    [shown] = notifications(page, 1)
    assert shown["title"] == "DRILL · Fire — Evacuate" and shown["body"] == "Leave by the nearest exit."
    assert shown["tag"] == "alarm-41" and shown["requireInteraction"] is True
    assert shown["silent"] is False and shown["vibrate"]
    assert shown["data"]["url"] == f"{server.base_url}/alarms/41/" and shown["data"]["drill"] is True

    # The all-clear for the same alarm replaces its notification and need not be dismissed by hand.
    workers.push(server.base_url, alarm_payload(server, title="DRILL · All clear: Fire — Evacuate", event="ended"))
    deadline = time.monotonic() + DEADLINE_SECONDS
    while notifications(page, 1)[0]["title"] != "DRILL · All clear: Fire — Evacuate" and time.monotonic() < deadline:
        time.sleep(0.1)
    [replaced] = notifications(page, 1)
    assert replaced["title"] == "DRILL · All clear: Fire — Evacuate" and replaced["requireInteraction"] is False

    # A silent (threat) alarm neither sounds nor vibrates; a foreign link is turned into one of the app.
    workers.push(server.base_url, alarm_payload(server, alarm=42, tag="alarm-42", title="Threat — Lock down",
                                                 silent=True, drill=False, url="https://attacker.example/x/"))
    silent = next(n for n in notifications(page, 2) if n["tag"] == "alarm-42")
    assert silent["silent"] is True and silent["vibrate"] == []
    assert silent["data"]["url"] == f"{server.base_url}/x/"
    page.context.close()
    assert errors == []


# The one stand-in: PushManager hands out the subscription made by the local push service.
PUSH_MANAGER = """
(() => {
  const made = %s;
  let current = null;
  const subscription = () => ({
    endpoint: made.endpoint, expirationTime: null, options: {userVisibleOnly: true, applicationServerKey: null},
    toJSON: () => made, unsubscribe: () => { current = null; return Promise.resolve(true); }
  });
  PushManager.prototype.subscribe = function (options) {
    window.pushOptions = {userVisibleOnly: options.userVisibleOnly,
                          key: Array.from(new Uint8Array(options.applicationServerKey))};
    current = subscription();
    return Promise.resolve(current);
  };
  PushManager.prototype.getSubscription = function () { return Promise.resolve(current); };
})();
"""


def in_server(server, code: str) -> str:
    """Run Python in the server's database (``rallypoint shell``); returns the last line it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RP_")}
    env.update(RP_DATA_DIR=str(server.data_dir), RP_BASE_URL=server.base_url)
    if server.database_url:
        env["RP_DATABASE_URL"] = server.database_url
    done = subprocess.run([sys.executable, "-m", "rallypoint", "shell", "-c", code], env=env, check=True,
                          capture_output=True, text=True, cwd=server.data_dir.parent, timeout=60)
    return done.stdout.strip().splitlines()[-1]


def raise_drill(server, scenario: str) -> int:
    """Trigger a demo scenario as a drill in the server's database (the alarm screens are another task)."""
    return int(in_server(server, (
        "from rallypoint.alarms.actions import trigger_alarm\n"
        "from rallypoint.alarms.models import Scenario\n"
        f"s = Scenario.objects.get(name={scenario!r})\n"
        "alarm, _ = trigger_alarm(site=s.site, scenario=s, is_drill=True, location_text='Lab 3')\n"
        "print(alarm.pk)\n")))


def pushed_to(push_service, alarm_id: int) -> dict:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        found = [p for p in push_service.payloads() if p["alarm"] == alarm_id]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no push message for alarm {alarm_id}; refused: {push_service.rejected}")


def turn_on_push(pinned_browser, server, push_service):
    """The employee signs in on a phone and turns on push on the profile page; returns the page, its errors,
    the DevTools view of its service worker and the profile's push section."""
    with urllib.request.urlopen(server.base_url + "/push/key", context=insecure_context()) as response:
        key = json.load(response)["key"]
    made = push_service.subscribe(key)
    page, errors = new_app_page(pinned_browser, server)
    page.context.add_init_script(PUSH_MANAGER % json.dumps(made.to_json()))
    # A page fulfilled by the test has no network address; Chromium then treats it as public and would
    # block its connections to this loopback server (local network access), which the real page may make.
    page.context.grant_permissions(["local-network-access"])
    workers = ServiceWorkers(page)
    sign_in(page, server, "employee")
    page.goto("/accounts/profile/")
    assert active_worker(page) == server.base_url + "/"  # push.js registered it
    section = page.get_by_role("region", name="Push notifications on this device")
    expect(section.get_by_role("status")).to_have_text("Off: this device gets no alarm notifications.")
    with page.expect_response("**/push/subscriptions/") as answer:
        section.get_by_role("button", name="Turn on").click()
    assert answer.value.status == 201
    expect(section.get_by_role("status")).to_have_text("On: alarms reach this device as notifications.")
    expect(section.get_by_role("button", name="Turn off")).to_have_attribute("aria-pressed", "true")
    options = page.evaluate("window.pushOptions")
    assert options["userVisibleOnly"] is True
    assert bytes(options["key"]) == base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    return page, errors, workers, section


def test_a_person_turns_on_push_and_a_triggered_alarm_becomes_a_notification(pinned_browser, server, push_service):
    page, errors, workers, section = turn_on_push(pinned_browser, server, push_service)
    screenshot(page, "push-on-phone")

    alarm_id = raise_drill(server, "Threat")
    payload = pushed_to(push_service, alarm_id)  # the server's worker sent it; the push service decrypted it
    workers.push(server.base_url, payload)
    shown = next(n for n in notifications(page, 1) if n["tag"] == f"alarm-{alarm_id}")
    assert shown["title"] == "DRILL · Threat — Lock down" and "Lab 3" in shown["body"]
    assert shown["silent"] is True  # the threat scenario is silent
    assert shown["data"]["url"] == f"{server.base_url}/alarms/{alarm_id}/"
    # Its Accept button answers without opening the app.
    assert [(a["action"], a["title"]) for a in payload["actions"]] == [("accepted", "Accept"), ("declined", "Decline")]
    assert in_server(server, ANSWER_OF_EMPLOYEE.format(alarm=alarm_id)) == "answer:"
    tap_button(page, f"alarm-{alarm_id}", "accepted")
    assert in_server(server, ANSWER_OF_EMPLOYEE.format(alarm=alarm_id)) == "answer:accepted"

    with page.expect_response("**/push/subscriptions/remove/") as answer:
        section.get_by_role("button", name="Turn off").click()
    assert answer.value.json() == {"removed": 1}
    expect(section.get_by_role("status")).to_have_text("Off: this device gets no alarm notifications.")
    page.context.close()
    assert errors == []


#: The employee's evacuation status for an alarm, as the roll call and the cockpit read it.
STATUS_OF_EMPLOYEE = """
from rallypoint.accounts.models import User
from rallypoint.evacuation.models import PersonState
user = User.objects.by_email("employee@demo.rallypoint.example").get()
state = PersonState.objects.filter(alarm_id={alarm}, membership__user=user).first()
print(state.status if state else "none")
"""


#: The employee's answer to an alarm ("" before they answer).
ANSWER_OF_EMPLOYEE = """
from rallypoint.accounts.models import User
from rallypoint.alarms.models import AlarmRecipient
user = User.objects.by_email("employee@demo.rallypoint.example").get()
print("answer:" + AlarmRecipient.objects.get(alarm_id={alarm}, membership__user=user).answer)
"""


def tap_button(page, tag: str, action: str) -> None:
    """What the browser does when the person taps a button of the notification with ``tag``: the service
    worker's own click handler runs with the real notification (DevTools cannot tap one)."""
    [worker] = page.context.service_workers
    worker.evaluate("""([tag, action]) => self.registration.getNotifications({tag})
        .then(list => notificationClicked(list[0], action)).then(() => true)""", [tag, action])


def test_the_buttons_of_an_evacuation_notification_report_the_person_safe(pinned_browser, server, push_service):
    page, errors, workers, section = turn_on_push(pinned_browser, server, push_service)
    alarm_id = int(in_server(server, (
        "from rallypoint.alarms.actions import trigger_alarm\n"
        "from rallypoint.alarms.models import Scenario\n"
        "from rallypoint.evacuation.models import Building\n"
        "s = Scenario.objects.get(name='Fire', site__name='Headquarters')\n"
        "a, _ = trigger_alarm(site=s.site, scenario=s, level=s.levels.get(name='Evacuate'), is_drill=True,\n"
        "                     building=Building.objects.get(site=s.site, code='A'))\n"
        "print(a.pk)\n")))
    payload = pushed_to(push_service, alarm_id)
    assert [(a["action"], a["title"]) for a in payload["actions"]] == [("safe", "I'm safe"),
                                                                       ("need_help", "I need help")]
    assert payload["answer"].startswith(server.base_url + "/answer/")
    workers.push(server.base_url, payload)
    tag = f"alarm-{alarm_id}"
    shown = next(n for n in notifications(page, 1) if n["tag"] == tag)
    assert shown["data"]["answer"] == payload["answer"]
    assert in_server(server, STATUS_OF_EMPLOYEE.format(alarm=alarm_id)) == "none"

    tap_button(page, tag, "safe")
    assert in_server(server, STATUS_OF_EMPLOYEE.format(alarm=alarm_id)) == "safe"
    # The notification is gone: the person has answered.
    assert not [n for n in notifications(page, 0) if n["tag"] == tag]
    page.context.close()
    assert errors == []


def test_the_web_app_is_installable(playwright, server, tmp_path):
    # Playwright's usual contexts are off the record, where Chromium installs no app: use a real profile.
    context = playwright.chromium.launch_persistent_context(
        tmp_path / "profile", executable_path=CHROMIUM, headless=True, args=trusting(server),
        base_url=server.base_url, ignore_https_errors=True, viewport=PHONE, locale="en-GB")
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto("/accounts/login/")
        assert active_worker(page) == server.base_url + "/"
        cdp = context.new_cdp_session(page)
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["url"].endswith("/static/web/manifest.webmanifest") and manifest["errors"] == []
        assert json.loads(manifest["data"])["start_url"] == "/"
        assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    finally:
        context.close()
