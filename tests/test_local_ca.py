"""The local certificate authority of the embedded server (``lib/tls.py``), checked file by file.

Chains are checked with cryptography's RFC 5280 path validation (``x509.verification``), which also
enforces the authority's name constraint. tests/test_tls.py checks the running server.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from rallypoint.lib import tls
from tests.test_tls import old_self_signed

HOSTS = ["127.0.0.1", "localhost", "[::1]"]


def load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def verify(tls_dir, leaf: x509.Certificate, name: x509.GeneralName, when: datetime | None = None) -> None:
    """Validate ``leaf`` for ``name`` against the authority in ``tls_dir`` as a browser would."""
    store = Store([load(tls_dir / "ca.pem")])
    verifier = PolicyBuilder().store(store).time(when or datetime.now(UTC)).build_server_verifier(name)
    verifier.verify(leaf, [])


def names(cert: x509.Certificate) -> set:
    return set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)


def test_the_first_start_makes_an_authority_and_a_server_certificate_it_signs(tmp_path):
    tls_dir = tmp_path / "tls"
    result = tls.ensure_local_certificates(tls_dir, HOSTS)
    assert result.served and result.ca_file == tls_dir / "ca.pem"
    assert sorted(p.name for p in tls_dir.iterdir()) == ["ca-key.pem", "ca.pem", "cert.pem", "key.pem"]
    for path in tls_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    leaf = load(tls_dir / "cert.pem")
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(days=365)
    assert names(leaf) == {x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                           x509.IPAddress(ipaddress.ip_address("::1"))}
    for name in names(leaf):
        verify(tls_dir, leaf, name)
    assert load(tls_dir / "ca.pem").extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_authority_cannot_vouch_for_any_other_name(tmp_path):
    """Whoever takes the authority's key could sign for other sites; its name constraint makes such a
    certificate worthless to a device that trusts the authority."""
    tls_dir = tmp_path / "tls"
    tls.ensure_local_certificates(tls_dir, HOSTS)
    ca = load(tls_dir / "ca.pem")
    ca_key = serialization.load_pem_private_key((tls_dir / "ca-key.pem").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    forged = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bank.example")]))
              .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=30))
              .add_extension(x509.SubjectAlternativeName([x509.DNSName("bank.example"),
                                                          x509.IPAddress(ipaddress.ip_address("192.0.2.1"))]),
                             critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    for name in (x509.DNSName("bank.example"), x509.IPAddress(ipaddress.ip_address("192.0.2.1"))):
        with pytest.raises(VerificationError):
            verify(tls_dir, forged, name)


def test_a_later_start_keeps_both_while_they_are_valid(tmp_path):
    tls_dir = tmp_path / "tls"
    tls.ensure_local_certificates(tls_dir, HOSTS)
    before = {p.name: p.read_bytes() for p in tls_dir.iterdir()}
    assert tls.ensure_local_certificates(tls_dir, HOSTS).notes == []
    assert {p.name: p.read_bytes() for p in tls_dir.iterdir()} == before


def test_a_server_certificate_near_its_end_is_renewed_by_the_same_authority(tmp_path):
    tls_dir = tmp_path / "tls"
    tls.ensure_local_certificates(tls_dir, HOSTS)
    ca_before, leaf_before = (tls_dir / "ca.pem").read_bytes(), load(tls_dir / "cert.pem")
    later = datetime.now(UTC) + timedelta(days=340)
    result = tls.ensure_local_certificates(tls_dir, HOSTS, now=later)
    assert "due for renewal" in " ".join(result.notes)
    leaf = load(tls_dir / "cert.pem")
    assert (tls_dir / "ca.pem").read_bytes() == ca_before
    assert leaf.not_valid_after_utc > leaf_before.not_valid_after_utc + timedelta(days=300)
    verify(tls_dir, leaf, x509.DNSName("localhost"), when=later)


def test_new_host_names_get_a_new_authority_and_certificate(tmp_path):
    tls_dir = tmp_path / "tls"
    tls.ensure_local_certificates(tls_dir, HOSTS)
    ca_before = (tls_dir / "ca.pem").read_bytes()
    result = tls.ensure_local_certificates(tls_dir, [*HOSTS, "alarm.example.org"])
    assert (tls_dir / "ca.pem").read_bytes() != ca_before
    assert "Made a local certificate authority" in " ".join(result.notes)
    verify(tls_dir, load(tls_dir / "cert.pem"), x509.DNSName("alarm.example.org"))


def test_the_self_signed_certificate_of_an_earlier_version_is_replaced(tmp_path):
    tls_dir = tmp_path / "tls"
    old = old_self_signed(tls_dir)
    result = tls.ensure_local_certificates(tls_dir, HOSTS)
    assert "Replaced the self-signed certificate of an earlier version (valid 825 days)" in " ".join(result.notes)
    assert (tls_dir / "cert.pem").read_bytes() != old
    verify(tls_dir, load(tls_dir / "cert.pem"), x509.DNSName("localhost"))


def test_a_certificate_someone_else_put_there_is_left_alone(tmp_path):
    tls_dir = tmp_path / "tls"
    old_self_signed(tls_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alarm.example.org")])
    now = datetime.now(UTC)
    theirs = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + timedelta(days=9))
              .sign(key, hashes.SHA256())).public_bytes(serialization.Encoding.PEM)
    (tls_dir / "cert.pem").write_bytes(theirs)
    result = tls.ensure_local_certificates(tls_dir, HOSTS)
    assert not result.served and "not made by Rallypoint" in result.notes[0]
    assert (tls_dir / "cert.pem").read_bytes() == theirs
    assert not (tls_dir / "ca.pem").exists()


def test_the_key_exchange_is_limited_to_three_groups_or_else_to_one(caplog):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    assert tls.restrict_groups(context) == "X25519:prime256v1:secp384r1"
    # A group OpenSSL does not know stands for any failure to set the list: one curve, and a log line.
    with caplog.at_level(logging.WARNING, logger="rallypoint.tls"):
        assert tls.restrict_groups(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), ("NoSuchGroup",)) == "prime256v1"
    assert "limited to prime256v1" in caplog.text


def test_the_trust_instructions_name_the_file_for_every_platform(tmp_path):
    tls_dir = tmp_path / "tls"
    tls.ensure_local_certificates(tls_dir, HOSTS)
    text = tls.trust_instructions(tls_dir / "ca.pem")
    for platform in ("Debian, Ubuntu:", "Fedora:", "macOS:", "Windows:", "Chrome on Linux:", "Firefox on Linux:"):
        assert platform in text
    assert f"-i {tls_dir / 'ca.pem'}" in text and "update-ca-certificates" in text


def test_host_patterns_are_no_names_and_repeated_names_count_once(tmp_path):
    tls_dir = tmp_path / "tls"
    tls.ensure_local_certificates(tls_dir, ["*", ".example.org", "LocalHost", "localhost", "127.0.0.1"])
    leaf = load(tls_dir / "cert.pem")
    assert names(leaf) == {x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))}
    verify(tls_dir, leaf, x509.DNSName("localhost"))
