"""`rallypoint run` as an admin starts it: migrate, demo seed, HTTPS, redirect, clean stop."""

from __future__ import annotations

import http.client
import json
import stat
import urllib.request

import pytest

from tests.server import fresh_database, insecure_context, run_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with run_server(tmp_path_factory.mktemp("run")) as running:
        yield running


def test_it_serves_https_with_health_and_readiness(server):
    for path, body in (("/healthz", {"status": "ok"}), ("/readyz", {"status": "ok", "database": "ok"})):
        with urllib.request.urlopen(server.base_url + path, context=insecure_context()) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/json"
            assert json.load(response) == body


def test_plain_http_only_redirects_to_https(server):
    host, port = server.http_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", "/people/")
    response = conn.getresponse()
    assert response.status == 308
    assert response.getheader("Location") == server.base_url + "/people/"
    assert response.read() == b""


def test_it_prints_the_demo_logins_and_keeps_them_private(server):
    credentials = server.credentials()
    assert set(credentials) == {"superadmin", "admin", "lead", "member", "employee", "guest"}
    output = server.output()
    for email, password in credentials.values():
        assert email in output and password in output
    mode = stat.S_IMODE((server.data_dir / "demo-credentials.txt").stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE((server.data_dir / "secret_key").stat().st_mode) == 0o600


def test_pages_carry_the_security_headers(server):
    with urllib.request.urlopen(server.base_url + "/accounts/login/", context=insecure_context()) as response:
        headers = response.headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


def test_a_second_start_keeps_the_data_and_does_not_seed_again(tmp_path):
    with fresh_database() as database:
        with run_server(tmp_path, database_url=database or "") as first:
            logins = first.credentials()
            assert first.stop() == 0
        with run_server(tmp_path, database_url=database or "") as second:
            assert second.credentials() == logins
            assert "Demo sign-in" in second.output()
            assert second.stop() == 0


def test_ctrl_c_stops_it_cleanly(tmp_path):
    with run_server(tmp_path) as running:
        assert running.stop() == 0
        assert "Rallypoint stopped." in running.output()
        assert "Traceback" not in running.output()
