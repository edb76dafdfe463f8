"""Push on a local start, in a real headless Chromium.

With the certificate of the local start not trusted (the browser's warning clicked through), Chromium
loads the pages but refuses the service worker: My account's push section says so, in English and German,
instead of hiding itself. A browser without the Push API is told that. And a browser on a machine that
trusts the local certificate authority, with exactly the command the server prints at start, accepts the
server without a warning and runs the service worker: push can be turned on.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from playwright.sync_api import expect

from tests.browser import CHROMIUM, DESKTOP, FLAGS, PHONE, new_page, screenshot
from tests.server import run_server

pytestmark = pytest.mark.browser

UNTRUSTED = {
    "en-GB": ("Push notifications on this device", "this browser does not trust the server’s certificate"),
    "de-DE": ("Push-Benachrichtigungen auf diesem Gerät", "Dieser Browser vertraut dem Zertifikat des Servers nicht"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with run_server(tmp_path_factory.mktemp("local-ca")) as running:
        yield running


def sign_in(page, server, role: str) -> None:
    """Sign in with a demo login, whatever the page's language (the page solves the proof of work)."""
    email, password = server.credentials()[role]
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.locator("form:has(input[name=password]) button[type=submit]").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))


def push_section(page, heading: str):
    page.goto("/accounts/profile/")
    return page.get_by_role("region", name=heading)


@pytest.mark.parametrize("locale", UNTRUSTED)
def test_my_account_says_that_push_needs_a_certificate_the_browser_trusts(browser, server, locale):
    heading, reason = UNTRUSTED[locale]
    for viewport, size in ((PHONE, "phone"), (DESKTOP, "desktop")):
        page, errors = new_page(browser, server, viewport, locale=locale)  # the warning "clicked through"
        sign_in(page, server, "employee")
        section = push_section(page, heading)
        expect(section.get_by_role("status")).to_contain_text(reason)
        expect(section.get_by_role("button")).to_be_hidden()
        screenshot(page, f"push-untrusted-{locale}-{size}")
        page.context.close()
        assert errors == []


def test_a_browser_without_the_push_api_is_told_so(browser, server):
    page, errors = new_page(browser, server, PHONE)
    page.context.add_init_script("delete window.PushManager;")
    sign_in(page, server, "employee")
    section = push_section(page, UNTRUSTED["en-GB"][0])
    expect(section.get_by_role("status")).to_have_text("This browser cannot receive push notifications.")
    expect(section.get_by_role("button")).to_be_hidden()
    page.context.close()
    assert errors == []


def test_trusting_the_local_authority_with_the_printed_command_lets_the_app_offer_push(browser, server, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    printed = re.search(r"mkdir -p \$HOME/\.pki/nssdb && certutil .*?ca\.pem", server.output())
    assert printed, "the start output names the command for Chrome on Linux"
    subprocess.run(["bash", "-c", printed.group(0)], env={**os.environ, "HOME": str(home)}, check=True)
    # Chromium on Linux reads the trust anchors a user added from $HOME/.pki/nssdb.
    trusting = browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=FLAGS,
                                           env={**os.environ, "HOME": str(home)})
    try:
        context = trusting.new_context(base_url=server.base_url, viewport=PHONE, locale="en-GB")  # no exceptions
        page = context.new_page()
        errors = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        sign_in(page, server, "employee")
        section = push_section(page, UNTRUSTED["en-GB"][0])
        assert page.evaluate("navigator.serviceWorker.ready.then(r => r.active && r.scope)") == server.base_url + "/"
        expect(section.get_by_role("status")).to_have_text("Off: this device gets no alarm notifications.")
        expect(section.get_by_role("button", name="Turn on")).to_be_visible()
        screenshot(page, "push-trusted-phone")
        assert errors == []
    finally:
        trusting.close()
