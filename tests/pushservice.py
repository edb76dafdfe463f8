"""A local Web Push service (RFC 8030) that checks and decrypts what it receives, and browsers for it.

It plays both sides a real browser vendor plays: :meth:`PushService.subscribe`
makes a subscription as ``pushManager.subscribe()`` would (a P-256 key pair and
a 16-byte auth secret, bound to the application server's VAPID key), and its
HTTPS endpoint takes the server's POSTs: it verifies the VAPID JWT (RFC 8292)
against that key, checks the TTL, Urgency and Topic headers, and decrypts the
aes128gcm body (RFC 8188, RFC 8291) with the subscription's private key and
auth secret, written from the RFCs with ``cryptography`` only (the sender
encrypts with another library). It can be told to answer an endpoint with 410 (or any status).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

URGENCIES = {"very-low", "low", "normal", "high"}
TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


class Rejected(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class BrowserSubscription:
    """What a browser keeps: the endpoint, its key pair and auth secret, and the server key it was made for."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    server_key: bytes  # the VAPID public key (uncompressed point) given as applicationServerKey

    def to_json(self) -> dict:
        """What ``PushSubscription.toJSON()`` returns in the browser."""
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(_point(self.private_key.public_key())), "auth": b64url(self.auth)}}


@dataclass
class Received:
    endpoint: str
    headers: dict
    payload: dict
    claims: dict


def decrypt_aes128gcm(body: bytes, private_key: ec.EllipticCurvePrivateKey, auth: bytes) -> bytes:
    """RFC 8291 § 3.4 key derivation and RFC 8188 decryption of a single record."""
    if len(body) < 21:
        raise Rejected(400, "body shorter than the aes128gcm header")
    salt, record_size, id_length = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    sender = body[21:21 + id_length]
    ciphertext = body[21 + id_length:]
    if id_length != 65 or sender[0] != 4:
        raise Rejected(400, "keyid is not the sender's uncompressed P-256 key")
    if len(ciphertext) > record_size or len(ciphertext) < 17:
        raise Rejected(400, "a Web Push message is one record")
    sender_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender)
    shared = private_key.exchange(ec.ECDH(), sender_key)
    key_info = b"WebPush: info\x00" + _point(private_key.public_key()) + sender
    ikm = HKDF(hashes.SHA256(), 32, salt=auth, info=key_info).derive(shared)
    cek = HKDF(hashes.SHA256(), 16, salt=salt, info=b"Content-Encoding: aes128gcm\x00").derive(ikm)
    nonce = HKDF(hashes.SHA256(), 12, salt=salt, info=b"Content-Encoding: nonce\x00").derive(ikm)
    try:
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
    except InvalidTag:
        raise Rejected(400, "the body does not decrypt with the subscription's keys") from None
    end = len(padded.rstrip(b"\x00")) - 1
    if end < 0 or padded[end] != 2:
        raise Rejected(400, "the last record's padding delimiter is not 0x02")
    return padded[:end]


def verify_vapid(header: str, audience: str, server_key: bytes) -> dict:
    """RFC 8292: ``vapid t=<JWT>, k=<key>``; the JWT is ES256-signed by ``k``, which must be the
    subscription's application server key. Returns the claims."""
    match = re.fullmatch(r"vapid\s+(.+)", header or "", re.IGNORECASE)
    if not match:
        raise Rejected(401, "no vapid Authorization header")
    params = dict(part.strip().split("=", 1) for part in match.group(1).split(",") if "=" in part)
    token, key = params.get("t", ""), unb64url(params.get("k", ""))
    if key != server_key:
        raise Rejected(403, "k is not the key this subscription was made for")
    try:
        head_b64, claims_b64, signature_b64 = token.split(".")
        head, claims = json.loads(unb64url(head_b64)), json.loads(unb64url(claims_b64))
        signature = unb64url(signature_b64)
    except ValueError:
        raise Rejected(401, "malformed JWT") from None
    if head.get("alg") != "ES256" or len(signature) != 64:
        raise Rejected(401, "the JWT is not ES256")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        public.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise Rejected(401, "bad JWT signature") from None
    now = time.time()
    if claims.get("aud") != audience:
        raise Rejected(401, "aud is not this push service's origin")
    if not isinstance(claims.get("exp"), int) or not now < claims["exp"] <= now + 24 * 3600:
        raise Rejected(401, "exp missing, past, or more than 24 hours ahead")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        raise Rejected(401, "sub is not a mailto: or https: contact")
    return claims


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test push service")])
    now = datetime.now(UTC)
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(loopback, critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "push-cert.pem", directory / "push-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class PushService:
    """``with PushService(tmp_path) as service:`` — an HTTPS push service on 127.0.0.1."""

    directory: Path
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    _subscriptions: dict[str, BrowserSubscription] = field(default_factory=dict)
    _answers: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> PushService:
        self.ca_file, key_file = _self_signed(self.directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.origin = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop answering (also to find out what happens when the push service is down)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    @property
    def host(self) -> str:
        """The entry for settings.PUSH_SERVICE_HOSTS."""
        return f"127.0.0.1:{self.port}"

    def subscribe(self, application_server_key: str) -> BrowserSubscription:
        """What ``pushManager.subscribe({applicationServerKey})`` does in a browser."""
        token = secrets.token_urlsafe(24)
        subscription = BrowserSubscription(endpoint=f"{self.origin}/wpush/v2/{token}",
                                           private_key=ec.generate_private_key(ec.SECP256R1()),
                                           auth=secrets.token_bytes(16), server_key=unb64url(application_server_key))
        with self._lock:
            self._subscriptions[token] = subscription
        return subscription

    def answer(self, subscription: BrowserSubscription, status: int) -> None:
        """From now on the endpoint answers ``status`` (410: the person revoked the permission)."""
        with self._lock:
            self._answers[subscription.endpoint.rsplit("/", 1)[1]] = status

    def payloads(self) -> list[dict]:
        with self._lock:
            return [r.payload for r in self.received]

    def handle(self, path: str, headers: dict, body: bytes) -> tuple[int, str]:
        token = path.rsplit("/", 1)[-1]
        with self._lock:
            self.requests.append({"path": path, "headers": headers})
            subscription = self._subscriptions.get(token) if path.startswith("/wpush/v2/") else None
            forced = self._answers.get(token)
        if subscription is None:
            return 404, "no such subscription"
        if forced:
            return forced, "as told"
        claims = verify_vapid(headers.get("authorization", ""), self.origin, subscription.server_key)
        if not headers.get("ttl", "").isdigit():
            raise Rejected(400, "TTL header missing or not a number")
        if headers.get("urgency", "normal") not in URGENCIES:
            raise Rejected(400, "bad Urgency header")
        if "topic" in headers and not TOPIC.match(headers["topic"]):
            raise Rejected(400, "bad Topic header")
        if headers.get("content-encoding") != "aes128gcm":
            raise Rejected(415, "Content-Encoding is not aes128gcm")
        if len(body) > 4096:
            raise Rejected(413, "payload larger than 4096 bytes")
        plaintext = decrypt_aes128gcm(body, subscription.private_key, subscription.auth)
        with self._lock:
            self.received.append(Received(subscription.endpoint, headers, json.loads(plaintext), claims))
        return 201, "created"


def _handler(service: PushService):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # The status line and headers go out in one write, the body in another: with Nagle's algorithm the
        # body would wait for the client's delayed ACK of the first (40 ms per message on Linux). Servers
        # that keep connections alive switch it off, as real push services do.
        disable_nagle_algorithm = True

        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                status, text = service.handle(urlsplit(self.path).path, headers, body)
            except Rejected as problem:
                with service._lock:
                    service.rejected.append(problem.reason)
                status, text = problem.status, problem.reason
            payload = text.encode()
            self.send_response(status)
            if status == 201:
                self.send_header("Location", f"{service.origin}/m/{secrets.token_hex(8)}")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    return Handler
