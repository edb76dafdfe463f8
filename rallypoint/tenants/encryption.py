"""Personal data encrypted at rest: the key ring of the installation and an encrypted model field.

An :class:`EncryptedTextField` stores ``v1.<keyid>.<AES-256-GCM token>``
(see :mod:`rallypoint.lib.crypto`), bound by associated data to its site,
table, column and row key: a ciphertext copied to another row or site fails
to decrypt. On the model instance the attribute holds the plain value; it is
decrypted on first access and encrypted on save. Encrypted columns cannot be
filtered or sorted in the database; look-ups go through a blind index.

A field declared with ``owner`` belongs to one person and is encrypted under that person's data key
(``p1`` tokens; the keys live in the key store, :mod:`rallypoint.tenants.keystore`): ``owner="self"``
for a model that is the person (``Membership``, ``User``, with a ``data_key`` handle), else the name of
the foreign key to the person (``owner="membership"``). Forgetting the person destroys the key, and every
such value, in the database and in its backups, can no longer be read (:class:`KeyForgotten`). An empty
value is stored empty. Fields without ``owner`` are encrypted under the key ring (``v1`` tokens).

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

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import models

from rallypoint.lib.crypto import (
    DecryptionError,
    KeyRing,
    aad_for,
    decrypt,
    decrypt_for_person,
    encrypt,
    encrypt_for_person,
    handle_of,
    is_person_token,
    key_id_of,
    load_or_create,
    new_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from rallypoint.tenants import keystore as _keystore

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


class KeyForgotten(DecryptionError):
    """The value's data key was destroyed: its person was forgotten."""


# --- data keys -----------------------------------------------------------------------------------------
#: How long a process keeps a person's unwrapped data key in memory. Forgetting the person drops it here at
#: once; another process forgets it within this time (it is never written anywhere but the key store).
KEY_CACHE_SECONDS = 300.0
_store = None
_cipher_cache: dict[str, tuple[AESGCM, float]] = {}
_cache_lock = threading.Lock()


def store():
    global _store
    if _store is None:
        with _cache_lock:
            if _store is None:
                db = settings.DATABASES["default"]
                main = f"postgresql://{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/{db.get('NAME')}"
                _store = _keystore.open_store(settings.PERSON_KEYSTORE, main_database=main)
    return _store


def _unwrap(handle: str, wrapped: str) -> AESGCM:
    try:
        key = unwrap_data_key(ring(), handle, wrapped)
    except DecryptionError:
        key = unwrap_data_key(ring(reload=True), handle, wrapped)
    return AESGCM(key)


def data_ciphers(handles) -> dict[str, AESGCM]:
    """The data keys of ``handles`` that exist (one query to the key store for those not in memory)."""
    now = time.monotonic()
    found, missing = {}, []
    for handle in set(handles):
        cached = _cipher_cache.get(handle)
        if cached and now - cached[1] < KEY_CACHE_SECONDS:
            found[handle] = cached[0]
        else:
            missing.append(handle)
    if missing:
        for handle, wrapped in store().get_many(missing).items():
            cipher = found[handle] = _unwrap(handle, wrapped)
            _cipher_cache[handle] = (cipher, now)
    return found


def data_cipher(handle: str, *, create: bool = False) -> AESGCM:
    """The data key of ``handle``; with ``create``, made (and stored) when it does not exist yet.
    :class:`KeyForgotten` when it was destroyed, or does not exist and is not to be made."""
    cipher = data_ciphers([handle]).get(handle)
    if cipher is not None:
        return cipher
    if not create:
        raise KeyForgotten("the data key is gone: this person was forgotten")
    key = new_data_key()
    try:
        wrapped = store().add(handle, wrap_data_key(ring(), handle, key))
    except _keystore.KeyForgotten:
        raise KeyForgotten("this person was forgotten: no new data key") from None
    cipher = _unwrap(handle, wrapped)
    _cipher_cache[handle] = (cipher, time.monotonic())
    return cipher


def prepare_data_keys(instances) -> None:
    """Make the data keys of many new people at once (one write to the key store, not one each): call it
    before ``bulk_create`` of models that are persons (``data_key`` on the instance)."""
    handles = [i.data_key for i in instances if i.data_key]
    known = data_ciphers(handles)
    missing = [h for h in handles if h not in known]
    if not missing:
        return
    keys = ring()
    now = time.monotonic()
    stored = store().add_many([(h, wrap_data_key(keys, h, new_data_key())) for h in missing])
    for handle, wrapped in stored.items():
        _cipher_cache[handle] = (_unwrap(handle, wrapped), now)


def destroy_data_keys(handles) -> int:
    """Destroy the data keys for good (the people are forgotten); returns how many existed."""
    handles = [h for h in handles if h]
    for handle in handles:
        _cipher_cache.pop(handle, None)
    return store().destroy(handles) if handles else 0


def rewrap_data_keys() -> int:
    """Wrap the data key of every person in the database under the ring's newest key (after ``rotate-keys
    --add-key``); returns how many changed. Keys that no row names (a transaction that made one rolled back)
    are left as they are: nothing can be read with them."""
    from django.apps import apps  # every model with a data key, whichever app it is in

    newest, changed = ring().newest_id, 0
    keys = store()
    for model in apps.get_models():
        if "data_key" not in {f.name for f in model._meta.concrete_fields}:
            continue
        handles = [h for h in model._base_manager.values_list("data_key", flat=True) if h]
        for start in range(0, len(handles), 500):
            for handle, wrapped in keys.get_many(handles[start:start + 500]).items():
                if key_id_of(wrapped) != newest:
                    key = unwrap_data_key(ring(), handle, wrapped)
                    keys.replace_wrapped(handle, wrap_data_key(ring(), handle, key))
                    changed += 1
    return changed


class Ciphertext(str):
    """A value as stored in the database (a token), as opposed to a plain value set in code."""


def _aad(instance, field) -> str:
    return aad_for(getattr(instance, "site_id", None), instance._meta.db_table, field.column, instance.row_key)


def decrypt_for(instance, field, token: str) -> str:
    if is_person_token(token):
        return decrypt_for_person(data_cipher(handle_of(token)), token, _aad(instance, field))
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
    rows = list(rows)
    ciphers = data_ciphers({handle_of(row[3]) for row in rows if is_person_token(row[3])})
    result = {}
    for pk, site_id, row_key, token in rows:
        if not token:
            result[pk] = ""
            continue
        aad = aad_for(site_id, table, column, row_key)
        if is_person_token(token):
            cipher = ciphers.get(handle_of(token))
            if cipher is None:
                raise KeyForgotten("the data key is gone: this person was forgotten")
            result[pk] = decrypt_for_person(cipher, token, aad)
            continue
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
    """A text column holding an AES-256-GCM token; the model needs a ``row_key`` field. ``owner``: see the
    module's description."""

    def __init__(self, *args, owner: str | None = None, **kwargs):
        self.owner = owner
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.owner:
            kwargs["owner"] = self.owner
        return name, path, args, kwargs

    def data_key_of(self, instance) -> str | None:
        """The handle of the person's data key this value is encrypted under; None: the key ring."""
        if not self.owner:
            return None
        person = instance if self.owner == "self" else getattr(instance, self.owner)
        return person.data_key if person is not None else None

    def contribute_to_class(self, cls, name, private_only=False):
        super().contribute_to_class(cls, name, private_only)
        setattr(cls, self.attname, _Descriptor(self))

    def from_db_value(self, value, expression, connection):
        return None if value is None else Ciphertext(value)

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if value is None:
            return None
        if self.owner:
            if value == "":
                return Ciphertext("")
            handle = self.data_key_of(model_instance)
            if handle:
                return Ciphertext(encrypt_for_person(data_cipher(handle, create=True), handle, str(value),
                                                     _aad(model_instance, self)))
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


def _stale(field, row, newest: str) -> bool:
    """Is this value not under the key it belongs under: the person's data key for an owned field (a value
    from before data keys), else the ring's newest key?"""
    token = row.__dict__.get(field.attname)
    if not isinstance(token, Ciphertext) or not token:
        return False
    if is_person_token(token):
        return False
    if field.owner and field.data_key_of(row):
        return True
    return key_id_of(token) != newest


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
            stale = [f.attname for f in fields if _stale(f, row, newest)]
            if stale:
                for name in stale:
                    getattr(row, name)  # decrypt now, so that save() encrypts under the newest key
                row.save(update_fields=stale)
                changed += 1
        last_pk = rows[-1].pk


def give_data_keys(model_label: str):
    """Migration step: a handle of its own for every existing row of ``model_label`` (adding the column gave
    all of them the same one)."""
    def run(apps, schema_editor):
        model = apps.get_model(model_label)
        for pk in model._base_manager.values_list("pk", flat=True):
            model._base_manager.filter(pk=pk).update(data_key=new_row_key())
    return run


def move_to_data_keys(model_label: str):
    """Migration step: values of ``model_label``'s owned fields move from the key ring to their person's
    data key."""
    def run(apps, schema_editor):
        reencrypt_model(apps.get_model(model_label))
    return run
