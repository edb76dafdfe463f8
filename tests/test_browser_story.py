"""The whole story in three browsers against the real `rallypoint run`, with a real SMTP server.

An employee raises the fire alarm from the home screen of a phone; a crisis-team
member sees it arrive live and accepts it; the lead watches the cockpit's counts
change without reloading and ends the alarm; the alarm's e-mail reaches the SMTP
server, and its one-tap link works (once) in a browser that is not signed in.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser import DESKTOP, PHONE, enter_password, new_page, screenshot
from tests.server import run_server
from tests.sinks import SmtpSink

pytestmark = pytest.mark.browser
LIVE = 10_000  # ms: "live" here means well within this, without any reload


@pytest.fixture(scope="module")
def mail():
    with SmtpSink() as smtp:
        yield smtp


@pytest.fixture(scope="module")
def server(tmp_path_factory, mail):
    env = {"RP_SMTP_HOST": "127.0.0.1", "RP_SMTP_PORT": str(mail.port), "RP_SMTP_SECURITY": "none"}
    with run_server(tmp_path_factory.mktemp("story"), env) as running:
        yield running


def _signed_in(browser, server, role, viewport):
    page, errors = new_page(browser, server, viewport)
    enter_password(page, server, role)
    expect(page.get_by_role("heading", level=1)).to_have_text("Headquarters")
    return page, errors


def _answer_link(mail, address: str, timeout: float = 30) -> str:
    """The one-tap link of the first alarm e-mail to ``address`` (waits for it to arrive)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in mail.to(address):
            found = re.search(r"https://\S+/answer/\S+", message.body())
            if found:
                return found.group(0)
        time.sleep(0.1)
    return ""


def test_raise_receive_accept_watch_and_end_a_fire_alarm(browser, server, mail):
    member, member_errors = _signed_in(browser, server, "member", PHONE)
    lead, lead_errors = _signed_in(browser, server, "lead", DESKTOP)
    lead.goto("/cockpit/")
    expect(lead.get_by_role("heading", level=1)).to_be_visible()
    employee, employee_errors = _signed_in(browser, server, "employee", PHONE)

    # The employee: home screen → "Fire" → "Raise alarm".
    employee.get_by_role("link", name="Fire", exact=True).click()
    employee.get_by_role("button", name="Raise alarm").click()
    expect(employee).to_have_url(re.compile(r"/alarms/\d+/$"))
    alarm_id = re.search(r"/alarms/(\d+)/$", employee.url).group(1)

    # The crisis-team member's phone shows it without a reload, and they accept it.
    banner = member.locator(f"#rp-alarm-banners [data-alarm-id='{alarm_id}']")
    expect(banner).to_be_visible(timeout=LIVE)
    expect(banner).to_contain_text("Fire")
    screenshot(member, "story-member-banner-phone")
    banner.click()
    member.locator("#answer-accept").click()
    expect(member.locator("#my-answer")).to_contain_text("accepted", ignore_case=True)

    # The lead's cockpit got the alarm live and counts the acceptance.
    panel = lead.locator(f"[data-alarm-panel='{alarm_id}']")
    expect(panel).to_be_visible(timeout=LIVE)
    expect(panel.locator("[data-count=accepted]").first).to_have_text("1", timeout=LIVE)

    # The administrator (also on the crisis team) got the e-mail; its link answers without signing in.
    admin_email = server.credentials()["admin"][0]
    link = _answer_link(mail, admin_email)
    assert link.startswith(server.base_url + "/answer/"), link
    stranger, _ = new_page(browser, server, PHONE)
    stranger.goto(link)
    expect(stranger).not_to_have_url(re.compile(r"/answer/[^/]+$"))  # the token left the address bar
    stranger.get_by_role("button", name=re.compile("Accept", re.I)).click()
    expect(stranger.locator("main")).to_contain_text("accepted", ignore_case=True)
    expect(panel.locator("[data-count=accepted]").first).to_have_text("2", timeout=LIVE)
    stranger.goto(link)
    expect(stranger.locator("main")).to_contain_text(re.compile("used|no longer", re.I))
    screenshot(lead, "story-cockpit-desktop")

    # The lead ends the alarm; the member's phone learns it live.
    lead.once("dialog", lambda dialog: dialog.accept())
    panel.get_by_text("End the alarm").click()
    panel.get_by_label("Why does the alarm end?").fill("Fire put out by the fire brigade")
    panel.get_by_role("button", name="End alarm").click()
    expect(member.locator(f"#rp-alarm-banners [data-alarm-id='{alarm_id}']")).to_have_count(0, timeout=LIVE)
    expect(member.locator("main")).to_contain_text("Fire put out by the fire brigade", timeout=LIVE)
    for errors in (member_errors, lead_errors, employee_errors):
        assert errors == []
