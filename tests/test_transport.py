"""Transport hygiene: a nonce-based Content-Security-Policy, and no credentials or contact data in URLs."""

from __future__ import annotations

import logging
import re

import pytest

from rallypoint.tenants.roles import Role

SCRIPT_NONCE = re.compile(r'<script\b[^>]*\bnonce="([^"]+)"')
CSP_NONCE = re.compile(r"'nonce-([^']+)'")


def _nonces(response) -> tuple[str, list[str]]:
    """The nonce in the CSP header and the nonce attributes of the page's script tags (all of them have one)."""
    header = CSP_NONCE.findall(response["Content-Security-Policy"])
    assert len(header) == 1, response["Content-Security-Policy"]
    body = response.content.decode()
    on_page = SCRIPT_NONCE.findall(body)
    assert len(on_page) == body.count("<script"), "a <script> tag without a nonce"
    return header[0], on_page


def _script_src(response) -> str:
    directives = dict(d.strip().split(" ", 1) for d in response["Content-Security-Policy"].split(";"))
    return directives["script-src"]


def test_the_pages_script_carries_the_nonce_of_its_csp_header(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    header, on_page = _nonces(response)
    assert on_page and set(on_page) == {header}
    assert len(header) >= 22  # secrets.token_urlsafe(16): 128 bits


def test_every_response_gets_a_fresh_nonce(client, db):
    first, _ = _nonces(client.get("/accounts/login/"))
    second, _ = _nonces(client.get("/accounts/login/"))
    assert first != second


def test_the_error_pages_script_carries_the_nonce_too(world, signed_in):
    response = signed_in(Role.ADMIN).get("/people/424242/")
    assert response.status_code == 404
    header, on_page = _nonces(response)
    assert on_page and set(on_page) == {header}


def test_the_csp_allows_no_inline_or_eval_and_trusts_only_the_nonce(client, db):
    response = client.get("/accounts/login/")
    policy = response["Content-Security-Policy"]
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    sources = _script_src(response).split()
    assert "'strict-dynamic'" in sources
    # 'self' only as the fallback for browsers without CSP3 ('strict-dynamic' makes others ignore it).
    assert set(sources) - {"'strict-dynamic'", "'self'"} == {f"'nonce-{_nonces(response)[0]}'"}
    assert "style-src 'self';" in policy
    assert "object-src 'none'" in policy and "base-uri 'none'" in policy


@pytest.mark.parametrize("url", [
    "/accounts/login/?password=x",
    "/?token=abc",
    "/?Email=a@b.c",
    "/?page=2&ACCESS_TOKEN=abc",
    "/accounts/login/?next=/&pwd=",
    "/api/people?api_key=k",
    "/static/web/app.js?sig=s",
])
def test_credentials_tokens_and_contact_data_in_the_query_string_are_refused(client, db, url):
    response = client.get(url)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert "must not be sent in the URL" in body
    assert "a@b.c" not in body and "abc" not in body  # values are never echoed
    assert "Content-Security-Policy" in response  # still wrapped by the security headers


def test_they_are_refused_on_every_method(client, db):
    assert client.post("/accounts/login/?password=x", {"username": "u@example.org"}).status_code == 400


def test_the_refusal_does_not_log_the_query_string(client, db):
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Collect()
    logger = logging.getLogger("django")
    logger.addHandler(handler)
    try:
        assert client.get("/accounts/login/?password=hunter2-value").status_code == 400
    finally:
        logger.removeHandler(handler)
    assert records, "the 400 is still logged (by path)"
    assert all("hunter2-value" not in record.getMessage() for record in records)


def test_credentials_in_a_post_body_are_not_refused(client, db):
    response = client.post("/accounts/login/", {"username": "nobody@example.org", "password": "wrong password 1"})
    # The login form answers with its own error (whatever its status); the query-string guard stays out of it.
    assert response["Content-Type"].startswith("text/html")
    assert "must not be sent in the URL" not in response.content.decode()
    assert 'name="password"' in response.content.decode()


def test_ordinary_query_parameters_are_untouched(world, signed_in):
    client = signed_in(Role.ADMIN)
    assert client.get("/audit/?action=site.created&page=2").status_code == 200
    assert client.get("/people/?page=1").status_code == 200
    # Names that merely contain a refused word are fine.
    assert client.get("/audit/?object_type=person&actor=").status_code == 200
