"""Sign-in in a real Chromium against the in-process test server, with the clock faked where time matters."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from rallypoint.accounts.models import User
from rallypoint.people.models import Membership
from rallypoint.tenants import actions
from tests.browser import PHONE, screenshot
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def person(transactional_db):
    org = actions.create_organization(name="Browser Org")
    site = actions.create_site(actor=None, organization=org, name="School Nord")
    user = User.objects.create_user("caretaker@example.org", PASSWORD)
    Membership.objects.create(site=site, user=user, role="employee", full_name="Carla Caretaker")
    return user


@pytest.fixture
def context(browser, live_server):
    ctx = browser.new_context(base_url=live_server.url, viewport=PHONE, locale="en-GB")
    yield ctx
    ctx.close()


def sign_in(page, email=None, password=PASSWORD):
    page.goto("/accounts/login/")
    page.get_by_label("E-mail", exact=True).fill(email or "caretaker@example.org")
    page.get_by_label("Password", exact=True).fill(password)
    expect(page.locator("[data-pow-status]")).to_have_text("Your browser passed the automatic check.")
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_with_the_proof_of_work(context, person):
    page = context.new_page()
    page.goto("/accounts/login/")
    expect(page.get_by_role("button", name="Sign in")).to_be_enabled()  # enabled once the check is solved
    sign_in(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("School Nord")


def test_the_password_can_be_shown_on_request(context, person):
    page = context.new_page()
    page.goto("/accounts/login/")
    field = page.get_by_label("Password", exact=True)
    field.fill("secret words")
    expect(field).to_have_attribute("type", "password")
    page.get_by_role("button", name="Show").click()
    expect(field).to_have_attribute("type", "text")
    page.get_by_role("button", name="Hide").click()
    expect(field).to_have_attribute("type", "password")


def test_wrong_passwords_make_the_wait_grow_and_the_right_one_works_after_it(context, person):
    page = context.new_page()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(4):
            sign_in(page, password="not the password")
            expect(page.get_by_text("E-mail or password is not right")).to_be_visible()
        expect(page.locator("[data-countdown]")).to_contain_text("wait 2 seconds")
        clock.shift(timedelta(seconds=3))
        sign_in(page, password="still not it")
        expect(page.locator("[data-countdown]")).to_contain_text("wait 4 seconds")
        sign_in(page)  # too early: held back although the password is right
        expect(page.locator("[data-countdown]")).to_contain_text("Too many failed attempts")
        expect(page.get_by_text("E-mail or password is not right")).to_have_count(0)
        screenshot(page, "sign-in-held-back-phone")
        clock.shift(timedelta(seconds=5))
        sign_in(page)
        expect(page.get_by_role("heading", level=1)).to_have_text("School Nord")


def _request_link(page, send_outbox) -> str:
    page.goto("/accounts/password-reset/")
    page.get_by_label("E-mail", exact=True).fill("caretaker@example.org")
    expect(page.locator("[data-pow-status]")).to_have_text("Your browser passed the automatic check.")
    page.get_by_role("button", name="Send link").click()
    expect(page.get_by_role("status")).to_contain_text("If the address belongs to an account")
    send_outbox()  # what the worker does (the in-process test server runs none)
    return re.search(r"https?://\S+", mail.outbox[-1].body).group(0).split("/", 3)[3]


def _set_password(page, path: str, password: str) -> None:
    page.goto("/" + path)
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("New password confirmation", exact=True).fill(password)
    expect(page.locator("[data-pow-status]")).to_have_text("Your browser passed the automatic check.")
    page.get_by_role("button", name="Save password").click()


def test_a_reset_link_works_once(context, person, settings, send_outbox):
    settings.BASE_URL = "http://testserver"  # the link's host does not matter, its path does
    page = context.new_page()
    path = _request_link(page, send_outbox)
    _set_password(page, path, "a fresh passphrase for carla")
    expect(page.get_by_role("status")).to_contain_text("Your password is set")
    assert "set-password" not in page.url or path.split("/")[-2] not in page.url
    page.goto("/" + path)
    expect(page.get_by_role("heading", level=1)).to_have_text("This link no longer works")
    sign_in(page, password="a fresh passphrase for carla")
    expect(page.get_by_role("heading", level=1)).to_have_text("School Nord")


def test_a_reset_link_older_than_24_hours_is_refused(context, person, settings, send_outbox):
    settings.BASE_URL = "http://testserver"
    page = context.new_page()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        path = _request_link(page, send_outbox)
        clock.shift(timedelta(hours=24, minutes=1))
        page.goto("/" + path)
        expect(page.get_by_role("heading", level=1)).to_have_text("This link no longer works")


def test_an_idle_session_ends(context, person):
    page = context.new_page()
    # The page's live stream retries its socket in the background (the test server has none). A retry that
    # loaded the session just before the clock jumps would save it just after, with a fresh idle time.
    page.route_web_socket(re.compile(r"/ws/stream"), lambda socket: socket.close())
    with time_machine.travel(timezone.now(), tick=False) as clock:
        sign_in(page)
        expect(page.get_by_role("heading", level=1)).to_have_text("School Nord")
        clock.shift(timedelta(minutes=20))
        page.reload()
        expect(page.get_by_role("heading", level=1)).to_have_text("School Nord")
        clock.shift(timedelta(minutes=31))
        page.reload()
        expect(page).to_have_url(re.compile(r"/accounts/login/"))


STORED = """async () => {
    const databases = (await indexedDB.databases()).map(d => d.name);
    return {local: localStorage.length, session: sessionStorage.length, databases: databases,
            caches: await caches.keys()};
}"""


def test_nothing_the_pages_stored_stays_on_the_device_after_sign_out(context, person):
    page = context.new_page()
    sign_in(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("School Nord")
    page.evaluate("""async () => {
        localStorage.setItem("rp.evac.test", "[1,2]");
        sessionStorage.setItem("rp.note", "x");
        await new Promise((done, fail) => {
            const open = indexedDB.open("rp-test", 1);
            open.onupgradeneeded = () => open.result.createObjectStore("marks");
            open.onsuccess = () => { open.result.close(); done(); };
            open.onerror = fail;
        });
        await (await caches.open("rp-pages")).put("/offline-copy", new Response("names"));
    }""")
    assert page.evaluate(STORED) == {"local": 1, "session": 1, "databases": ["rp-test"], "caches": ["rp-pages"]}
    page.get_by_role("button", name="Menu").click()  # a phone: the sign-out button is in the menu
    with page.expect_response(re.compile(r"/accounts/logout/")) as signed_out:
        page.get_by_role("button", name="Sign out").click()
    response = signed_out.value
    assert response.all_headers()["clear-site-data"] == '"cache", "storage"'
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    assert page.evaluate(STORED) == {"local": 0, "session": 0, "databases": [], "caches": []}


def test_sign_out_everywhere(browser, live_server, person):
    phone = browser.new_context(base_url=live_server.url, viewport=PHONE, locale="en-GB",
                                user_agent="Mozilla/5.0 (Linux; Android 14) Chrome/126.0 Mobile Safari/537.36")
    desk = browser.new_context(base_url=live_server.url, locale="en-GB")
    phone_page, desk_page = phone.new_page(), desk.new_page()
    sign_in(phone_page)
    sign_in(desk_page)
    desk_page.goto("/accounts/sessions/")
    expect(desk_page.locator("tbody tr")).to_have_count(2)
    expect(desk_page.get_by_text("Chrome · Android")).to_be_visible()
    screenshot(desk_page, "sessions-desktop")
    desk_page.once("dialog", lambda dialog: dialog.accept())
    desk_page.get_by_role("button", name="Sign out everywhere").click()
    expect(desk_page).to_have_url(re.compile(r"/accounts/login/"))
    phone_page.reload()
    expect(phone_page).to_have_url(re.compile(r"/accounts/login/"))
    phone.close()
    desk.close()
