"""Personal data encrypted at rest: the key ring of the installation and an encrypted model field.

An :class:`EncryptedTextField` stores ``v1.<keyid>.<AES-256-GCM token>``
(see :mod:`rallypoint.lib.crypto`), bound by associated data to its site,
table, column and row key: a ciphertext copied to another row or site fails
to decrypt. On the model instance the attribute holds the plain value; it is
decrypted on first access and encrypted on save. Encrypted columns cannot be
filtered or sorted in the database; look-ups go through a blind index.

The key ring comes from ``RP_ENCRYPTION_KEYS`` + ``RP_ENCRYPTION_INDEX_KEY``
or, by default, from the key file in the data directory (made on first start).
A token under a key this process does not know yet makes it reload the ring
once, so ``rallypoint rotate-keys`` works while the service runs.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from django.conf import settings
from django.db import models

from rallypoint.lib.crypto import DecryptionError, KeyRing, aad_for, decrypt, encrypt, key_id_of, load_or_create

log = logging.getLogger("rallypoint.encryption")
_lock = threading.Lock()
_ring: KeyRing | None = None
_file_state: tuple[float, float] = (0.0, 0.0)  # (when last checked, file mtime then)
RECHECK_SECONDS = 5.0


def _load(current: KeyRing | None) -> KeyRing:
    """The ring from the environment or the key file. The file is made only on the very first load:
    a file that disappears later keeps the keys this process has (new keys would orphan all data)."""
    if settings.ENCRYPTION_KEYS:
        return KeyRing.from_spec(settings.ENCRYPTION_KEYS, settings.ENCRYPTION_INDEX_KEY)
    if current is not None and not settings.KEYRING_FILE.exists():
        log.error("the key file is missing; keeping the keys already loaded", extra={"event": "keyring"})
        return current
    return load_or_create(settings.KEYRING_FILE)


def _file_changed() -> bool:
    """Has the key file changed (a key was added)? Looked at no more than every few seconds."""
    global _file_state
    if settings.ENCRYPTION_KEYS:
        return False
    checked, mtime = _file_state
    now = time.monotonic()
    if now - checked < RECHECK_SECONDS:
        return False
    try:
        current = settings.KEYRING_FILE.stat().st_mtime
    except FileNotFoundError:
        current = 0.0
    _file_state = (now, current)
    return current != mtime


def ring(*, reload: bool = False) -> KeyRing:
    """The installation's key ring. A key file that changed (``rotate-keys --add-key``) is re-read."""
    global _ring
    with _lock:
        if _ring is None or reload or _file_changed():
            _ring = _load(_ring)
        return _ring


def new_row_key() -> str:
    return uuid.uuid4().hex


class Ciphertext(str):
    """A value as stored in the database (a token), as opposed to a plain value set in code."""


def _aad(instance, field) -> str:
    return aad_for(getattr(instance, "site_id", None), instance._meta.db_table, field.column, instance.row_key)


def decrypt_for(instance, field, token: str) -> str:
    try:
        return decrypt(ring(), token, _aad(instance, field))
    except DecryptionError:
        if key_id_of(token) in ring().key_ids:
            raise
        return decrypt(ring(reload=True), token, _aad(instance, field))


def decrypt_values(model, field_name: str, rows) -> dict:
    """``{pk: plain value}`` of one encrypted column for ``rows`` of ``(pk, site_id, row_key, token)`` (from
    ``values_list``): without building a model instance per row, which cost three times the decryption
    when a roll call shows ten thousand names."""
    field = model._meta.get_field(field_name)
    table, column, keys = model._meta.db_table, field.column, ring()
    result = {}
    for pk, site_id, row_key, token in rows:
        if not token:
            result[pk] = ""
            continue
        aad = aad_for(site_id, table, column, row_key)
        try:
            result[pk] = decrypt(keys, token, aad)
        except DecryptionError:
            if key_id_of(token) in keys.key_ids:
                raise
            keys = ring(reload=True)
            result[pk] = decrypt(keys, token, aad)
    return result


class _Descriptor:
    def __init__(self, field):
        self.field = field

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        if self.field.attname not in instance.__dict__:  # left out by only()/defer(): load it now
            instance.refresh_from_db(fields=[self.field.attname])
        value = instance.__dict__.get(self.field.attname)
        if isinstance(value, Ciphertext):
            value = decrypt_for(instance, self.field, value) if value else ""
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance, value):
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):
    """A text column holding an AES-256-GCM token; the model needs a ``row_key`` field."""

    def contribute_to_class(self, cls, name, private_only=False):
        super().contribute_to_class(cls, name, private_only)
        setattr(cls, self.attname, _Descriptor(self))

    def from_db_value(self, value, expression, connection):
        return None if value is None else Ciphertext(value)

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if value is None:
            return None
        return Ciphertext(encrypt(ring(), str(value), _aad(model_instance, self)))

    def get_prep_value(self, value):
        if value is None or isinstance(value, Ciphertext):
            return value
        raise TypeError(f"{self.model.__name__}.{self.name} is encrypted: it cannot be compared or updated "
                        "in bulk; use its blind index or save the instance")


def encrypt_existing_rows(schema_editor, table: str, columns: list[str], *, site_column: str | None) -> None:
    """Migration helper: give each row a row key and encrypt the plain values in ``columns``."""
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    site_select = quote(site_column) if site_column else "NULL"
    select = ", ".join(quote(c) for c in columns)
    with connection.cursor() as cursor:
        # Table and column names come from the migrations themselves and are quoted; values are parameters.
        cursor.execute(f"SELECT id, {site_select}, {select} FROM {quote(table)}")  # noqa: S608  # nosec B608
        rows = cursor.fetchall()
    keyring = ring()
    assignments = ", ".join(f"{quote(c)} = %s" for c in ["row_key", *columns])
    for row_id, site_id, *values in rows:
        row_key = new_row_key()
        tokens = [None if v is None else encrypt(keyring, str(v), aad_for(site_id, table, column, row_key))
                  for column, v in zip(columns, values, strict=True)]
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {quote(table)} SET {assignments} WHERE id = %s",  # noqa: S608  # nosec B608
                           [row_key, *tokens, row_id])


def encrypted_fields(model) -> list:
    return [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]


def reencrypt_model(model, *, batch: int = 500) -> int:
    """Re-encrypt every value of ``model`` not under the newest key; returns how many rows changed.

    Row by row, so the service keeps running: readers know every key of the ring.
    """
    fields = encrypted_fields(model)
    newest = ring().newest_id
    changed = 0
    last_pk = 0
    while True:
        rows = list(model._base_manager.filter(pk__gt=last_pk).order_by("pk")[:batch])
        if not rows:
            return changed
        for row in rows:
            stale = [f.attname for f in fields
                     if isinstance(row.__dict__.get(f.attname), Ciphertext) and row.__dict__[f.attname]
                     and key_id_of(row.__dict__[f.attname]) != newest]
            if stale:
                for name in stale:
                    getattr(row, name)  # decrypt now, so that save() encrypts under the newest key
                row.save(update_fields=stale)
                changed += 1
        last_pk = rows[-1].pk
