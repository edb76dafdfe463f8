"""The web app in a real headless Chromium against the real `rallypoint run` server."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import expect

from tests.browser import DESKTOP, PHONE, enter_password, new_page, open_menu, screenshot
from tests.server import run_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with run_server(tmp_path_factory.mktemp("browser")) as running:
        yield running


def sign_in(page, server, role: str) -> None:
    enter_password(page, server, role)
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))
    second_factor(page, role)
    expect(page.get_by_role("heading", level=1)).to_have_text("Headquarters")


def signed_in_state(browser, server, role: str) -> dict:
    """The cookies of ``role`` signed in on the demo server, for contexts of several tests to start from."""
    page, _ = new_page(browser, server, DESKTOP)
    sign_in(page, server, role)
    state = page.context.storage_state()
    page.context.close()
    return state


AUTHENTICATOR_APPS: dict[str, pyotp.TOTP] = {}
LAST_STEP: dict[str, int] = {}


def _code(role: str) -> str:
    """The code of the next unused time step (a step works once), at most one step ahead: a persona that
    signs in a third time within one step waits for the next step to begin (a fast machine does that)."""
    now = int(time.time()) // 30
    step = max(now, LAST_STEP.get(role, 0) + 1)
    if step > now + 1:
        time.sleep(max(0.0, (step - 1) * 30 - time.time()) + 0.1)  # a clock boundary, not a guess
    assert step <= int(time.time()) // 30 + 1
    LAST_STEP[role] = step
    return AUTHENTICATOR_APPS[role].at(step * 30)


def second_factor(page, role: str) -> None:
    """The default policy requires administrators to use a second factor: set one up once, then use it."""
    if page.url.endswith("/accounts/second-factor/setup/"):
        page.get_by_role("button", name="Set up an authenticator app").click()
        secret = page.locator("[data-totp-secret]").inner_text().replace(" ", "")
        AUTHENTICATOR_APPS[role] = pyotp.TOTP(secret)
        page.get_by_label("Code from your authenticator app").fill(_code(role))
        page.get_by_role("button", name="Confirm").click()
        page.get_by_role("link", name="I have saved the codes").click()
        page.goto("/")
    elif page.url.endswith("/accounts/second-factor/verify/"):
        page.get_by_label("Code from your authenticator app").fill(_code(role))
        page.get_by_role("button", name="Continue").click()


def test_admin_creates_a_person_and_finds_it_in_the_audit_trail(browser, server):
    page, errors = new_page(browser, server, DESKTOP)
    sign_in(page, server, "admin")
    page.get_by_role("link", name="People", exact=True).click()
    page.get_by_role("link", name="Add person").click()
    page.get_by_label("Name", exact=True).fill("Paula Prüfer")
    page.get_by_label("E-mail", exact=True).fill("paula.pruefer@example.org")
    page.get_by_label("Phone", exact=True).fill("+49 30 1234567")
    page.get_by_label("Department", exact=True).fill("Chemistry lab")
    page.get_by_label("Role", exact=True).select_option("member")
    page.get_by_role("button", name="Add person").click()
    expect(page.get_by_role("status")).to_contain_text("Person added. The invitation e-mail is on its way.")
    page.get_by_role("link", name="Audit trail").click()
    first = page.locator("tbody tr").first
    expect(first).to_contain_text("Invitation sent")
    row = page.locator("tbody tr", has_text="Person added").first
    expect(row).to_contain_text("Paula Prüfer")  # the current name, looked up live
    expect(row).to_contain_text("Anton Adler")  # who did it
    expect(row).not_to_contain_text("paula.pruefer@example.org")  # values are fingerprints
    expect(row).to_contain_text("E-mail: #")  # the field in words, its value a fingerprint
    screenshot(page, "audit-desktop")
    assert errors == []


def test_switching_the_language_translates_the_app_and_is_remembered(browser, server):
    page, errors = new_page(browser, server, PHONE)
    sign_in(page, server, "lead")
    page.get_by_role("button", name="Deutsch").click()
    open_menu(page)
    expect(page.get_by_role("link", name="Personen", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Abmelden")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    page.goto("/groups/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Gruppen")
    screenshot(page, "groups-phone-de")
    open_menu(page)
    page.get_by_role("button", name="Abmelden").click()
    # The setting belongs to the user: after signing in again from an English browser it is still German.
    page2, _ = new_page(browser, server, DESKTOP, locale="en-GB")
    email, password = server.credentials()["lead"]
    page2.goto("/accounts/login/")
    page2.get_by_label("E-mail", exact=True).fill(email)
    page2.get_by_label("Password", exact=True).fill(password)
    page2.get_by_role("button", name="Sign in").click()
    expect(page2.get_by_role("link", name="Personen", exact=True)).to_be_visible()
    assert errors == []


def test_the_browser_language_decides_before_sign_in(browser, server):
    page, _ = new_page(browser, server, PHONE, locale="de-DE")
    page.goto("/accounts/login/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Anmelden")
    screenshot(page, "login-phone-de")


def test_pages_fit_a_phone_and_every_control_has_a_label(browser, server):
    page, errors = new_page(browser, server, PHONE)
    sign_in(page, server, "superadmin")
    for path, name in (("/", "home"), ("/people/", "people"), ("/people/new/", "person-new"),
                       ("/groups/", "groups"), ("/audit/", "audit"), ("/sites/", "sites"),
                       ("/people/import/", "import"), ("/audit/security/", "security"),
                       ("/accounts/profile/", "profile"), ("/accounts/sessions/", "sessions"),
                       ("/accounts/second-factor/setup/", "second-factor")):
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width}px wide on a 360px phone"
        unlabeled = page.evaluate("""() => [...document.querySelectorAll('input,select,textarea')]
            .filter(el => el.type !== 'hidden' && !el.hidden && !el.labels?.length && !el.getAttribute('aria-label'))
            .map(el => el.name || el.id)""")
        assert unlabeled == [], f"{path}: controls without a label: {unlabeled}"
        screenshot(page, f"{name}-phone")
    page.set_viewport_size(DESKTOP)
    for path, name in (("/", "home"), ("/people/", "people")):
        page.goto(path)
        screenshot(page, f"{name}-desktop")
    assert errors == []


def test_the_people_filter_works_with_the_keyboard(browser, server):
    page, _ = new_page(browser, server, DESKTOP)
    sign_in(page, server, "admin")
    page.goto("/people/")
    rows = page.locator("#people-table tbody tr").count()  # other tests of the module add people
    expect(page.get_by_text("rows match")).to_be_hidden()
    page.get_by_label("Filter this list").focus()
    page.keyboard.type("lena")
    visible = page.locator("#people-table tbody tr:visible")
    expect(visible).to_have_count(1)
    expect(visible.first).to_contain_text("Lena Leitner")
    # The matching rows are counted only while filtering; the people are counted above the list.
    expect(page.get_by_text(f"1 of {rows} rows match")).to_be_visible()
    expect(page.locator("#people-summary")).to_contain_text(re.compile(r"^\d+ active people"))
    page.get_by_label("Filter this list").fill("")
    expect(page.get_by_text("rows match")).to_be_hidden()
