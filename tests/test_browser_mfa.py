"""Second factor in a real headless Chromium against the real `rallypoint run` server.

WebAuthn refuses IP addresses as RP IDs, so this server runs as https://localhost:PORT.
"""

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
    with run_server(tmp_path_factory.mktemp("browser-mfa"), host="localhost") as running:
        yield running


def sign_out(page) -> None:
    open_menu(page)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def save_recovery_codes(page) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    page.get_by_role("link", name="I have saved the codes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Second factor")


def test_an_admin_is_made_to_enrol_an_authenticator_app_and_signs_in_with_it(browser, server):
    page, errors = new_page(browser, server, PHONE)
    context = page.context
    enter_password(page, server, "admin")
    expect(page).to_have_url(re.compile(r"/accounts/second-factor/setup/$"))
    expect(page.get_by_text("Your organisation requires a second factor")).to_have_count(1)  # said once
    page.goto("/people/")  # every other page leads back here
    expect(page).to_have_url(re.compile(r"/accounts/second-factor/setup/$"))
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the set-up page is {width}px wide on a 360px phone"
    screenshot(page, "mfa-totp-phone")
    totp = pyotp.TOTP(page.locator("[data-totp-secret]").inner_text().replace(" ", ""))
    code = page.get_by_label("Code from your authenticator app")
    assert code.get_attribute("autocomplete") == "one-time-code" and code.get_attribute("inputmode") == "numeric"
    code.fill(totp.now())
    page.get_by_role("button", name="Confirm").click()
    save_recovery_codes(page)
    expect(page.get_by_role("cell", name="Authenticator app", exact=True)).to_be_visible()
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Headquarters")
    sign_out(page)

    enter_password(page, server, "admin")
    expect(page.get_by_role("heading", level=1)).to_have_text("Second step")
    screenshot(page, "mfa-verify-phone")
    page.get_by_label("Code from your authenticator app").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Headquarters")
    context.close()
    assert errors == []


def test_a_super_admin_enrols_a_passkey_and_signs_in_with_it(browser, server):
    page, errors = new_page(browser, server, DESKTOP)
    context = page.context
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True}})["authenticatorId"]
    enter_password(page, server, "superadmin")
    expect(page).to_have_url(re.compile(r"/accounts/second-factor/setup/$"))
    page.get_by_label("Name of the passkey").fill("Test laptop")
    page.get_by_role("button", name="Add a passkey").click()
    save_recovery_codes(page)
    expect(page.get_by_role("cell", name="Test laptop", exact=True)).to_be_visible()
    screenshot(page, "mfa-setup-desktop")
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(credentials) == 1 and credentials[0]["rpId"] == "localhost"
    sign_out(page)

    enter_password(page, server, "superadmin")
    expect(page.get_by_role("heading", level=1)).to_have_text("Second step")
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Headquarters")
    used = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"][0]
    assert used["signCount"] >= 1
    context.close()
    assert errors == []
