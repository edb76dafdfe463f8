"""A German installation (RP_LANGUAGE=de) in a German browser: the demo reads German throughout."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import DESKTOP, PHONE, new_page, screenshot
from tests.server import run_server

pytestmark = pytest.mark.browser

#: Texts of the English demo; none may show on the German installation's pages.
ENGLISH = re.compile(r"\b(Fire|Headquarters|Warehouse|Pre-alarm|Evacuate|Crisis team|Evacuation helpers|"
                     r"Medical emergency|Threat|Lock down|Is anyone hurt|Is there smoke|Unknown)\b")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with run_server(tmp_path_factory.mktemp("browser-de"), {"RP_LANGUAGE": "de"}) as running:
        yield running


def sign_in(page, server, role: str) -> None:
    email, password = server.credentials()[role]
    page.goto("/accounts/login/")
    page.get_by_label("E-Mail", exact=True).fill(email)
    page.get_by_label("Passwort", exact=True).fill(password)
    page.get_by_role("button", name="Anmelden").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hauptverwaltung")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_german_demo_reads_german_from_home_to_the_trigger_form(browser, server, viewport):
    page, errors = new_page(browser, server, viewport, locale="de-DE")
    sign_in(page, server, "employee")
    size = "phone" if viewport is PHONE else "desktop"
    expect(page.get_by_role("link", name="Feueralarm", exact=True)).to_be_visible()  # the quick alarm
    screenshot(page, f"demo-de-home-{size}")
    assert not ENGLISH.search(page.locator("main").inner_text())
    page.get_by_role("link", name="Anderer Alarm …").click()
    for name in ("Feueralarm", "Medizinischer Notfall", "Bedrohung"):
        expect(page.get_by_role("link", name=name)).to_be_visible()
    assert not ENGLISH.search(page.locator("main").inner_text())
    page.get_by_role("link", name="Feueralarm").click()
    expect(page.get_by_text("Voralarm", exact=True)).to_be_visible()
    expect(page.get_by_text("Räumung", exact=True)).to_be_visible()
    question = page.get_by_role("group", name="Gibt es Verletzte?")
    for answer in ("Nein", "Ja", "Unbekannt"):
        expect(question.get_by_text(answer, exact=True)).to_be_visible()
    expect(page.get_by_role("group", name="Ist Rauch zu sehen?").get_by_text("Starker Rauch")).to_be_visible()
    assert not ENGLISH.search(page.locator("main").inner_text())
    screenshot(page, f"demo-de-trigger-{size}")
    assert errors == []
