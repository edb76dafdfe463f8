"""The access review in a real Chromium against the real `rallypoint run` (demo data): an administrator
starts a review, confirms one person and sees the list, at phone and desk width, in English and German."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import DESKTOP, PHONE, new_page, screenshot
from tests.server import run_server
from tests.test_browser import signed_in_state

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with run_server(tmp_path_factory.mktemp("browser-review")) as running:
        yield running


@pytest.fixture(scope="module")
def admin(browser, server):
    return signed_in_state(browser, server, "admin")


def test_an_admin_starts_a_review_and_confirms_a_person(browser, server, admin):
    page, errors = new_page(browser, server, PHONE, storage_state=admin)
    page.goto("/people/")
    page.get_by_role("link", name="Access review").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Access review")
    expect(page.locator("#review-state")).to_contain_text("No access review yet")
    page.get_by_role("button", name="Start a review now").click()
    expect(page.locator("#review-state")).to_contain_text("is due on")
    rows = page.locator("#review-table tbody tr")
    first = rows.first
    name = first.locator("td").first.inner_text()
    first.get_by_role("button", name="Confirm").click()
    expect(page.locator("#review-table tbody tr", has_text=name).get_by_text("Confirmed")).to_be_visible()
    screenshot(page, "access-review-phone")
    assert errors == []
    page.context.close()


@pytest.mark.parametrize("viewport, locale, heading, name", [
    (DESKTOP, "en-GB", "Access review", "access-review-desktop"),
    (PHONE, "de-DE", "Zugangsprüfung", "access-review-phone-de"),
])
def test_the_review_page_reads_well(browser, server, admin, viewport, locale, heading, name):
    page, errors = new_page(browser, server, viewport, locale=locale, storage_state=admin)
    page.goto("/people/review/")
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    if not page.locator("#review-table").count():  # run on its own: no review yet
        page.locator("form.actions button[type=submit]").last.click()
    expect(page.locator("#review-table")).to_be_visible()
    if locale == "de-DE":
        expect(page.locator("#review-table thead")).to_contain_text(re.compile("Entscheidung"))
    screenshot(page, name)
    assert errors == []
    page.context.close()


def test_the_audit_trail_verifies_on_its_page(browser, server, admin):
    page, errors = new_page(browser, server, PHONE, storage_state=admin)
    page.goto("/audit/")
    page.get_by_role("link", name="Verify the audit trail").click()
    expect(page.locator(".notice.success")).to_be_visible()
    screenshot(page, "audit-verify-phone")
    assert errors == []
    page.context.close()
