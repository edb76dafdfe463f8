"""What people see, measured in a real Chromium against the real `rallypoint run` (demo data): the alarm page
and the menu on a phone, the navigation and the cockpit on a desk, the recovery codes and the API docs, in
English and German (German words are longer)."""

from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import expect

from tests.browser import DESKTOP, enter_password, new_page, screenshot
from tests.server import run_server
from tests.test_browser import sign_in as sign_in_with_second_factor

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}  # the phone the defects were found on
DESK_WIDTHS = (1024, 1280, 1440)
NAV_ITEMS = "header nav a, header nav button"  # the sections, "My account" and "Sign out"

# Where each visible element matching a selector is, and on how many lines its text runs.
BOXES = """(selector) => [...document.querySelectorAll(selector)].filter(el => el.getClientRects().length).map(el => {
    const box = el.getBoundingClientRect(), range = document.createRange();
    range.selectNodeContents(el);
    const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
    return {text: el.textContent.trim(), left: box.left, right: box.right, top: box.top, bottom: box.bottom,
            width: box.width, height: box.height, lines: tops.size};
})"""
# Elements whose content is wider than their box (it spills out or is cut off).
OVERFLOWING = """(selector) => [...document.querySelectorAll(selector)].filter(el => el.scrollWidth > el.clientWidth)
    .map(el => `${el.textContent.trim()}: ${el.scrollWidth} > ${el.clientWidth}`)"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with run_server(tmp_path_factory.mktemp("browser-layout")) as running:
        yield running


def sign_in(page, server, role: str) -> None:
    enter_password(page, server, role)
    expect(page.get_by_role("heading", level=1)).to_have_text("Headquarters")


@pytest.fixture(scope="module")
def superadmin(browser, server):
    """The Super-admin's signed-in browser state: the most menu items and a site switch (signed in once)."""
    page, _ = new_page(browser, server, DESKTOP)
    sign_in_with_second_factor(page, server, "superadmin")
    state = page.context.storage_state()
    page.context.close()
    return state


@pytest.fixture(scope="module")
def employee(browser, server):
    """The employee's signed-in browser state: the fewest menu items (signed in once)."""
    page, _ = new_page(browser, server, DESKTOP)
    sign_in(page, server, "employee")
    state = page.context.storage_state()
    page.context.close()
    return state


@pytest.fixture(scope="module")
def alarm_path(browser, server, employee):
    """An active alarm (the employee's quick Fire alarm; the crisis team is alerted)."""
    page, _ = new_page(browser, server, PHONE, storage_state=employee)
    page.goto("/")
    page.get_by_role("link", name="Fire", exact=True).click()
    page.get_by_role("button", name="Raise alarm").click()
    expect(page).to_have_url(re.compile(r"/alarms/\d+/$"))
    path = re.search(r"/alarms/\d+/$", page.url).group(0)
    page.context.close()
    return path


def boxes(page, selector: str) -> list[dict]:
    return page.evaluate(BOXES, selector)


def same_person_in_german(browser, server, page):
    """The same signed-in person in a German browser (the demo's people have no language setting of their own,
    so the browser's decides)."""
    german, errors = new_page(browser, server, page.viewport_size, locale="de-DE",
                              storage_state=page.context.storage_state())
    page.context.close()
    return german, errors


def test_accept_and_decline_come_first_on_a_phone(browser, server, alarm_path):
    page, errors = new_page(browser, server, PHONE)
    sign_in(page, server, "lead")
    for language, accept, decline in (("en", "Accept", "Decline"), ("de", "Annehmen", "Ablehnen")):
        if language == "de":
            page, german_errors = same_person_in_german(browser, server, page)
            errors += german_errors
        page.goto(alarm_path)
        for name in (accept, decline):
            button = page.get_by_role("button", name=name, exact=True)
            expect(button).to_be_visible()
            box = button.bounding_box()
            where = f"{name} at y={box['y']:.0f}..{box['y'] + box['height']:.0f}"
            assert 0 <= box["y"] and box["y"] + box["height"] <= PHONE["height"], f"{where}: below the fold"
            assert 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"], f"{where}: outside the screen"
            assert box["height"] >= 44
        # The answer comes before what happened, in the page's order too (for a screen reader).
        assert page.evaluate("""() => document.querySelector('.answer')
            .compareDocumentPosition(document.querySelector('.summary')) & Node.DOCUMENT_POSITION_FOLLOWING""")
        screenshot(page, f"alarm-phone-{language}", full_page=False)
    assert errors == []


def check_phone_menu(page, where: str) -> None:
    """Closed: one slim row with the menu button. Open (by keyboard): every item on one line, on screen,
    big enough to tap. Escape closes it and gives the focus back to the button."""
    button = page.locator("[data-menu-button]")
    expect(button).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "false")
    assert page.locator("#" + button.get_attribute("aria-controls")).count() == 1
    header = page.locator("header.topbar").bounding_box()
    assert header["height"] <= 80, f"{where}: the closed header is {header['height']:.0f}px high"
    assert boxes(page, NAV_ITEMS) == [], f"{where}: menu items shown while the menu is closed"
    box = button.bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")  # the brand
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.hasAttribute('data-menu-button')")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none", "focus not visible"
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    items = boxes(page, NAV_ITEMS)
    assert len(items) >= 4
    for item in items:
        assert item["lines"] == 1, f"{where}: {item['text']!r} wraps"
        assert item["left"] >= 0 and item["right"] <= PHONE["width"], f"{where}: {item['text']!r} off screen"
        assert item["height"] >= 44, f"{where}: {item['text']!r} is {item['height']:.0f}px high"
    page.keyboard.press("Escape")
    expect(button).to_have_attribute("aria-expanded", "false")
    assert page.evaluate("document.activeElement.hasAttribute('data-menu-button')")


def test_the_phone_has_a_menu_button(browser, server, employee, superadmin):
    page, errors = new_page(browser, server, PHONE, storage_state=employee)
    page.goto("/")
    check_phone_menu(page, "employee")
    page.get_by_role("button", name="Menu").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.context.close()

    page, more_errors = new_page(browser, server, PHONE, locale="de-DE", storage_state=superadmin)
    page.goto("/")
    check_phone_menu(page, "Super-admin, German")
    screenshot(page, "nav-phone-closed-de", full_page=False)
    page.get_by_role("button", name="Menü").click()
    for name in ("Änderungsprotokoll", "API-Schlüssel", "Mein Konto"):
        expect(page.get_by_role("link", name=name)).to_be_visible()
    expect(page.get_by_label("Ihr aktueller Standort")).to_be_visible()
    screenshot(page, "nav-phone-open-de", full_page=False)
    page.context.close()
    assert errors == [] and more_errors == []


def test_without_javascript_the_phone_shows_the_whole_menu(browser, server, superadmin):
    page, _ = new_page(browser, server, PHONE, storage_state=superadmin, java_script_enabled=False)
    page.goto("/")
    expect(page.locator("[data-menu-button]")).to_be_hidden()
    for name in ("Overview", "People", "API keys", "My account"):
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    screenshot(page, "nav-phone-nojs")
    page.context.close()


def check_desk_navigation(page, where: str) -> None:
    """Every item shown, on the screen, on one line; the sections in one row; nothing scrolled out of sight."""
    width = page.viewport_size["width"]
    expect(page.locator("[data-menu-button]")).to_be_hidden()
    items = boxes(page, NAV_ITEMS)
    assert [i["text"] for i in items if i["text"] in ("Sign out", "Abmelden")], f"{where}: no sign-out shown"
    for item in items:
        assert item["left"] >= 0 and item["right"] <= width, f"{where}: {item['text']!r} at {item['right']:.0f}px"
        assert item["lines"] == 1, f"{where}: {item['text']!r} wraps"
    sections = boxes(page, ".mainnav a")
    assert len({round(s["top"]) for s in sections}) == 1, f"{where}: the sections take more than one row"
    assert page.evaluate(OVERFLOWING, ".mainnav ul") == [], f"{where}: sections scrolled out of sight"
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{where}: the page is wider"


@pytest.mark.parametrize("persona", ["employee", "superadmin"])
def test_the_navigation_fits_one_row_on_a_desk_in_both_languages(browser, server, request, persona):
    state = request.getfixturevalue(persona)
    for language, locale in (("en", "en-GB"), ("de", "de-DE")):
        page, errors = new_page(browser, server, DESKTOP, locale=locale, storage_state=state)
        for width in DESK_WIDTHS:
            page.set_viewport_size({"width": width, "height": 860})
            page.goto("/")
            check_desk_navigation(page, f"{persona}, {language}, {width}px")
            if persona == "superadmin":
                screenshot(page, f"nav-desk-{language}-{width}", full_page=False)
        page.context.close()
        assert errors == []


def test_the_cockpit_tiles_hold_their_german_words(browser, server, superadmin, alarm_path):
    page, errors = new_page(browser, server, {"width": 1280, "height": 860}, locale="de-DE", storage_state=superadmin)
    page.goto("/cockpit/")
    panel = page.locator("[data-alarm-panel]").first
    expect(panel.locator("[data-part=counts] .tally")).to_contain_text("Angenommen")
    for width in (1280, PHONE["width"]):
        page.set_viewport_size({"width": width, "height": 860})
        assert page.evaluate(OVERFLOWING, ".tally > div, .tally dt, .tally dd") == [], f"tiles at {width}px"
        right = panel.bounding_box()["x"] + panel.bounding_box()["width"]
        for tile in boxes(page, ".tally > div"):
            assert tile["right"] <= right, f"{tile['text']!r} sticks out of the panel at {width}px"
        screenshot(page, f"cockpit-de-{width}")
    assert errors == []


def test_recovery_codes_stand_apart_and_the_requirement_is_said_once(browser, server):
    page, errors = new_page(browser, server, DESKTOP)
    enter_password(page, server, "admin")
    expect(page).to_have_url(re.compile(r"/accounts/second-factor/setup/$"))
    expect(page.get_by_text("Your organisation requires a second factor")).to_have_count(1)
    page.get_by_role("button", name="Set up an authenticator app").click()
    secret = page.locator("[data-totp-secret]").inner_text().replace(" ", "")
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    for width in (1280, PHONE["width"]):
        page.set_viewport_size({"width": width, "height": 860})
        codes = boxes(page, ".recovery-codes li")
        assert page.evaluate(OVERFLOWING, ".recovery-codes li") == [], f"codes overflow their tiles at {width}px"
        for n, code in enumerate(codes):
            assert re.fullmatch(r"[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}", code["text"])
            assert code["lines"] == 1, f"{code['text']} is broken over lines at {width}px"
            assert code["left"] >= 0 and code["right"] <= width, f"{code['text']} off screen at {width}px"
            for other in codes[n + 1:]:
                apart = (code["right"] <= other["left"] or other["right"] <= code["left"]
                         or code["bottom"] <= other["top"] or other["bottom"] <= code["top"])
                assert apart, f"{code['text']} and {other['text']} run into each other at {width}px"
        screenshot(page, f"recovery-codes-{width}")
    page.get_by_role("link", name="I have saved the codes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Second factor")
    assert errors == []


def test_api_keys_are_in_the_menu_and_lead_to_docs_that_work_under_the_policy(browser, server, superadmin):
    page, errors = new_page(browser, server, DESKTOP, storage_state=superadmin)
    page.add_init_script("""window.cspViolations = [];
        document.addEventListener('securitypolicyviolation',
            e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));""")
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("API keys")
    page.get_by_role("link", name="API documentation").click()
    expect(page).to_have_url(re.compile(r"/api/docs$"))
    docs = page.locator("#swagger-ui")
    expect(docs.locator(".opblock").first).to_be_visible()
    assert docs.locator(".opblock").count() >= 15
    # A reading request can be tried: it is sent as the signed-in person, in their site.
    site = docs.locator(".opblock-get", has=page.locator(".opblock-summary-path", has_text=re.compile(r"/site$")))
    site.locator(".opblock-summary").click()
    site.get_by_role("button", name="Try it out").click()
    site.get_by_role("button", name="Execute").click()
    expect(site.locator(".live-responses-table")).to_contain_text("Headquarters")
    # Nothing that changes data can be sent from the documentation.
    trigger = docs.locator(".opblock-post", has=page.locator(".opblock-summary-path", has_text=re.compile(r"/alarms$")))
    trigger.locator(".opblock-summary").click()
    expect(trigger.locator(".responses-wrapper")).to_contain_text("422")
    expect(trigger.get_by_role("button", name="Try it out")).to_have_count(0)
    screenshot(page, "api-docs-desktop")
    assert page.evaluate("window.cspViolations") == []
    assert errors == []
