"""Pages of administrators and of My account in a real Chromium against one real `rallypoint run` (demo
data), at phone and desk width: the floor page (the demo's plan with its markers, a marker placed by
clicking on the plan), the access review (started, a person confirmed; English and German), the audit
trail's verification, and an employee keeping their own details in My account."""

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
    with run_server(tmp_path_factory.mktemp("browser-admin-pages")) as running:
        yield running


@pytest.fixture(scope="module")
def admin(browser, server):
    return signed_in_state(browser, server, "admin")


def open_ground_floor(page) -> None:
    page.goto("/structure/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Buildings and zones")
    page.locator("#building-1 h3 a", has_text="Ground floor").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Building A · Ground floor")
    image = page.locator(".plan-image")
    expect(image).to_be_visible()
    page.wait_for_function("() => document.querySelector('.plan-image').complete")
    assert page.evaluate("() => document.querySelector('.plan-image').naturalWidth") == 1200


@pytest.mark.parametrize("viewport, name", [(PHONE, "phone"), (DESKTOP, "desktop")])
def test_an_admin_places_a_marker_by_clicking_on_the_plan(browser, server, admin, viewport, name):
    page, errors = new_page(browser, server, viewport, storage_state=admin)
    open_ground_floor(page)
    before = page.locator(".marker-list li").count()
    screenshot(page, f"structure-floor-{name}", full_page=False)
    frame = page.locator(".plan-frame")
    box = frame.bounding_box()
    frame.click(position={"x": box["width"] * 0.4, "y": box["height"] * 0.8})
    assert abs(float(page.get_by_label("Across", exact=False).input_value()) - 0.4) < 0.02
    assert abs(float(page.get_by_label("Down", exact=False).input_value()) - 0.8) < 0.02
    expect(page.locator("[data-new-marker]")).to_have_class(re.compile("shown"))
    page.get_by_label("Marker", exact=True).select_option("first_aid")
    page.get_by_label("Label", exact=True).fill(f"First-aid kit ({name})")
    screenshot(page, f"structure-floor-placing-{name}")
    page.get_by_role("button", name="Save marker").click()
    expect(page.locator(".notice.success")).to_have_text("Marker placed.")
    expect(page.locator(".marker-list li")).to_have_count(before + 1)
    expect(page.locator(".marker-list")).to_contain_text(f"First-aid kit ({name})")
    # The new marker sits where it was clicked, at every width.
    circle = page.locator(".plan-markers .marker-first_aid circle").last
    assert abs(float(circle.get_attribute("cx").rstrip("%")) - 40) < 2
    assert abs(float(circle.get_attribute("cy").rstrip("%")) - 80) < 2
    screenshot(page, f"structure-floor-placed-{name}", full_page=False)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], "the page is wider"
    page.goto("/structure/")
    screenshot(page, f"structure-overview-{name}")
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], "the overview is wider"
    assert errors == []
    page.context.close()


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
    page.get_by_role("link", name="Show my data").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My data")
    expect(page.locator("body")).to_contain_text(f"Chat {name}")
    expect(page.locator("body")).not_to_contain_text("secret-hook")
    screenshot(page, f"my-data-{name}", full_page=False)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], "the page is wider"
    assert errors == []
    page.context.close()


@pytest.mark.parametrize("viewport, locale, heading, name", [
    (DESKTOP, "en-GB", "Art. 32 report", "tom-report-desktop"),
    (PHONE, "de-DE", "Art.-32-Bericht", "tom-report-phone-de"),
])
def test_the_art_32_report_reads_well(browser, server, viewport, locale, heading, name):
    page, errors = new_page(browser, server, viewport, locale=locale,
                            storage_state=signed_in_state(browser, server, "superadmin"))
    page.goto("/report/")
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator(".tom-list > li")).to_have_count(20)
    expect(page.locator("#tom-summary")).to_contain_text(re.compile(r"\d"))
    screenshot(page, name, full_page=False)
    screenshot(page, f"{name}-full")
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], "the page is wider"
    assert errors == []
    page.context.close()


DELETION_TEXTS = {
    "en-GB": {"start": "Delete my data …", "password": "Your password", "confirm": "I understand",
              "go": "Delete my data for good", "gone": "Your data is deleted", "delete": "Delete this person …",
              "approvals": "Approvals", "approve": "Approve", "own": "You cannot approve your own request.",
              "done": "Approved and carried out.", "waiting": "Waiting for a second administrator."},
    "de-DE": {"start": "Meine Daten löschen …", "password": "Ihr Passwort", "confirm": "Mir ist klar",
              "go": "Meine Daten endgültig löschen", "gone": "Ihre Daten sind gelöscht",
              "delete": "Diese Person löschen …", "approvals": "Freigaben", "approve": "Freigeben",
              "own": "Ihre eigene Anfrage können Sie nicht freigeben.", "done": "Freigegeben und ausgeführt.",
              "waiting": "Wartet auf eine zweite Administratorin oder einen zweiten Administrator."},
}


# Last in the module: these delete demo people the tests above use.
@pytest.mark.parametrize("locale, viewport, leaver, deleted", [
    ("en-GB", PHONE, "guest", "Mehmet Yilmaz"),
    ("de-DE", DESKTOP, "lead", "Emma Schneider"),
])
def test_a_person_deletes_themselves_and_a_deletion_needs_a_second_administrator(
        browser, server, admin, locale, viewport, leaver, deleted):
    text = DELETION_TEXTS[locale]
    tag = f"{locale[:2]}-{'phone' if viewport is PHONE else 'desktop'}"
    # Someone deletes their own data: their password and a confirmation, then nothing is left on the device.
    page, errors = new_page(browser, server, viewport, locale=locale,
                            storage_state=signed_in_state(browser, server, leaver))
    page.goto("/accounts/profile/")
    page.get_by_role("link", name=text["start"]).click()
    page.get_by_label(text["password"]).fill(server.credentials()[leaver][1])
    page.get_by_label(text["confirm"]).check()
    screenshot(page, f"delete-my-data-{tag}")
    page.get_by_role("button", name=text["go"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text["gone"])
    assert page.evaluate("localStorage.length") == 0
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))  # signed out, and cannot sign in again
    page.context.close()

    # An administrator asks to delete a person; their own approval is refused; a second one approves.
    page, errors = new_page(browser, server, viewport, locale=locale, storage_state=admin)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/people/")
    page.get_by_role("link", name=deleted).click()
    page.locator("#delete-reason").fill(f"left ({tag})")
    page.get_by_role("button", name=text["delete"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text["approvals"])
    card = page.locator("li.approval", has_text=deleted)
    expect(card).to_contain_text(text["waiting"])
    expect(card.get_by_role("button", name=text["approve"])).to_have_count(0)  # not offered to the requester …
    approval_id = card.get_attribute("data-approval")
    page.evaluate("""id => {  // … and refused when forged
        const form = document.createElement('form');
        form.method = 'post';
        form.action = `/audit/approvals/${id}/decide/`;
        form.innerHTML = `<input name="csrfmiddlewaretoken" value="${
            document.querySelector('[name=csrfmiddlewaretoken]').value}"><input name="decision" value="approve">`;
        document.body.append(form);
        form.submit();
    }""", approval_id)
    expect(page.locator(".notice.error")).to_have_text(text["own"])
    screenshot(page, f"approvals-requester-{tag}")
    page.context.close()

    page, errors = new_page(browser, server, viewport, locale=locale,
                            storage_state=signed_in_state(browser, server, "superadmin"))
    page.goto("/audit/approvals/")
    card = page.locator(f"li.approval[data-approval='{approval_id}']")
    expect(card).to_contain_text(deleted)
    screenshot(page, f"approvals-second-{tag}")
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], "the page is wider"
    card.get_by_role("button", name=text["approve"]).click()
    expect(page.locator(".notice.success")).to_have_text(text["done"])
    page.goto("/people/")
    expect(page.locator("#people-table")).not_to_contain_text(deleted)
    assert errors == []
    page.context.close()
