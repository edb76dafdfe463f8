"""My account in a real Chromium against the real `rallypoint run` (demo data): an employee changes their
name and adds a messenger address, at phone and desk width."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import DESKTOP, PHONE, new_page, screenshot
from tests.server import run_server
from tests.test_browser import signed_in_state

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with run_server(tmp_path_factory.mktemp("browser-account")) as running:
        yield running


@pytest.mark.parametrize("viewport, name", [(PHONE, "phone"), (DESKTOP, "desktop")])
def test_an_employee_keeps_their_own_details(browser, server, viewport, name):
    page, errors = new_page(browser, server, viewport, storage_state=signed_in_state(browser, server, "employee"))
    page.goto("/accounts/profile/")
    expect(page.get_by_role("heading", level=1)).to_have_text("My account")
    page.get_by_label("Your phone").fill("+49 30 7654321")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Changes saved.")).to_be_visible()
    expect(page.get_by_label("Your phone")).to_have_value("+49 30 7654321")
    page.get_by_label("Label").fill(f"Chat {name}")
    page.get_by_label("Apprise address").fill("json://localhost:9/secret-hook")
    page.get_by_role("button", name="Add messenger address").click()
    expect(page.locator("#messenger-addresses")).to_contain_text(f"Chat {name}")
    expect(page.locator("body")).not_to_contain_text("secret-hook")
    screenshot(page, f"my-account-{name}")
    assert errors == []
    page.context.close()
