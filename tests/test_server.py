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


def test_the_websocket_protocol_offers_the_fast_send_to_the_stream():
    """``rallypoint run``'s WebSocket protocol reads attributes of uvicorn's own protocol class; a uvicorn
    release that renamed them would quietly send every alarm frame the slow way (a writer task per
    socket). This notices it."""
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    from rallypoint.realtime import wsprotocol

    async def app(scope, receive, send):
        pass

    config = uvicorn.Config(app, ws=wsprotocol.StreamProtocol, lifespan="off")
    config.load()
    assert config.ws_protocol_class is wsprotocol.StreamProtocol
    loop = asyncio.new_event_loop()
    try:
        protocol = wsprotocol.StreamProtocol(config=config, server_state=ServerState(), app_state={}, _loop=loop)
        assert all(hasattr(protocol, name) for name in wsprotocol._NEEDED)
        assert isinstance(protocol.writable, asyncio.Event)
        assert protocol.send_now(b"{}") is False  # before the handshake nothing is written
    finally:
        loop.close()
