"""The floor page in a real Chromium against the real `rallypoint run` (demo data): the demo's plan with its
markers at phone and desk width, and an administrator placing a marker by clicking on the plan."""

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
    with run_server(tmp_path_factory.mktemp("browser-structure")) as running:
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
