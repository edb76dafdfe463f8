"""Encryption of personal data at rest (GDPR Art. 32): AES-256-GCM with key rotation.

This module is framework-free; model fields build on it.

Token format
    ``v1.<keyid>.<payload>`` where ``payload`` is unpadded base64url of
    ``nonce (12 bytes) | ciphertext | tag (16 bytes)``. Every encryption uses a
    fresh random 96-bit nonce, so the same plaintext never gives the same token.
    Key ids match ``[A-Za-z0-9_-]{1,16}`` and therefore never contain a dot.

AAD binding
    Each token is authenticated together with an *associated data* string that
    says where the value lives. Build it with :func:`aad_for` (site, table,
    column, row key). A token copied to another row, column or site then fails
    to decrypt instead of silently showing one person's data as another's. The
    token header ``v1.<keyid>.`` is authenticated too.

Rotation
    A :class:`KeyRing` holds named 256-bit keys in order. The newest (last) key
    encrypts; every key in the ring decrypts. To rotate: append a key
    (:func:`add_key`), restart every process (a process still holding the old
    ring cannot read tokens made under the new key), re-encrypt every token
    whose :func:`key_id_of` differs from ``ring.newest_id``, and only then
    remove the old key. Tokens under a removed key can no longer be decrypted.
    With random nonces, do not encrypt more than about 2**32 values under one key.

Blind index
    Encrypted columns cannot be searched, so a column that must be looked up
    (e.g. an e-mail address) also stores :func:`blind_index`: an HMAC-SHA256 of
    the normalised value under a separate *index key*, with a ``purpose`` for
    domain separation. The index key is independent of the encryption keys and
    never rotates with them; changing it means recomputing every index.

Key material never appears in exception messages or in ``repr()``; no value is
ever logged.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rallypoint.lib.env import ConfigError

__all__ = [
    "DecryptionError",
    "KeyRing",
    "aad_for",
    "add_key",
    "blind_index",
    "decrypt",
    "encrypt",
    "generate_key_b64",
    "generate_spec",
    "key_id_of",
    "load_or_create",
]

VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
_KEY_ID_RULE = "1-16 characters from A-Z a-z 0-9 _ -"
_B64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_NUMBERED_ID = re.compile(r"k([0-9]+)")


class DecryptionError(Exception):
    """A token cannot be decrypted: malformed, unknown key, wrong AAD or tampered."""


class KeyRing:
    """Ordered, named 256-bit AES keys plus a separate 256-bit blind-index key.

    The last key encrypts; any key decrypts. Raises :class:`ConfigError` on
    an empty ring, a bad or duplicate key id, or a key that is not 32 bytes.
    """

    __slots__ = ("_ciphers", "_ids", "_index_key")

    def __init__(self, keys: list[tuple[str, bytes]], index_key: bytes) -> None:
        if not keys:
            raise ConfigError("encryption key ring: at least one key is required")
        _check_key_bytes(index_key, "blind-index key")
        ciphers: dict[str, AESGCM] = {}
        for position, (key_id, key) in enumerate(keys, start=1):
            where = f"encryption key ring: key {position}"
            if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
                raise ConfigError(f"{where}: the key id must be {_KEY_ID_RULE}")
            if key_id in ciphers:
                raise ConfigError(f"{where}: duplicate key id {key_id!r}")
            _check_key_bytes(key, f"{where} ({key_id!r})")
            if hmac.compare_digest(key, index_key):
                raise ConfigError(f"{where} ({key_id!r}): the blind-index key must differ from every encryption key")
            ciphers[key_id] = AESGCM(key)
        self._ciphers = ciphers
        self._ids = tuple(ciphers)
        self._index_key = bytes(index_key)

    @classmethod
    def from_spec(cls, spec: str, index_key_b64: str) -> KeyRing:
        """Build a ring from ``"k1:BASE64KEY,k2:BASE64KEY"`` and a base64 index key."""
        if not spec or not spec.strip():
            raise ConfigError("encryption key spec: empty (expected 'id:base64key,...')")
        keys: list[tuple[str, bytes]] = []
        for position, entry in enumerate(spec.strip().split(","), start=1):
            where = f"encryption key spec: entry {position}"
            key_id, sep, key_b64 = entry.strip().partition(":")
            if not sep:
                raise ConfigError(f"{where}: expected 'id:base64key'")
            keys.append(_parse_entry(key_id.strip(), key_b64, where))
        return cls(keys, _decode_key(index_key_b64, "blind-index key"))

    @property
    def newest_id(self) -> str:
        """Id of the key that encrypts new values."""
        return self._ids[-1]

    @property
    def key_ids(self) -> tuple[str, ...]:
        """All key ids, oldest first."""
        return self._ids

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={list(self._ids)!r})"


def _check_key_bytes(key: object, where: str) -> None:
    if not isinstance(key, bytes):
        raise ConfigError(f"{where}: must be bytes")
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{where}: must be {KEY_BYTES} bytes, not {len(key)}")


def _decode_key(text: object, where: str) -> bytes:
    """Decode standard or urlsafe base64 (padding optional) of exactly 32 bytes."""
    if not isinstance(text, str) or not _B64.fullmatch(text.strip()):
        raise ConfigError(f"{where}: the key is not base64")
    stripped = text.strip().rstrip("=").translate(str.maketrans("-_", "+/"))
    try:
        key = base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where}: the key is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{where}: the key must decode to {KEY_BYTES} bytes, not {len(key)}")
    return key


def _parse_entry(key_id: object, key_b64: object, where: str) -> tuple[str, bytes]:
    # An invalid id is never echoed: it may be key material typed in the wrong place.
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise ConfigError(f"{where}: the key id must be {_KEY_ID_RULE}")
    return key_id, _decode_key(key_b64, f"{where} ({key_id!r})")


def generate_key_b64() -> str:
    """A new random 256-bit key as urlsafe base64."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def generate_spec() -> str:
    """A new key spec holding one random key with the id ``k1``."""
    return f"k1:{generate_key_b64()}"


# --- tokens -----------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _parse_token(token: object) -> tuple[str, bytes]:
    """Split a token into key id and ``nonce | ciphertext | tag``; strict and canonical."""
    if not isinstance(token, str):
        raise DecryptionError("malformed token: not a string")
    parts = token.split(".")
    if len(parts) != 3:
        raise DecryptionError("malformed token: expected 'v1.<keyid>.<payload>'")
    version, key_id, payload = parts
    if version != VERSION:
        raise DecryptionError("malformed token: unsupported version")
    if not _KEY_ID.fullmatch(key_id):
        raise DecryptionError("malformed token: invalid key id")
    return key_id, _payload(payload)


def _payload(payload: str) -> bytes:
    """``nonce | ciphertext | tag`` from a token's last part; strict and canonical."""
    if not _B64URL.fullmatch(payload):
        raise DecryptionError("malformed token: payload is not base64url")
    try:
        data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError("malformed token: payload is not base64url") from None
    if _b64url(data) != payload:
        raise DecryptionError("malformed token: payload is not canonical base64url")
    if len(data) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError("malformed token: payload too short")
    return data


def _associated_data(key_id: str, aad: str) -> bytes:
    # The header cannot contain a second dot, so header and aad never run together.
    return f"{VERSION}.{key_id}.{aad}".encode()


def encrypt(ring: KeyRing, plaintext: str, aad: str) -> str:
    """Encrypt under the ring's newest key, bound to ``aad`` (see :func:`aad_for`)."""
    if not isinstance(plaintext, str) or not isinstance(aad, str):
        raise TypeError("plaintext and aad must be str")
    if not aad:
        raise ValueError("aad must not be empty: bind the value to its place with aad_for()")
    key_id = ring.newest_id
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = ring._ciphers[key_id].encrypt(nonce, plaintext.encode("utf-8"), _associated_data(key_id, aad))
    return f"{VERSION}.{key_id}.{_b64url(nonce + sealed)}"


def decrypt(ring: KeyRing, token: str, aad: str) -> str:
    """Decrypt a token made by :func:`encrypt` with the same ``aad``; else :class:`DecryptionError`."""
    key_id, data = _parse_token(token)
    cipher = ring._ciphers.get(key_id)
    if cipher is None:
        raise DecryptionError(f"unknown key id {key_id!r}")
    if not isinstance(aad, str):
        raise TypeError("aad must be str")
    return _open(cipher, data, _associated_data(key_id, aad))


def _open(cipher: AESGCM, data: bytes, associated: bytes) -> str:
    try:
        plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], associated)
    except InvalidTag:
        raise DecryptionError("authentication failed: wrong key, wrong AAD or tampered token") from None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionError("decrypted value is not UTF-8") from None


def key_id_of(token: str) -> str:
    """The id of the key a token was made with; raises :class:`DecryptionError` if malformed."""
    return _parse_token(token)[0]


_quote = json.encoder.encode_basestring_ascii


def aad_for(site_id: int | None, table: str, column: str, row_key: str) -> str:
    """Canonical associated data naming where a value lives: compact JSON with sorted keys.

    JSON quotes and escapes every field, so no two different tuples give the
    same string (``("1", "2")`` and ``("12", "")`` differ).
    """
    if site_id is not None and (isinstance(site_id, bool) or not isinstance(site_id, int)):
        raise TypeError("site_id must be int or None")
    if not all(isinstance(part, str) for part in (table, column, row_key)):
        raise TypeError("table, column and row_key must be str")
    # Exactly json.dumps({...}, sort_keys=True, separators=(",", ":"), ensure_ascii=True), written out: the
    # keys in sorted order (column, row, site, table) and each string quoted by the encoder json.dumps uses.
    # A roll call decrypts thousands of names at once; building the dict and dumping it was a third of that.
    site = "null" if site_id is None else str(site_id)
    return (f'{{"column":{_quote(column)},"row":{_quote(row_key)},"site":{site},'
            f'"table":{_quote(table)}}}')


def blind_index(ring: KeyRing, value: str, *, purpose: str) -> str:
    """Deterministic hex HMAC-SHA256 of ``purpose + "\\0" + value`` under the index key.

    Normalise ``value`` first (e.g. lowercase an e-mail address). ``purpose``
    must be non-empty and must not contain NUL, so it cannot be confused with
    the value.
    """
    if not isinstance(value, str) or not isinstance(purpose, str):
        raise TypeError("value and purpose must be str")
    if not purpose or "\0" in purpose:
        raise ValueError("purpose must be non-empty and must not contain NUL")
    message = f"{purpose}\0{value}".encode()
    return hmac.new(ring._index_key, message, hashlib.sha256).hexdigest()


# --- key file -----------------------------------------------------------------
# {"keys": [["k1", "<base64>"], ...], "index_key": "<base64>"}, mode 0600.


def _read_key_file(path: Path) -> tuple[list[list[str]], str]:
    """Read and structurally validate the key file (no key material in errors)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"key file {path}: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        lineno = getattr(exc, "lineno", "?")
        raise ConfigError(f"key file {path}: not valid JSON (line {lineno})") from None
    if not isinstance(data, dict) or set(data) != {"keys", "index_key"}:
        raise ConfigError(f"key file {path}: expected an object with exactly 'keys' and 'index_key'")
    entries, index_b64 = data["keys"], data["index_key"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"key file {path}: 'keys' must be a non-empty list")
    for position, entry in enumerate(entries, start=1):
        if not isinstance(entry, list) or len(entry) != 2 or not all(isinstance(p, str) for p in entry):
            raise ConfigError(f"key file {path}: keys entry {position} must be [\"id\", \"base64key\"]")
    if not isinstance(index_b64, str):
        raise ConfigError(f"key file {path}: 'index_key' must be a base64 string")
    return entries, index_b64


def _ring_from_file(path: Path, entries: list[list[str]], index_b64: str) -> KeyRing:
    keys = [
        _parse_entry(key_id, key_b64, f"key file {path}: keys entry {position}")
        for position, (key_id, key_b64) in enumerate(entries, start=1)
    ]
    index_key = _decode_key(index_b64, f"key file {path}: index_key")
    try:
        return KeyRing(keys, index_key)
    except ConfigError as exc:
        raise ConfigError(f"key file {path}: {exc}") from None


def _dump(entries: list[list[str]], index_b64: str) -> bytes:
    return (json.dumps({"keys": entries, "index_key": index_b64}, indent=2) + "\n").encode("utf-8")


def _write_temp(path: Path, content: bytes) -> Path:
    """Write ``content`` to a new 0600 file next to ``path`` (mkstemp uses O_EXCL), fsynced."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_key_file(path: Path) -> None:
    temp = _write_temp(path, _dump([["k1", generate_key_b64()]], generate_key_b64()))
    try:
        os.link(temp, path)
    except FileExistsError:
        pass  # another process created it first; use theirs
    finally:
        temp.unlink()
    _fsync_dir(path.parent)


def load_or_create(path: Path) -> KeyRing:
    """Load the key file, creating it (mode 0600, one key ``k1``) if it does not exist.

    Creation writes a complete temporary file and hard-links it into place, which
    fails if ``path`` already exists: two processes starting at once agree on one
    file and neither can read a half-written one.
    """
    path = Path(path)
    if not path.exists():
        try:
            _create_key_file(path)
        except OSError as exc:
            raise ConfigError(f"key file {path}: cannot create: {exc.strerror}") from None
    entries, index_b64 = _read_key_file(path)
    return _ring_from_file(path, entries, index_b64)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def add_key(path: Path) -> str:
    """Append a new random key ``kN`` (N = highest existing number + 1) to the key file.

    The file is replaced atomically (0600 temp file + ``os.replace``) under an
    exclusive lock, so concurrent calls cannot lose a key. Earlier keys and the
    index key are kept. Returns the new key id.
    """
    path = Path(path)
    with _locked(path):
        entries, index_b64 = _read_key_file(path)
        _ring_from_file(path, entries, index_b64)  # refuse to extend a broken file
        numbers = [int(m.group(1)) for key_id, _ in entries if (m := _NUMBERED_ID.fullmatch(key_id))]
        new_id = f"k{max(numbers, default=0) + 1}"
        if not _KEY_ID.fullmatch(new_id):
            raise ConfigError(f"key file {path}: no key id left after {max(numbers)}")
        temp = _write_temp(path, _dump([*entries, [new_id, generate_key_b64()]], index_b64))
        try:
            os.replace(temp, path)
        except BaseException:
            temp.unlink()
            raise
        _fsync_dir(path.parent)
    return new_id


# --- per-person data keys (crypto-shredding) ------------------------------------------------------------
# A person's personal fields are encrypted under a data key of their own: ``p1.<handle>.<payload>``, where
# ``handle`` names the key (32 hex digits, random, not personal) and ``payload`` is, as in ``v1``, the
# nonce, ciphertext and tag, authenticated with the header and the value's place (aad_for). The data key
# itself is stored elsewhere (see rallypoint.tenants.keystore), wrapped: encrypted under the key ring with
# the associated data ``person-key:<handle>``. Destroying the wrapped key makes every value under it
# unreadable, in the live database and in every copy of it.

PERSON_VERSION = "p1"
_HANDLE = re.compile(r"[0-9a-f]{32}")


def new_data_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def check_handle(handle: object) -> str:
    if not isinstance(handle, str) or not _HANDLE.fullmatch(handle):
        raise ValueError("a data key's handle is 32 lowercase hex digits")
    return handle


def wrap_data_key(ring: KeyRing, handle: str, key: bytes) -> str:
    """The data key encrypted under the ring's newest key, bound to its handle."""
    _check_key_bytes(key, "data key")
    return encrypt(ring, _b64url(key), f"person-key:{check_handle(handle)}")


def unwrap_data_key(ring: KeyRing, handle: str, wrapped: str) -> bytes:
    text = decrypt(ring, wrapped, f"person-key:{check_handle(handle)}")
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError("a wrapped data key is malformed") from None
    if len(key) != KEY_BYTES:
        raise DecryptionError("a wrapped data key is malformed")
    return key


def is_person_token(token: object) -> bool:
    return isinstance(token, str) and token.startswith(PERSON_VERSION + ".")


def handle_of(token: str) -> str:
    """The handle of the data key a ``p1`` token was made with; :class:`DecryptionError` if malformed."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3 or parts[0] != PERSON_VERSION or not _HANDLE.fullmatch(parts[1]):
        raise DecryptionError("malformed token: expected 'p1.<handle>.<payload>'")
    return parts[1]


def encrypt_for_person(cipher: AESGCM, handle: str, plaintext: str, aad: str) -> str:
    """Encrypt under a person's data key (an ``AESGCM`` of it), bound to ``aad`` and the handle."""
    if not isinstance(plaintext, str) or not isinstance(aad, str):
        raise TypeError("plaintext and aad must be str")
    if not aad:
        raise ValueError("aad must not be empty: bind the value to its place with aad_for()")
    header = f"{PERSON_VERSION}.{check_handle(handle)}."
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = cipher.encrypt(nonce, plaintext.encode("utf-8"), (header + aad).encode())
    return header + _b64url(nonce + sealed)


def decrypt_for_person(cipher: AESGCM, token: str, aad: str) -> str:
    handle = handle_of(token)
    return _open(cipher, _payload(token.split(".")[2]), f"{PERSON_VERSION}.{handle}.{aad}".encode())
