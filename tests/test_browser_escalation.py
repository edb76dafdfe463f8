"""An alarm that reaches a person only when its level is raised shows on their open page at once."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import DESKTOP, PHONE, enter_password, new_page, screenshot
from tests.server import run_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with run_server(tmp_path_factory.mktemp("browser-escalation")) as running:
        yield running


def test_raising_the_level_shows_the_alarm_on_the_open_page_of_a_person_it_now_includes(browser, server):
    employee, employee_errors = new_page(browser, server, PHONE)
    enter_password(employee, server, "employee")
    expect(employee.locator("#no-alarm")).to_be_visible()
    expect(employee.locator("#rp-alarm-banners a.alarm-banner")).to_have_count(0)
    employee.wait_for_function("() => window.RallypointStream && window.RallypointStream.connected")

    lead, lead_errors = new_page(browser, server, DESKTOP)
    lead.on("dialog", lambda dialog: dialog.accept())
    enter_password(lead, server, "lead")
    # The demo's fire alarm starts at its first level, which tells the crisis team only.
    lead.locator("a.alarm-button.big").first.click()
    lead.get_by_role("button", name="Raise alarm").click()
    expect(lead).to_have_url(re.compile(r"/alarms/\d+/$"))
    alarm_id = re.search(r"/alarms/(\d+)/$", lead.url).group(1)
    lead.goto(f"/cockpit/{alarm_id}/")
    panel = lead.locator(f"[data-alarm-panel='{alarm_id}']")
    expect(panel.locator("[data-count=seen]")).to_have_text("1")  # the lead's own page showed it
    # The employee is not among the first level's recipients: nothing shows.
    expect(employee.locator("#rp-alarm-banners a.alarm-banner")).to_have_count(0)

    manage = panel.locator("[data-part=manage]")
    change = manage.locator("details", has=lead.locator("select[name=level]"))
    change.locator("summary").click()
    change.locator("select[name=level]").select_option(index=0)  # the other level: everyone
    change.locator("button[type=submit]").click()

    banner = employee.locator(f"#rp-alarm-banners a.alarm-banner[data-alarm-id='{alarm_id}']")
    expect(banner).to_be_visible(timeout=5000)  # live, without a reload
    expect(employee.locator("#no-alarm")).to_be_hidden()
    screenshot(employee, "escalated-alarm-phone")
    # The page reported that it showed the alarm: the cockpit counts the in-app receipt.
    lead.goto(f"/cockpit/{alarm_id}/")
    expect(lead.locator(f"[data-alarm-panel='{alarm_id}'] [data-count=seen]")).to_have_text("2", timeout=5000)
    errors = [e for e in employee_errors + lead_errors if "/ws/stream" not in e]
    assert errors == []
