"""Page hygiene that the Content-Security-Policy relies on, and the error pages."""

from __future__ import annotations

import re
from pathlib import Path

from rallypoint.tenants.roles import Role

# E-mail bodies are not pages of the web app: mail clients ignore <style> blocks and need inline styles.
TEMPLATES = sorted(path for path in (Path(__file__).resolve().parent.parent / "rallypoint").glob(
    "**/templates/**/*.html") if "templates/notify/" not in path.as_posix())


def test_no_template_has_inline_script_or_style():
    assert TEMPLATES
    for path in TEMPLATES:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"inline <script> in {path}"
        assert not re.search(r"\sstyle=", text), f"inline style in {path}"
        assert not re.search(r"\son[a-z]+=", text), f"inline event handler in {path}"
        assert "<style" not in text, f"<style> block in {path}"


def test_error_pages_are_the_products_and_translated(world, signed_in):
    client = signed_in(Role.ADMIN)
    response = client.get("/people/424242/")
    assert response.status_code == 404
    assert "This page does not exist in the site you are working in." in response.content.decode()
    german = client.get("/people/424242/", headers={"accept-language": "de"})
    assert german.status_code == 404
    assert "Diese Seite gibt es an Ihrem aktuellen Standort nicht." in german.content.decode()


def test_the_user_setting_wins_over_the_browser(world, signed_in):
    user = world.a.people[Role.LEAD].user
    user.language = "de"
    user.save()
    client = signed_in(Role.LEAD)
    body = client.get("/groups/", headers={"accept-language": "en"}).content.decode()
    assert "<h1>Gruppen</h1>" in body
    user.language = ""
    user.save()
    body = client.get("/groups/", headers={"accept-language": "en"}).content.decode()
    assert "<h1>Groups</h1>" in body


def test_readiness_reports_the_database(client, db):
    assert client.get("/readyz").json() == {"status": "ok", "database": "ok"}
    assert client.post("/healthz").status_code == 405
