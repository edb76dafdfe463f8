"""TLS of the embedded server: a local certificate authority, the certificate it signs, the key exchange.

Without a certificate of the operator's own (``RP_TLS_CERT_FILE``), the first start makes a certificate
authority of this installation (``tls/ca.pem``, its key ``tls/ca-key.pem``) and a server certificate
signed by it (``tls/cert.pem``, ``tls/key.pem``). A browser on a machine that trusts the authority
accepts the server without a warning, and only then registers the app's service worker (push
notifications, the installable app). The authority may sign only for the server's own host names
(a name constraint), so trusting it lets nobody who steals its key pose as any other site.
"""

from __future__ import annotations

import _ssl  # the C module behind ssl: its library handle also finds the symbols of the libssl it links
import ctypes
import ipaddress
import logging
import os
import socket
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger("rallypoint.tls")

#: Key exchange as in Mozilla's "intermediate" profile: these groups only, preferred first.
GROUPS = ("X25519", "prime256v1", "secp384r1")
#: When OpenSSL cannot be told the list (see :func:`restrict_groups`): one curve every client has.
FALLBACK_GROUP = "prime256v1"

SERVER_DAYS = 365  # browsers cap a server certificate's life (Apple: 825 days, public CAs: 398)
CA_DAYS = 10 * 365  # each device trusts the authority once; it can sign only for this server's names
RENEW_DAYS = 30  # a start renews a certificate that has less left
CA_NAME = "Rallypoint local CA"
#: The subject of the self-signed certificate earlier versions made (valid 825 days), replaced on start.
OLD_SELF_SIGNED_NAME = "Rallypoint (self-signed)"


@dataclass
class LocalCertificates:
    """What a start found or made in the TLS directory, to tell the operator."""

    ca_file: Path
    notes: list[str] = field(default_factory=list)
    served: bool = True  # False: tls/cert.pem is someone else's and is served as it is


# ---------------------------------------------------------------- key exchange


def restrict_groups(context: ssl.SSLContext, groups: tuple[str, ...] = GROUPS) -> str:
    """Offer only ``groups`` for the key exchange of ``context``; returns the list in effect.

    Python's ``ssl`` module (up to 3.14) can set only a single curve (``set_ecdh_curve``), and OpenSSL
    3.0's default list adds secp521r1 and X448, which Mozilla's "intermediate" profile leaves out.
    The list is therefore set with OpenSSL's own ``SSL_CTX_set1_groups_list``, called through ctypes
    on the ``SSL_CTX`` that the Python object wraps, in the very libssl that Python's ``_ssl`` module
    is linked with. Before the call, the pointer must prove to be that ``SSL_CTX`` (OpenSSL reports the
    options Python reports). If anything of that fails (another Python build or TLS library), the
    context gets the one curve every client supports, and a log line says so: the server then still
    offers nothing outside the profile, only fewer groups.
    """
    wanted = ":".join(groups)
    try:
        _set_groups_list(context, wanted)
    except (OSError, AttributeError, ValueError) as exc:
        context.set_ecdh_curve(FALLBACK_GROUP)
        log.warning("TLS key exchange limited to %s alone: the list %s could not be set (%s)",
                    FALLBACK_GROUP, wanted, exc)
        return FALLBACK_GROUP
    return wanted


_SSL_CTRL_SET_GROUPS_LIST = 92  # SSL_CTX_set1_groups_list() is a macro over SSL_CTX_ctrl() with this code


def _set_groups_list(context: ssl.SSLContext, groups: str) -> None:
    libssl = ctypes.CDLL(_ssl.__file__)
    get_options = libssl.SSL_CTX_get_options
    get_options.argtypes, get_options.restype = [ctypes.c_void_p], ctypes.c_uint64
    ctrl = libssl.SSL_CTX_ctrl
    ctrl.argtypes, ctrl.restype = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p], ctypes.c_long
    # CPython's SSLContext object is PyObject_HEAD followed by the SSL_CTX pointer.
    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not pointer or get_options(pointer) != int(context.options):
        raise ValueError("the SSLContext does not have the expected layout")
    if ctrl(pointer, _SSL_CTRL_SET_GROUPS_LIST, 0, groups.encode("ascii")) != 1:
        raise ValueError(f"OpenSSL refused the groups {groups}")


# ---------------------------------------------------------------- the local certificate authority


def ensure_local_certificates(tls_dir: Path, hosts: list[str], now: datetime | None = None) -> LocalCertificates:
    """Make or renew the local authority and the server certificate in ``tls_dir`` for ``hosts``.

    Kept as they are while valid for more than :data:`RENEW_DAYS` and made for the same host names. A
    ``cert.pem`` that is neither signed by a Rallypoint authority nor the self-signed certificate of an
    earlier version was put there by someone else and is left alone.
    """
    now = now or datetime.now(UTC)
    dns, ips = _names(hosts)
    paths = {name: tls_dir / f"{name}.pem" for name in ("ca", "ca-key", "cert", "key")}
    result = LocalCertificates(ca_file=paths["ca"])
    if _foreign(paths["cert"]):
        result.served = False
        result.notes.append(f"{paths['cert']} was not made by Rallypoint: it is served as it is.")
        return result
    current = _load(paths["cert"], paths["key"])
    authority = _load(paths["ca"], paths["ca-key"])
    if authority is None or _due(authority[0], now) or not _covers(authority[0], dns, ips):
        authority = _make_authority(dns, ips, now)
        _write(paths["ca"], paths["ca-key"], *authority)
        result.notes.append(f"Made a local certificate authority: {paths['ca']} (until "
                            f"{authority[0].not_valid_after_utc:%Y-%m-%d}). Trust it where you browse from (below).")
    reason = _renewal_reason(current, authority[0], dns, ips, now)
    if reason is not None:
        cert, key = _make_server_certificate(authority, dns, ips, now)
        _write(paths["cert"], paths["key"], cert, key)
        result.notes.append(f"{reason}Made a server certificate for {', '.join([*dns, *map(str, ips)])}, signed by "
                            f"the local certificate authority, valid until {cert.not_valid_after_utc:%Y-%m-%d}.")
    return result


def _names(hosts: list[str]) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    """Host names and addresses of ``RP_ALLOWED_HOSTS``; Django's patterns (``.example.org``, ``*``) are no names."""
    dns, ips = [], []
    for host in hosts:
        host = host.strip().strip("[]").lower()
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            if host and not host.startswith(".") and "*" not in host and host not in dns:
                dns.append(host)
            continue
        if address not in ips:
            ips.append(address)
    return dns, ips


def _load(cert_path: Path, key_path: Path):
    """(certificate, key), or None when either file is missing or unreadable or they do not match."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if cert.public_key().public_bytes(*_SPKI) != key.public_key().public_bytes(*_SPKI):
        return None
    return cert, key


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def _foreign(cert_path: Path) -> bool:
    """A certificate someone else put there: neither from a Rallypoint authority nor an earlier version's own."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True  # unreadable or not a certificate: not ours to overwrite
    issuer = _common_name(cert.issuer)
    return not (issuer.startswith(CA_NAME) or (issuer == OLD_SELF_SIGNED_NAME and cert.issuer == cert.subject))


def _due(cert: x509.Certificate, now: datetime) -> bool:
    return cert.not_valid_after_utc - now < timedelta(days=RENEW_DAYS) or cert.not_valid_before_utc > now


def _covers(ca: x509.Certificate, dns: list[str], ips: list) -> bool:
    """Does the authority's name constraint allow exactly the names the server needs now?"""
    try:
        constraint = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return False
    return set(constraint.permitted_subtrees or []) == set(_permitted(dns, ips))


def _permitted(dns: list[str], ips: list) -> list[x509.GeneralName]:
    return [*(x509.DNSName(name) for name in dns),
            *(x509.IPAddress(ipaddress.ip_network(ip)) for ip in ips)]


def _renewal_reason(current, ca: x509.Certificate, dns: list[str], ips: list, now: datetime) -> str | None:
    """None: keep the server certificate; otherwise why it is made anew (a sentence, or "" when there was none)."""
    if current is None:
        return ""
    cert = current[0]
    if _common_name(cert.issuer) == OLD_SELF_SIGNED_NAME:
        days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
        return (f"Replaced the self-signed certificate of an earlier version (valid {days} days): a browser that "
                "accepted it warns once more, unless its device trusts the local certificate authority. ")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "The certificate authority is new. "
    if _due(cert, now):
        return "The server certificate was due for renewal. "
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    if set(names) != {*map(x509.DNSName, dns), *map(x509.IPAddress, ips)}:
        return "The host names changed (RP_ALLOWED_HOSTS). "
    return None


def _make_authority(dns: list[str], ips: list, now: datetime):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Rallypoint"),
        # Named after the machine and the day, so that people can tell it apart in their browser's list.
        x509.NameAttribute(NameOID.COMMON_NAME, f"{CA_NAME} {socket.gethostname()[:30]} {now:%Y-%m-%d}"),
    ])
    excluded = []
    if not ips:  # without an address to permit, permit none (a missing kind of name is unconstrained)
        excluded = [x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")), x509.IPAddress(ipaddress.ip_network("::/0"))]
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now - timedelta(minutes=5) + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.NameConstraints(permitted_subtrees=_permitted(dns, ips) or None,
                                            excluded_subtrees=excluded or None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_server_certificate(authority, dns: list[str], ips: list, now: datetime):
    ca, ca_key = authority
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0] if dns else "Rallypoint")])
    start = now - timedelta(minutes=5)  # a client whose clock is a little behind
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName([*map(x509.DNSName, dns), *map(x509.IPAddress, ips)]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=signs_certificates,
                         crl_sign=signs_certificates, encipher_only=False, decipher_only=False)


def _write(cert_path: Path, key_path: Path, cert: x509.Certificate, key) -> None:
    """Key first, then certificate, each complete in a 0600 file before it takes the old one's place."""
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    for path, content in ((key_path, key_pem), (cert_path, cert.public_bytes(serialization.Encoding.PEM))):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(temporary, path)


# ---------------------------------------------------------------- telling the operator


def fingerprint(cert_path: Path) -> str:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def trust_instructions(ca_file: Path) -> str:
    """How to make a device trust the local authority: one command per platform, and the browsers' own stores."""
    ca = str(ca_file)
    steps = [
        ("Debian, Ubuntu", f"sudo cp {ca} /usr/local/share/ca-certificates/rallypoint-local-ca.crt"
                           " && sudo update-ca-certificates"),
        ("Fedora", f"sudo cp {ca} /etc/pki/ca-trust/source/anchors/rallypoint-local-ca.pem && sudo update-ca-trust"),
        ("macOS", f"sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca}"),
        ("Windows", "certutil -user -addstore Root ca.pem   (in a command prompt, in the folder of the copy)"),
        ("Chrome on Linux", f'mkdir -p $HOME/.pki/nssdb && certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n "{CA_NAME}"'
                            f" -i {ca}   (its own store; certutil is in libnss3-tools or nss-tools)"),
        ("Firefox on Linux", "its own store: Settings > Privacy & Security > Certificates > View Certificates >"
                             ' Authorities > Import, tick "Trust this CA to identify websites"'),
    ]
    return "\n".join([
        f"HTTPS: the server's certificate is signed by this installation's own certificate authority, {ca}",
        f"(SHA-256 fingerprint {fingerprint(ca_file)}).",
        "Browsers warn until the device you browse from trusts it, and push notifications and the installable",
        "app work only then. Copy the file to that device and run once:",
        *(f"  {platform + ':':<18} {command}" for platform, command in steps),
        "Then restart the browser. The authority can vouch only for this server's names (RP_ALLOWED_HOSTS).",
    ])
