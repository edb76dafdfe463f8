"""The installation's VAPID key (RFC 8292): made on first use, kept in the data directory (mode 0600).

Push services accept a message only with a JWT signed by this key; browsers get
the public half as ``applicationServerKey`` when they subscribe. Signing is
slow next to sending, so one token per push-service origin is reused for a
few minutes (it is valid for an hour).
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time
from email.utils import parseaddr
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from py_vapid import Vapid

#: A token is valid this long (RFC 8292 allows at most 24 hours) …
TOKEN_LIFETIME_SECONDS = 3600
#: … and is reused for this long before a new one is signed.
TOKEN_REUSE_SECONDS = 300

_lock = threading.Lock()
_keys: dict[str, Vapid] = {}
_tokens: dict[tuple[str, str], tuple[float, str]] = {}


def _new_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _ensure_private_file(path: Path) -> bytes:
    """The key file's content, creating it first if missing.

    A complete 0600 temporary file is hard-linked into place, which fails when
    the file already exists: two processes starting at once agree on one key
    and neither reads a half-written file.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(_new_pem())
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # another process made it first: use theirs
        finally:
            temporary.unlink(missing_ok=True)
    return path.read_bytes()


def key() -> Vapid:
    """The VAPID key pair of this installation (settings.VAPID_KEY_FILE)."""
    path = Path(settings.VAPID_KEY_FILE)
    with _lock:
        vapid = _keys.get(str(path))
        if vapid is None:
            private = serialization.load_pem_private_key(_ensure_private_file(path), password=None)
            if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
                raise ValueError("the VAPID key file does not hold a P-256 private key")
            vapid = _keys[str(path)] = Vapid(private_key=private, conf={"no-strict": True})
        return vapid


def application_server_key() -> str:
    """The public key as browsers want it: the uncompressed P-256 point, base64url without padding."""
    point = key().public_key.public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode("ascii")


def contact() -> str:
    """The ``sub`` claim: how the push service's operator reaches ours (mailto: or https:)."""
    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    return f"mailto:{address}" if "@" in address else settings.BASE_URL


def authorization(origin: str) -> str:
    """The ``Authorization: vapid t=…, k=…`` value for a push service at ``origin`` (scheme://host[:port])."""
    now = time.time()
    vapid = key()
    cache_key = (str(settings.VAPID_KEY_FILE), origin)
    with _lock:
        cached = _tokens.get(cache_key)
        if cached and now - cached[0] < TOKEN_REUSE_SECONDS:
            return cached[1]
    claims = {"aud": origin, "exp": int(now) + TOKEN_LIFETIME_SECONDS, "sub": contact()}
    header = vapid.sign(claims)["Authorization"]
    with _lock:
        _tokens[cache_key] = (now, header)
    return header
