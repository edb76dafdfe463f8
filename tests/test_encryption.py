"""Personal data encrypted at rest (seed: AES-256): nothing in clear in the database files, rows bound, rotation."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test import Client

from rallypoint.accounts.mfa_models import TotpDevice
from rallypoint.accounts.models import User, email_index
from rallypoint.audit.models import SecurityEvent
from rallypoint.lib.crypto import DecryptionError, key_id_of
from rallypoint.people.models import Membership
from rallypoint.tenants import encryption
from rallypoint.tenants.roles import Role
from tests.conftest import PASSWORD
from tests.pow import pow_field

TOTP_SECRET = "QXSECRETMARKERQXSECRETMARKERXYZZ"
MARK = {"full_name": "Qxname Vaultmark", "email": "qxmail.vaultmark@example.org", "phone": "+49 176 31415926",
        "department": "Qxdept Vaultmark"}


def _database_bytes() -> bytes:
    """Everything the database keeps on disk: the SQLite file and its WAL, or a pg_dump."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(FULL)")
        name = settings_dict["NAME"]
        data = b""
        for path in (name, f"{name}-wal"):
            try:
                with open(path, "rb") as handle:
                    data += handle.read()
            except FileNotFoundError:
                pass
        return data
    command = ["pg_dump", "--no-owner", "-h", settings_dict["HOST"] or "127.0.0.1",
               "-p", str(settings_dict["PORT"] or 5432), "-U", settings_dict["USER"] or "postgres",
               settings_dict["NAME"]]
    return subprocess.run(command, check=True, capture_output=True, timeout=60).stdout


@pytest.mark.django_db(transaction=True)
def test_no_personal_value_is_stored_in_clear(world, signed_in):
    admin = signed_in(Role.ADMIN)
    assert admin.post("/people/new/", {**MARK, "role": "lead"}).status_code == 302
    user = User.objects.by_email(MARK["email"]).get()
    user.set_password(PASSWORD)
    user.save()
    client = Client()
    client.post("/accounts/login/", {"username": MARK["email"], "password": PASSWORD,
                                     **pow_field(client, "/accounts/login/")}, REMOTE_ADDR="203.0.113.77")
    assert SecurityEvent.objects.filter(user=user, kind="sign_in.succeeded").get().client_ip == "203.0.113.77"
    TotpDevice.objects.create(user=user, secret=TOTP_SECRET, confirmed=True)
    raw = _database_bytes()
    assert len(raw) > 10_000
    for value in [*MARK.values(), "Qxname", "qxmail", "31415926", "Vaultmark", "203.0.113.77", TOTP_SECRET]:
        assert value.encode() not in raw, f"{value!r} is in the database in clear"
    # ... and the product still shows them to whom may see them.
    page = admin.get("/people/").content.decode()
    assert MARK["full_name"] in page and MARK["email"] in page and MARK["phone"] in page


def _raw(table: str, column: str, row_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [row_id])  # noqa: S608
        return cursor.fetchone()[0]


def _set_raw(table: str, column: str, row_id: int, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [value, row_id])  # noqa: S608


def test_a_ciphertext_copied_to_another_row_fails_to_decrypt(world):
    source, target = world.a.people[Role.ADMIN], world.a.people[Role.GUEST]
    _set_raw("tenants_membership", "full_name", target.pk, _raw("tenants_membership", "full_name", source.pk))
    with pytest.raises(DecryptionError):
        Membership.objects.get(pk=target.pk).full_name  # noqa: B018


def test_a_row_copied_to_another_site_fails_to_decrypt(world):
    source, target = world.a.people[Role.ADMIN], world.b.people[Role.GUEST]
    for column in ("row_key", "full_name"):
        _set_raw("tenants_membership", column, target.pk, _raw("tenants_membership", column, source.pk))
    with pytest.raises(DecryptionError):
        Membership.objects.get(pk=target.pk).full_name  # noqa: B018


def test_an_encrypted_column_cannot_be_compared_in_the_database(world):
    with pytest.raises(TypeError, match="encrypted"):
        list(Membership.objects.filter(full_name="NameAaadminzq"))
    with pytest.raises(TypeError, match="encrypted"):
        Membership.objects.filter(pk=world.a.people[Role.ADMIN].pk).update(phone="123")


def test_users_are_found_by_a_blind_index_and_it_keeps_addresses_unique(world):
    user = world.a.people[Role.LEAD].user
    assert User.objects.by_email(user.email.upper()).get() == user
    assert User.objects.get_by_natural_key(f"  {user.email} ") == user
    assert _raw("accounts_user", "email_index", user.pk) == email_index(user.email)
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user(user.email.upper())


def use_a_copy_of_the_key_file(settings, tmp_path) -> None:
    assert not settings.ENCRYPTION_KEYS, "the tests run with the key file of their data directory"
    copy = tmp_path / "keyring.json"
    shutil.copy(settings.KEYRING_FILE, copy)
    settings.KEYRING_FILE = copy
    encryption.ring(reload=True)


def test_rotating_keys_re_encrypts_everything_and_the_old_key_can_go(world, settings, tmp_path):
    use_a_copy_of_the_key_file(settings, tmp_path)
    event = SecurityEvent.objects.create(kind=SecurityEvent.Kind.SIGN_IN, client_ip="192.0.2.7")  # under the ring
    # Start from data written under the file's first key.
    call_command("rotate_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    names = {m.pk: m.full_name for m in Membership.objects.all()}
    handles = list(Membership.objects.values_list("data_key", flat=True))
    person_tokens = [_raw("tenants_membership", "full_name", pk) for pk in names]
    call_command("rotate_keys", "--add-key", stdout=open("/dev/null", "w"))  # noqa: SIM115
    newest = encryption.ring().newest_id
    assert newest == "k2"
    # A person's values stay under their data key; the data keys are wrapped under the new ring key.
    assert [_raw("tenants_membership", "full_name", pk) for pk in names] == person_tokens
    assert {key_id_of(w) for w in encryption.store().get_many(handles).values()} == {"k2"}
    assert key_id_of(_raw("audit_securityevent", "client_ip", event.pk)) == "k2"
    # Drop the old key from the file: everything still reads, data keys unwrapped afresh.
    data = json.loads(settings.KEYRING_FILE.read_text())
    data["keys"] = [k for k in data["keys"] if k[0] == "k2"]
    settings.KEYRING_FILE.write_text(json.dumps(data))
    encryption.ring(reload=True)
    encryption._cipher_cache.clear()
    assert {m.pk: m.full_name for m in Membership.objects.all()} == names
    assert SecurityEvent.objects.get(pk=event.pk).client_ip == "192.0.2.7"
    assert User.objects.by_email(world.a.people[Role.LEAD].user.email).exists()


def test_a_process_picks_up_a_key_added_elsewhere(world, settings, tmp_path):
    use_a_copy_of_the_key_file(settings, tmp_path)
    call_command("rotate_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    stale = encryption.ring()
    call_command("rotate_keys", "--add-key", stdout=open("/dev/null", "w"))  # noqa: SIM115
    with encryption._lock:
        encryption._ring = stale  # this process has not noticed the new key yet
    encryption._cipher_cache.clear()  # nor unwrapped a data key since
    assert Membership.objects.get(pk=world.a.people[Role.ADMIN].pk).full_name == "NameAaadminzq"
    assert encryption.ring().newest_id == "k2"


def test_a_vanished_key_file_does_not_make_new_keys(world, settings, tmp_path):
    use_a_copy_of_the_key_file(settings, tmp_path)
    keys_before = encryption.ring().key_ids
    settings.KEYRING_FILE.rename(tmp_path / "moved-away.json")
    encryption.ring(reload=True)
    assert not settings.KEYRING_FILE.exists()  # nothing was made in its place
    assert encryption.ring().key_ids == keys_before
    assert Membership.objects.get(pk=world.a.people[Role.ADMIN].pk).full_name == "NameAaadminzq"


def test_values_left_out_of_a_query_are_loaded_when_read(world):
    user = world.a.people[Role.LEAD].user
    assert User.objects.only("pk").get(pk=user.pk).email == user.email
    assert Membership.objects.defer("full_name").get(pk=world.a.people[Role.LEAD].pk).full_name == "NameAaleadzq"
