"""Raising and answering an alarm in a real Chromium against the real `rallypoint run` (demo data)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser import ARTIFACTS, DESKTOP, PHONE, enter_password, new_page, screenshot
from tests.server import run_server
from tests.test_browser import sign_in as sign_in_with_second_factor

pytestmark = pytest.mark.browser
STREAM_JS = Path(__file__).resolve().parent.parent / "rallypoint/web/static/web/stream.js"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with run_server(tmp_path_factory.mktemp("browser-alarm")) as running:
        yield running


def sign_in(page, server, role: str) -> None:
    enter_password(page, server, role)
    expect(page.get_by_role("heading", level=1)).to_have_text("Headquarters")


def script_errors(errors: list[str]) -> list[str]:
    """Errors of the pages' own scripts. The live stream's connection is tested with the stream (and while
    its script is not there yet, its 404 does not count)."""
    errors = [e for e in errors if "/ws/stream" not in e]
    if STREAM_JS.exists():
        return errors
    return [e for e in errors if "404" not in e and "stream.js" not in e]


def fits_and_is_labelled(page, where: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate("""(limit) => [...document.querySelectorAll('body *')]
        .filter(el => el.getBoundingClientRect().right > limit + 1 && !el.closest('.table-wrap'))
        .map(el => el.tagName + '.' + el.className).slice(0, 5)""", page.viewport_size["width"])
    assert width <= page.viewport_size["width"], f"{where} is {width}px wide: {wide}"
    unlabeled = page.evaluate("""() => [...document.querySelectorAll('input,select,textarea,button')]
        .filter(el => el.type !== 'hidden' && !el.hidden && el.offsetParent !== null)
        .filter(el => el.tagName === 'BUTTON' ? !(el.textContent.trim() || el.getAttribute('aria-label'))
                                              : !el.labels?.length && !el.getAttribute('aria-label'))
        .map(el => el.name || el.id)""")
    assert unlabeled == [], f"{where}: controls without a label: {unlabeled}"
    small = page.evaluate("""() => [...document.querySelectorAll('main button, main .button, main .tile, main .choice')]
        .filter(el => el.offsetParent !== null && el.getBoundingClientRect().height < 40)
        .map(el => el.textContent.trim())""")
    assert small == [], f"{where}: touch targets lower than 40px: {small}"


def test_an_employee_raises_the_quick_alarm_in_three_taps_on_a_phone(browser, server):
    page, errors = new_page(browser, server, PHONE)
    sign_in(page, server, "employee")
    fire = page.get_by_role("link", name="Fire", exact=True)
    expect(fire).to_be_visible()
    screenshot(page, "alarm-home-phone")
    fits_and_is_labelled(page, "home")
    fire.click()  # tap 1
    raise_button = page.get_by_role("button", name="Raise alarm")
    expect(raise_button).to_be_visible()
    box = raise_button.bounding_box()
    assert box["y"] + box["height"] <= PHONE["height"], "the button must be reachable without scrolling"
    assert box["height"] >= 72
    fits_and_is_labelled(page, "quick alarm")
    screenshot(page, "alarm-quick-phone")
    viewport_shot(page, "alarm-quick-phone-top")
    raise_button.click()  # tap 2: done
    expect(page).to_have_url(re.compile(r"/alarms/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Fire")
    expect(page.locator(".alarm-head")).to_contain_text("Active since")
    fits_and_is_labelled(page, "alarm page")
    screenshot(page, "alarm-raised-phone")
    page.set_viewport_size(DESKTOP)
    screenshot(page, "alarm-raised-desktop")
    assert script_errors(errors) == []


def test_the_lead_accepts_and_watches_the_cockpit(browser, server):
    page, errors = new_page(browser, server, DESKTOP)
    sign_in(page, server, "lead")
    banner = page.locator("a.alarm-banner").first
    expect(banner).to_contain_text("Fire — Pre-alarm")
    screenshot(page, "alarm-home-desktop")
    banner.click()
    expect(page.locator(".instruction")).to_contain_text("Open the cockpit")
    # With the stream up, the answer goes over it: no form is sent, the page is not reloaded.
    page.wait_for_function("() => window.RallypointStream && window.RallypointStream.connected")
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.get_by_role("button", name="Accept").click()
    expect(page.locator("#my-answer")).to_have_text("You accepted.")
    expect(page.get_by_role("button", name="Accept")).to_have_attribute("aria-pressed", "true")
    assert posts == []
    screenshot(page, "alarm-accepted-desktop")
    page.get_by_role("link", name="Cockpit", exact=True).click()
    panel = page.locator("[data-alarm-panel]").first
    expect(panel.locator("[data-count=accepted]")).to_have_text("1")
    expect(panel.locator("[data-part=waiting]")).to_contain_text("Mehmet Yilmaz")
    expect(panel.locator("[data-part=waiting]")).not_to_contain_text("Lena Leitner")
    screenshot(page, "cockpit-desktop")
    live_updates(page, panel)
    page.set_viewport_size(PHONE)
    fits_and_is_labelled(page, "cockpit")
    screenshot(page, "cockpit-phone")
    viewport_shot(page, "cockpit-phone-top")
    assert script_errors(errors) == []


def emit(page, type_: str, data: dict) -> None:
    """An event as web/stream.js hands it to the page (the stream itself is tested with the stream)."""
    page.evaluate("([t, d]) => document.dispatchEvent(new CustomEvent('rp:' + t, {detail: {type: t, data: d}}))",
                  [type_, data])


def live_updates(page, panel) -> None:
    alarm_id = int(panel.get_attribute("data-alarm-panel"))
    counts = {"total": 3, "accepted": 2, "declined": 0, "none": 1, "seen": 2,
              "by_group": {}, "by_channel": {"email": {"sent": 3}}}
    # The handler runs synchronously inside dispatchEvent, so the cell is read in the same script: a real
    # counts frame from the server (it may come any moment after the accept) cannot overwrite it first.
    shown = page.evaluate(
        """([id, counts]) => {
            document.dispatchEvent(new CustomEvent('rp:alarm.counts',
                {detail: {type: 'alarm.counts', data: {alarm_id: id, counts: counts}}}));
            return document.querySelector(`[data-alarm-panel='${id}'] [data-count=accepted]`).textContent;
        }""", [alarm_id, counts])
    assert shown == "2"  # in place, at once
    expect(panel.locator("[data-count=accepted]")).to_have_text("1", timeout=10000)  # then the panel itself
    # Someone else updates the alarm: the panel follows without a reload, and the page stays the same page.
    other = page.context.new_page()
    other.goto(f"/cockpit/{alarm_id}/")
    other.get_by_text("Update location or information").click()
    other.get_by_label("Extra information").fill("Fire brigade is on its way")
    other.get_by_role("button", name="Send update").click()
    expect(other.get_by_role("status")).to_contain_text("The alarm was updated")
    page.evaluate("window.rpNoReload = true")
    emit(page, "alarm.changed", {"alarm": {"id": alarm_id, "state": "active"}, "change": "updated"})
    expect(panel.locator("[data-part=head]")).to_contain_text("Fire brigade is on its way")
    assert page.evaluate("window.rpNoReload") is True
    other.goto(f"/alarms/{alarm_id}/")
    emit(other, "alarm.changed", {"alarm": {"id": alarm_id, "state": "active"}, "change": "updated"})
    expect(other.locator("#alarm-detail")).to_contain_text("Fire brigade is on its way")
    other.close()


def test_the_full_flow_at_phone_width(browser, server):
    page, errors = new_page(browser, server, PHONE)
    sign_in(page, server, "member")
    page.get_by_role("link", name="Another alarm …").click()
    page.get_by_role("link", name="Fire").click()
    page.get_by_text("Evacuate", exact=True).click()
    page.get_by_label("Building, floor, zone").select_option(label="Building A · 1st floor")
    page.get_by_label("More about the place").fill("Room 104")
    page.get_by_role("group", name="Is anyone hurt?").get_by_text("Unknown", exact=True).click()
    page.get_by_text("This is a drill").click()
    fits_and_is_labelled(page, "trigger form")
    screenshot(page, "alarm-form-phone")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".summary")).to_contain_text("Building A · 1st floor — Room 104")
    expect(page.locator(".drill-flag")).to_be_visible()
    screenshot(page, "alarm-confirm-phone")
    page.get_by_role("button", name="Raise alarm").click()
    expect(page.locator(".drill-flag")).to_contain_text("DRILL")
    expect(page.locator(".summary")).to_contain_text("Unknown")
    assert script_errors(errors) == []


def test_the_crisis_team_looks_back_on_past_alarms_and_drills(browser, server):
    page, errors = new_page(browser, server, PHONE)
    sign_in(page, server, "lead")
    page.goto("/cockpit/")
    page.get_by_role("link", name="All past alarms").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Past alarms")
    page.get_by_label("Alarms or drills").select_option(label="Drills only")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#history li[data-alarm-id]")
    expect(rows.first).to_contain_text("drill")
    assert rows.count() >= 1 and all("drill" in text for text in rows.all_inner_texts())
    fits_and_is_labelled(page, "history")
    screenshot(page, "history-phone")
    page.set_viewport_size(DESKTOP)
    fits_and_is_labelled(page, "history (desk)")
    screenshot(page, "history-desktop")
    rows.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/cockpit/\d+/$"))
    assert script_errors(errors) == []


def test_a_wall_screen_shows_the_numbers_without_signing_in(browser, server):
    page, errors = new_page(browser, server, DESKTOP)
    sign_in(page, server, "lead")
    page.goto("/cockpit/")
    page.get_by_role("link", name="Wall screens").click()
    page.get_by_label("Name of the screen").fill("Crisis room")
    page.get_by_role("button", name="Make a link").click()
    link = page.get_by_label("Link for the screen").input_value()
    fits_and_is_labelled(page, "wall screens")
    screenshot(page, "wall-screens-desktop")
    wall, wall_errors = new_page(browser, server, {"width": 1920, "height": 1080})  # nobody signed in
    wall.goto(link)
    expect(wall.get_by_role("heading", level=1)).to_have_text("Headquarters")
    expect(wall.locator(".panel").first).to_contain_text("Alerted")
    assert wall.locator(".topbar").count() == 0  # no menu, nothing to act on
    screenshot(wall, "wall-screen")
    wall.set_viewport_size(PHONE)
    fits_and_is_labelled(wall, "wall screen on a phone")
    assert script_errors(wall_errors) == []
    page.get_by_role("button", name="Revoke").first.click()
    wall.reload()  # answered 404 (the browser notes that in its console), the page says why
    expect(wall.get_by_role("heading", level=1)).to_have_text("This screen's link does not work")
    assert script_errors(errors) == []


def test_an_employee_reads_what_to_do_before_anything_happens(browser, server):
    page, errors = new_page(browser, server, PHONE)
    sign_in(page, server, "employee")
    page.get_by_role("link", name="What to do in an emergency").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("What to do in an emergency")
    fire = page.locator(".instruction-card", has=page.get_by_role("heading", name="Fire"))
    expect(fire.locator(".instruction")).not_to_be_empty()
    fits_and_is_labelled(page, "instructions")
    screenshot(page, "instructions-phone")
    page.set_viewport_size(DESKTOP)
    fits_and_is_labelled(page, "instructions (desk)")
    screenshot(page, "instructions-desktop")
    assert script_errors(errors) == []


def test_an_administrator_sets_up_a_scenario_with_a_level(browser, server):
    page, errors = new_page(browser, server, DESKTOP)
    sign_in_with_second_factor(page, server, "admin")
    page.get_by_role("link", name="Scenarios", exact=True).click()
    expect(page.get_by_role("link", name="Medical emergency")).to_be_visible()
    screenshot(page, "scenarios-desktop")
    page.get_by_role("link", name="New scenario").click()
    page.get_by_label("Name", exact=True).fill("Gas leak")
    page.get_by_label("Icon").select_option("gas")
    page.get_by_label("Message").fill("Gas leak at {location}. Leave the building.")
    page.get_by_label("What to do: Employee").fill("Leave, do not switch anything on or off.")
    page.get_by_role("button", name="Create scenario").click()
    expect(page.get_by_role("status")).to_contain_text("Scenario saved.")
    page.get_by_role("link", name="Add level").click()
    page.get_by_label("Name", exact=True).fill("Evacuate")
    page.get_by_role("group", name="Channels", exact=True).get_by_label("App (live)").check()
    page.get_by_role("group", name="Roles", exact=True).get_by_label("Employee").check()
    screenshot(page, "scenario-level-desktop")
    page.get_by_role("button", name="Save level").click()
    expect(page.get_by_role("link", name="1. Evacuate")).to_be_visible()
    page.set_viewport_size(PHONE)
    fits_and_is_labelled(page, "scenario page")
    screenshot(page, "scenario-phone")
    viewport_shot(page, "scenario-phone-top")
    page.get_by_role("link", name="1. Evacuate").click()
    fits_and_is_labelled(page, "level page")
    screenshot(page, "scenario-level-phone")
    assert script_errors(errors) == []


def viewport_shot(page, name: str) -> None:
    """What a phone shows before any scrolling."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_the_cockpit_says_when_it_is_no_longer_live(browser, server):
    """A cockpit left open must not show old numbers as current: a dropped connection that does not come
    back, and a session that ended elsewhere, are both said on the page."""
    page, errors = new_page(browser, server, DESKTOP)
    sign_in(page, server, "lead")
    page.get_by_role("link", name="Cockpit", exact=True).click()
    page.wait_for_function("() => window.RallypointStream && window.RallypointStream.connected")
    notice = page.locator("#rp-live-status")
    expect(notice).to_be_hidden()
    # A short drop (a restart, a switch of site) is not worth a notice; one that lasts is.
    page.evaluate("document.dispatchEvent(new CustomEvent('rp:stream.closed', {detail: {code: 1006, ended: false}}))")
    expect(notice).to_be_hidden()
    expect(notice).to_contain_text("Connection lost", timeout=8000)
    expect(notice.get_by_role("link", name="Sign in again")).to_be_hidden()
    page.evaluate("document.dispatchEvent(new CustomEvent('rp:ready', {detail: {complete: true}}))")
    expect(notice).to_be_hidden()
    # Signed out in another tab: the server closes this page's stream, and the page says so.
    other = page.context.new_page()
    other.goto("/")
    other.get_by_role("button", name="Sign out").click()
    expect(notice).to_contain_text("Live updates have stopped", timeout=10000)
    page.set_viewport_size(PHONE)
    viewport_shot(page, "cockpit-signed-out-phone")
    notice.get_by_role("link", name="Sign in again").click()
    expect(page.get_by_label("Password")).to_be_visible()
    assert script_errors(errors) == []
