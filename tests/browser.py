"""Playwright driving Debian's Chromium (headless), as the brief prescribes."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

CHROMIUM = os.environ.get("RP_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-quic", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 860}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright  # imported here: only browser tests need it

    if not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's 'chromium' package (.ci/run does)")
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield instance
        instance.close()


def _self_signed(message) -> bool:
    """Chromium's own complaint that it will not load the service worker from a server whose certificate it
    does not trust (every test server's local authority is unknown to it; push.js catches the failure, says so
    on My account, and the app works without it).
    tests/test_browser_push.py launches Chromium trusting the test certificate and checks the worker.
    When the page navigates on while that fetch is still refused, Chromium words it as an unknown error."""
    return message.text in ("An SSL certificate error occurred when fetching the script.",
                            "An unknown error occurred when fetching the script.")


def new_page(browser, server, viewport, locale="en-GB", **options):
    """A page in a fresh context on the running server, with a list collecting its script errors (a
    Content-Security-Policy violation is one too). ``options`` go to the context (e.g. storage_state)."""
    context = browser.new_context(base_url=server.base_url, ignore_https_errors=True, viewport=viewport,
                                  locale=locale, **options)
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and not _self_signed(msg) else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


def enter_password(page, server, role: str) -> None:
    """Sign in with a demo login's e-mail and password (the page solves the proof of work)."""
    email, password = server.credentials()[role]
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("E-mail", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def screenshot(page, name: str, full_page: bool = True) -> None:
    """Keep a picture of the page for people to look at (test-artifacts/, not checked in); with
    ``full_page=False`` only what the screen shows before any scrolling."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def open_menu(page) -> None:
    """At phone width the navigation and "Sign out" are behind the menu button: open it (wider, or without
    JavaScript, they are always shown)."""
    button = page.locator("[data-menu-button]")
    if button.is_visible() and button.get_attribute("aria-expanded") != "true":
        button.click()
        expect(button).to_have_attribute("aria-expanded", "true")
