"""A whole fire evacuation in the demo school, in a real Chromium against the real `rallypoint run`, in English
and in German (a German installation in a German browser):

1. the crisis-team lead raises the fire alarm in building A;
2. the evacuation helper reports the 1st floor cleared and the 2nd floor's west wing with 2 persons remaining;
3. one person reports "safe", the teacher "needs help" (a twisted ankle) and marks her class;
4. the lead rolls call at the schoolyard, with the page offline for a while in the middle;
5. the missing list shrinks to exactly the people nobody accounted for;
6. the handover PDF names them;
7. the alarm ends, and the roll-call page keeps nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser import DESKTOP, PHONE, new_page, screenshot
from tests.server import run_server
from tests.test_browser_alarm import fits_and_is_labelled, script_errors
from tests.test_evacuation_pages import pdf_text

pytestmark = pytest.mark.browser

TEXT = {
    "en": {"locale": "en-GB", "fire": "Fire", "level": "Evacuate", "place": "Building A — whole building",
           "point": "Schoolyard (north)", "home": "Headquarters", "handover": "Handover to the fire brigade"},
    "de": {"locale": "de-DE", "fire": "Feueralarm", "level": "Räumung", "place": "Haus A — ganzes Gebäude",
           "point": "Schulhof (Nord)", "home": "Hauptverwaltung", "handover": "Übergabe an die Feuerwehr"},
}
#: Nobody reports for these two in the story: the Super-admin, and the helper (busy with the zones). The
#: administrator (Anton Adler) is marked at the roll call; everyone else reports or is reported.
MISSING = {"Sabine Oberhuber", "Mehmet Yilmaz"}
#: How long the roll-call page stays offline (the issue asks for 30 s; the German run repeats it shorter).
OFFLINE_MS = {"en": 30_000, "de": 5_000}


@pytest.fixture(scope="module", params=["en", "de"])
def server(request, tmp_path_factory):
    with run_server(tmp_path_factory.mktemp(f"evacuation-{request.param}"),
                    {"RP_LANGUAGE": request.param}) as running:
        running.language = request.param
        yield running


def sign_in(browser, server, role: str, viewport):
    page, errors = new_page(browser, server, viewport, locale=TEXT[server.language]["locale"])
    email, password = server.credentials()[role]
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.locator("main form button[type=submit]").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(TEXT[server.language]["home"])
    return page, errors


def raise_fire_in_building_a(page, text) -> str:
    page.goto("/alarms/new/")
    page.get_by_role("link", name=text["fire"], exact=True).click()
    page.locator("label.tile", has_text=text["level"]).click()
    page.locator("select[name=place]").select_option(label=text["place"])
    page.locator("#review").click()
    page.locator("#raise-alarm").click()
    expect(page).to_have_url(re.compile(r"/alarms/\d+/$"))
    return re.search(r"/alarms/(\d+)/", page.url).group(1)


def zone_card(page, code: str):
    return page.locator("section.evac-zone", has_text=code)


def report_zones(page, alarm: str) -> None:
    page.goto(f"/alarms/{alarm}/")
    page.locator("#link-zones").click()
    for code in ("A-1-W", "A-1-E"):
        zone_card(page, code).locator("button[value=cleared]").click()
        expect(zone_card(page, code).locator(".zone-state")).to_have_attribute("data-state", "cleared")
    card = zone_card(page, "A-2-W")
    card.locator("summary").click()
    card.locator("input[name=remaining]").fill("2")
    card.locator("input[name=where]").fill("Room 201")
    card.locator("button[value=remaining]").click()
    expect(zone_card(page, "A-2-W").locator(".zone-state")).to_have_attribute("data-state", "remaining")


def report_status(page, alarm: str, status: str) -> None:
    page.goto(f"/alarms/{alarm}/")
    page.wait_for_function("() => window.RallypointStream && window.RallypointStream.connected")
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.locator(f"#status-{status}").click()
    expect(page.locator("#my-status-now")).to_have_attribute("data-status", status)
    assert posts == []  # over the stream


def roll_call_offline(page, alarm: str, text, offline_ms: int, size: str) -> None:
    page.goto(f"/alarms/{alarm}/")
    page.locator("#link-roll-call").click()
    page.get_by_role("link", name=re.compile(re.escape(text["point"]))).click()
    expect(page.locator("#roll-call-list li[data-person]").first).to_be_visible()
    page.context.set_offline(True)
    for name in ("Lena", "Anton"):
        page.locator("#roll-call-search").fill(name)
        page.locator("#roll-call-list li[data-person]:visible .present-button").click()
    page.locator("#roll-call-search").fill("")
    expect(page.locator("#sync-state")).to_be_visible()
    expect(page.locator("#roll-call")).to_have_attribute("data-waiting", "2")
    screenshot(page, f"evacuation-{text['locale']}-roll-call-offline-{size}")
    page.wait_for_timeout(offline_ms)  # the network is down this long; the marks wait in the page
    expect(page.locator("#roll-call")).to_have_attribute("data-waiting", "2")
    page.context.set_offline(False)
    expect(page.locator("#roll-call")).to_have_attribute("data-waiting", "0", timeout=15_000)
    expect(page.locator("#sync-state")).to_be_hidden()


def test_a_whole_fire_evacuation_in_the_demo_school(browser, server):
    text = TEXT[server.language]
    lead, lead_errors = sign_in(browser, server, "lead", DESKTOP)
    alarm = raise_fire_in_building_a(lead, text)
    lead.goto(f"/cockpit/{alarm}/")
    expect(lead.locator("[data-part=evacuation]")).to_be_visible()

    helper, helper_errors = sign_in(browser, server, "member", PHONE)
    report_zones(helper, alarm)
    fits_and_is_labelled(helper, "the zones page on a phone")
    screenshot(helper, f"evacuation-{text['locale']}-zones-phone")

    guest, guest_errors = sign_in(browser, server, "guest", PHONE)
    report_status(guest, alarm, "safe")
    fits_and_is_labelled(guest, "the alarm page with the status on a phone")
    screenshot(guest, f"evacuation-{text['locale']}-alarm-status-phone", full_page=False)
    teacher, teacher_errors = sign_in(browser, server, "employee", PHONE)
    report_status(teacher, alarm, "need_help")
    teacher.locator("#link-groups").click()
    teacher.locator("button[id$=-all-safe]").click()
    expect(teacher.locator(".evac-people li[data-status=safe]")).to_have_count(6)
    fits_and_is_labelled(teacher, "the class page on a phone")
    screenshot(teacher, f"evacuation-{text['locale']}-class-phone")

    roll_call, roll_call_errors = sign_in(browser, server, "lead", PHONE)
    roll_call_offline(roll_call, alarm, text, OFFLINE_MS[server.language], "phone")
    fits_and_is_labelled(roll_call, "the roll call on a phone")

    lead.goto(f"/alarms/{alarm}/missing/")
    names = {row.strip() for row in lead.locator("#missing-list tbody tr td:first-child").all_inner_texts()}
    assert names == MISSING
    screenshot(lead, f"evacuation-{text['locale']}-missing-desktop")
    with lead.expect_download() as download:
        lead.locator("#handover-pdf").click()
    pdf = pdf_text(Path(download.value.path()).read_bytes())
    assert text["handover"] in pdf and all(name in pdf for name in MISSING)
    assert "Room 201" in pdf and "Emma Schneider" in pdf and "Gustav Gast" not in pdf
    lead.goto(f"/cockpit/{alarm}/")
    expect(lead.locator("[data-count='evac.no_status']")).to_have_text(str(len(MISSING)))
    screenshot(lead, f"evacuation-{text['locale']}-cockpit-desktop")

    lead.on("dialog", lambda dialog: dialog.accept())
    lead.locator("details:has(form[action$='/end/']) > summary").click()
    lead.locator("form[action$='/end/'] [name=reason]").fill("Fire put out")
    lead.locator("form[action$='/end/'] button[type=submit]").click()
    expect(roll_call.locator("#roll-call-ended")).to_be_visible(timeout=10_000)
    expect(roll_call.locator("#roll-call-list")).to_have_count(0)
    assert roll_call.evaluate("Object.keys(localStorage).filter(k => k.startsWith('rp.evac.'))") == []
    roll_call.reload()
    assert not any(name in roll_call.locator("main").inner_text() for name in MISSING)
    for errors in (lead_errors, helper_errors, guest_errors, teacher_errors):
        assert script_errors(errors) == []
    # The roll-call page was offline on purpose: its failed requests and the lost socket are expected there.
    assert [e for e in script_errors(roll_call_errors) if "ERR_INTERNET_DISCONNECTED" not in e] == []
