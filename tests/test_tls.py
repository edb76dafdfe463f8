"""A TLS scan of the running `rallypoint run` proves the seed requirement: HTTPS with at least TLS 1.2.

sslyze brings its own legacy-capable OpenSSL (nassl), so unlike Python's ``ssl`` module it really attempts
SSL 2.0, SSL 3.0, TLS 1.0 and TLS 1.1 handshakes against the server: every cipher suite offered with those
protocols must be refused (SSLv2 and SSLv3 disabled, nothing below TLS 1.2), while TLS 1.2 and TLS 1.3 must
both be accepted.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sslyze import (
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    Scanner,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanStatusEnum,
)

from tests.server import run_server

PROTOCOL_SCANS = {
    "SSL 2.0": ScanCommand.SSL_2_0_CIPHER_SUITES,
    "SSL 3.0": ScanCommand.SSL_3_0_CIPHER_SUITES,
    "TLS 1.0": ScanCommand.TLS_1_0_CIPHER_SUITES,
    "TLS 1.1": ScanCommand.TLS_1_1_CIPHER_SUITES,
    "TLS 1.2": ScanCommand.TLS_1_2_CIPHER_SUITES,
    "TLS 1.3": ScanCommand.TLS_1_3_CIPHER_SUITES,
}


@pytest.fixture(scope="module")
def accepted(tmp_path_factory) -> dict[str, list[str]]:
    """Start the server once, scan it once with every protocol, and map each protocol to its accepted suites."""
    with run_server(tmp_path_factory.mktemp("tls")) as server:
        url = urlsplit(server.base_url)
        request = ServerScanRequest(
            server_location=ServerNetworkLocation(hostname=url.hostname, port=url.port, ip_address=url.hostname),
            scan_commands=set(PROTOCOL_SCANS.values()),
        )
        scanner = Scanner()
        scanner.queue_scans([request])
        (result,) = scanner.get_results()
    assert result.scan_status == ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    suites = {}
    for protocol, command in PROTOCOL_SCANS.items():
        attempt = getattr(result.scan_result, command.value)
        # A scan that errored has no result; it must not pass as "nothing accepted".
        assert attempt.status == ScanCommandAttemptStatusEnum.COMPLETED, (protocol, attempt.error_trace)
        suites[protocol] = [suite.cipher_suite.name for suite in attempt.result.accepted_cipher_suites]
    return suites


def test_the_built_in_server_refuses_ssl_2_and_3(accepted):
    assert accepted["SSL 2.0"] == []
    assert accepted["SSL 3.0"] == []


def test_the_built_in_server_refuses_tls_1_0_and_1_1(accepted):
    assert accepted["TLS 1.0"] == []
    assert accepted["TLS 1.1"] == []


def test_the_built_in_server_accepts_tls_1_2_and_1_3(accepted):
    assert accepted["TLS 1.2"]
    assert [suite for suite in accepted["TLS 1.2"] if "CBC" in suite or "ECDHE" not in suite] == []
    assert accepted["TLS 1.3"]
