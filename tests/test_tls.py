"""A TLS scan of the running `rallypoint run` proves the seed requirement: HTTPS with at least TLS 1.2.

sslyze brings its own legacy-capable OpenSSL (nassl), so unlike Python's ``ssl`` module it really attempts
SSL 2.0, SSL 3.0, TLS 1.0 and TLS 1.1 handshakes against the server: every cipher suite offered with those
protocols must be refused (SSLv2 and SSLv3 disabled, nothing below TLS 1.2), while TLS 1.2 and TLS 1.3 must
both be accepted. It also tries every elliptic curve for the key exchange (Mozilla's "intermediate" profile
allows X25519, P-256 and P-384 only) and reads the certificate: signed by the installation's own certificate
authority, for at most 365 days. An installation upgraded from a version that made an 825-day self-signed
certificate gets a new one; a certificate of the operator's own is served unchanged.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sslyze import (
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    Scanner,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanStatusEnum,
)

from tests.server import RunningServer, run_server

PROTOCOL_SCANS = {
    "SSL 2.0": ScanCommand.SSL_2_0_CIPHER_SUITES,
    "SSL 3.0": ScanCommand.SSL_3_0_CIPHER_SUITES,
    "TLS 1.0": ScanCommand.TLS_1_0_CIPHER_SUITES,
    "TLS 1.1": ScanCommand.TLS_1_1_CIPHER_SUITES,
    "TLS 1.2": ScanCommand.TLS_1_2_CIPHER_SUITES,
    "TLS 1.3": ScanCommand.TLS_1_3_CIPHER_SUITES,
}


@dataclass
class Scan:
    scan_result: object
    server: RunningServer


def scan_result(command: ScanCommand, scan: Scan):
    attempt = getattr(scan.scan_result, command.value)
    # A scan that errored has no result; it must not pass as "nothing accepted".
    assert attempt.status == ScanCommandAttemptStatusEnum.COMPLETED, (command, attempt.error_trace)
    return attempt.result


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """Start the server once, scan it once with every protocol, every curve and for its certificate."""
    with run_server(tmp_path_factory.mktemp("tls")) as server:
        url = urlsplit(server.base_url)
        request = ServerScanRequest(
            server_location=ServerNetworkLocation(hostname=url.hostname, port=url.port, ip_address=url.hostname),
            scan_commands={*PROTOCOL_SCANS.values(), ScanCommand.ELLIPTIC_CURVES, ScanCommand.CERTIFICATE_INFO},
        )
        scanner = Scanner()
        scanner.queue_scans([request])
        (result,) = scanner.get_results()
        assert result.scan_status == ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
        yield Scan(result.scan_result, server)


@pytest.fixture(scope="module")
def accepted(scan) -> dict[str, list[str]]:
    """Each protocol mapped to its accepted suites."""
    return {protocol: [suite.cipher_suite.name for suite in scan_result(command, scan).accepted_cipher_suites]
            for protocol, command in PROTOCOL_SCANS.items()}


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


def test_only_the_key_exchange_groups_of_mozillas_intermediate_profile_are_offered(scan):
    curves = scan_result(ScanCommand.ELLIPTIC_CURVES, scan)
    # sslyze names P-256 by its SECG name secp256r1 (OpenSSL: prime256v1)
    assert sorted(curve.name for curve in curves.supported_curves) == ["X25519", "secp256r1", "secp384r1"]
    assert {"secp521r1", "X448"} <= {curve.name for curve in curves.rejected_curves}


def served_certificate(scan) -> x509.Certificate:
    (deployment,) = scan_result(ScanCommand.CERTIFICATE_INFO, scan).certificate_deployments
    return deployment.received_certificate_chain[0]


def test_the_certificate_lives_at_most_365_days_and_is_signed_by_the_local_authority(scan):
    leaf = served_certificate(scan)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= timedelta(days=365)
    ca_file = scan.server.data_dir / "tls" / "ca.pem"
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_file.read_bytes()))
    assert "certutil -d sql:$HOME/.pki/nssdb" in scan.server.output()  # how to trust it, printed on start


def handshake(server, host: str, ca_file) -> x509.Certificate:
    """Connect as a client that trusts only ``ca_file`` and checks the name ``host``."""
    context = ssl.create_default_context(cafile=str(ca_file))
    port = urlsplit(server.base_url).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def test_a_client_that_trusts_the_local_authority_accepts_the_server_by_name_and_address(scan):
    ca_file = scan.server.data_dir / "tls" / "ca.pem"
    for host in ("localhost", "127.0.0.1"):
        handshake(scan.server, host, ca_file)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(scan.server, "rallypoint.example.org", ca_file)


def old_self_signed(tls_dir, days: int = 825) -> bytes:
    """The certificate earlier versions made on first start (lib/tls.py before the local authority)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Rallypoint (self-signed)")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    tls_dir.mkdir(parents=True)
    (tls_dir / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tls_dir / "cert.pem").write_bytes(pem)
    return pem


def served_pem(server) -> bytes:
    host, port = urlsplit(server.base_url).hostname, urlsplit(server.base_url).port
    return ssl.get_server_certificate((host, port)).encode()


def same_certificate(pem_a: bytes, pem_b: bytes) -> bool:
    return x509.load_pem_x509_certificate(pem_a) == x509.load_pem_x509_certificate(pem_b)


def test_an_upgrade_replaces_the_self_signed_certificate_an_earlier_version_made(tmp_path):
    old = old_self_signed(tmp_path / "data" / "tls")
    with run_server(tmp_path) as server:
        served = x509.load_pem_x509_certificate(served_pem(server))
        output = server.output()
    assert not same_certificate(old, served.public_bytes(serialization.Encoding.PEM))
    assert served.not_valid_after_utc - served.not_valid_before_utc <= timedelta(days=365)
    ca = x509.load_pem_x509_certificate((tmp_path / "data" / "tls" / "ca.pem").read_bytes())
    served.verify_directly_issued_by(ca)
    assert "Replaced the self-signed certificate of an earlier version (valid 825 days)" in output


def test_a_certificate_of_the_operators_own_is_served_unchanged(tmp_path):
    mine = tmp_path / "mine"
    pem = old_self_signed(mine, days=90)  # any certificate; the server must not touch it
    env = {"RP_TLS_CERT_FILE": str(mine / "cert.pem"), "RP_TLS_KEY_FILE": str(mine / "key.pem")}
    with run_server(tmp_path, env) as server:
        assert same_certificate(served_pem(server), pem)
        output = server.output()
    assert (mine / "cert.pem").read_bytes() == pem
    assert not (tmp_path / "data" / "tls").exists()
    assert "certificate authority" not in output
