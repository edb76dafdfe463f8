"""Encryption at rest: tokens, AAD binding, rotation, key file and blind index."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading

import pytest

from rallypoint.lib import crypto
from rallypoint.lib.crypto import (
    DecryptionError,
    KeyRing,
    aad_for,
    add_key,
    blind_index,
    decrypt,
    encrypt,
    generate_key_b64,
    generate_spec,
    key_id_of,
    load_or_create,
)
from rallypoint.lib.env import ConfigError

KEY1 = bytes(range(32))
KEY2 = bytes(range(32, 64))
INDEX = bytes(range(64, 96))
AAD = aad_for(1, "people_person", "email", "42")


def ring(*ids: str, index: bytes = INDEX) -> KeyRing:
    material = {"k1": KEY1, "k2": KEY2}
    return KeyRing([(key_id, material[key_id]) for key_id in ids], index)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def tamper_with_payload(token: str) -> str:
    head, payload = token.rsplit(".", 1)
    # Change a full 6-bit group in the middle so the payload stays canonical base64url.
    middle = len(payload) // 2
    swapped = "A" if payload[middle] != "A" else "B"
    return f"{head}.{payload[:middle]}{swapped}{payload[middle + 1:]}"


# --- round trip ------------------------------------------------------------------------------


@pytest.mark.parametrize("plaintext", ["alice@example.org", "", "Zoë Ødegård 👩‍🚒 日本", "a\0b", "x" * 10_000])
def test_a_value_round_trips(plaintext: str) -> None:
    keys = ring("k1")
    assert decrypt(keys, encrypt(keys, plaintext, AAD), AAD) == plaintext


def test_a_token_has_the_documented_shape_and_hides_the_plaintext() -> None:
    token = encrypt(ring("k1"), "alice@example.org", AAD)
    version, key_id, payload = token.split(".")
    assert (version, key_id) == ("v1", "k1")
    assert "alice" not in token
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert len(raw) == 12 + len("alice@example.org") + 16


def test_encrypting_the_same_value_twice_gives_different_tokens() -> None:
    keys = ring("k1")
    assert encrypt(keys, "same", AAD) != encrypt(keys, "same", AAD)


def test_encrypting_without_aad_is_refused() -> None:
    with pytest.raises(ValueError, match="aad"):
        encrypt(ring("k1"), "value", "")


# --- AAD binding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "other_place",
    [
        aad_for(1, "people_person", "email", "43"),  # another row
        aad_for(2, "people_person", "email", "42"),  # another site
        aad_for(None, "people_person", "email", "42"),  # no site
        aad_for(1, "people_person", "phone", "42"),  # another column
        aad_for(1, "people_contact", "email", "42"),  # another table
    ],
)
def test_a_ciphertext_copied_to_another_place_fails_to_decrypt(other_place: str) -> None:
    keys = ring("k1")
    token = encrypt(keys, "alice@example.org", AAD)
    with pytest.raises(DecryptionError, match="authentication failed"):
        decrypt(keys, token, other_place)


def test_aad_for_never_confuses_field_boundaries() -> None:
    assert aad_for(1, "t", "1", "2") != aad_for(1, "t", "12", "")
    assert aad_for(1, "t1", "c", "r") != aad_for(1, "t", "1c", "r")
    assert aad_for(1, 't","column":"x', "c", "r") != aad_for(1, "t", "x", "r")
    assert aad_for(None, "t", "c", "r") != aad_for(0, "t", "c", "r")
    assert aad_for(12, "t", "c", "") != aad_for(1, "t", "c", "2")


def test_aad_for_is_canonical_json() -> None:
    assert aad_for(7, "people", "email", "abc") == '{"column":"email","row":"abc","site":7,"table":"people"}'
    assert json.loads(aad_for(None, "t", "c", "ü"))["row"] == "ü"


@pytest.mark.parametrize("args", [(True, "t", "c", "r"), ("1", "t", "c", "r"), (1, "t", "c", 5)])
def test_aad_for_rejects_values_of_the_wrong_type(args: tuple) -> None:
    with pytest.raises(TypeError):
        aad_for(*args)


# --- tampering and malformed tokens ----------------------------------------------------------


def test_a_tampered_token_fails_to_decrypt() -> None:
    keys = ring("k1")
    token = encrypt(keys, "alice@example.org", AAD)
    with pytest.raises(DecryptionError):
        decrypt(keys, tamper_with_payload(token), AAD)


def test_a_token_whose_key_id_is_swapped_fails_to_decrypt() -> None:
    keys = ring("k1", "k2")
    token = encrypt(keys, "alice@example.org", AAD)
    assert key_id_of(token) == "k2"
    with pytest.raises(DecryptionError):
        decrypt(keys, token.replace("v1.k2.", "v1.k1.", 1), AAD)


def test_an_unknown_key_id_fails_to_decrypt() -> None:
    token = encrypt(ring("k1", "k2"), "value", AAD)
    with pytest.raises(DecryptionError, match="unknown key id 'k2'"):
        decrypt(ring("k1"), token, AAD)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1",
        "v1.k1",
        "v2.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.k.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.k1.AAAA",  # shorter than nonce + tag
        "v1.k1.AAAA AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+/",
        "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",  # non-canonical trailing bits
        "v1.k1.",
        "v1..AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.kééé.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        None,
    ],
)
def test_a_malformed_token_fails_to_decrypt(token: object) -> None:
    with pytest.raises(DecryptionError):
        decrypt(ring("k1"), token, AAD)  # type: ignore[arg-type]
    with pytest.raises(DecryptionError):
        key_id_of(token)  # type: ignore[arg-type]


def test_a_decryption_error_does_not_quote_the_token() -> None:
    token = encrypt(ring("k1"), "value", AAD)
    with pytest.raises(DecryptionError) as caught:
        decrypt(ring("k1"), token, aad_for(2, "t", "c", "r"))
    assert token.split(".")[2] not in str(caught.value)


# --- rotation ------------------------------------------------------------------------------


def test_after_adding_a_key_new_values_use_it_and_old_tokens_still_decrypt() -> None:
    old_ring, new_ring = ring("k1"), ring("k1", "k2")
    old_token = encrypt(old_ring, "before rotation", AAD)
    new_token = encrypt(new_ring, "after rotation", AAD)
    assert new_ring.newest_id == "k2"
    assert (key_id_of(old_token), key_id_of(new_token)) == ("k1", "k2")
    assert decrypt(new_ring, old_token, AAD) == "before rotation"
    assert decrypt(new_ring, new_token, AAD) == "after rotation"


def test_rotation_re_encrypts_tokens_not_under_the_newest_key() -> None:
    keys = ring("k1", "k2")
    old_token = encrypt(ring("k1"), "value", AAD)
    assert key_id_of(old_token) != keys.newest_id
    rotated = encrypt(keys, decrypt(keys, old_token, AAD), AAD)
    assert key_id_of(rotated) == keys.newest_id
    assert decrypt(KeyRing([("k2", KEY2)], INDEX), rotated, AAD) == "value"


def test_removing_the_old_key_makes_old_tokens_fail() -> None:
    old_token = encrypt(ring("k1"), "value", AAD)
    without_k1 = KeyRing([("k2", KEY2)], INDEX)
    with pytest.raises(DecryptionError, match="unknown key id 'k1'"):
        decrypt(without_k1, old_token, AAD)


def test_the_ring_lists_its_key_ids_in_order_and_hides_the_keys() -> None:
    keys = ring("k1", "k2")
    assert keys.key_ids == ("k1", "k2")
    assert "k1" in repr(keys)
    assert b64(KEY1) not in repr(keys)
    assert KEY1.hex() not in repr(keys)


# --- spec strings ----------------------------------------------------------------------------


def test_a_spec_accepts_standard_and_urlsafe_base64_with_or_without_padding() -> None:
    urlsafe = base64.urlsafe_b64encode(KEY2).decode().rstrip("=")
    keys = KeyRing.from_spec(f" k1:{b64(KEY1)} , 2026-11:{urlsafe}\n", b64(INDEX))
    assert keys.key_ids == ("k1", "2026-11")
    token = encrypt(ring("k1"), "value", AAD)
    assert decrypt(keys, token, AAD) == "value"


def test_a_generated_spec_makes_a_working_ring() -> None:
    spec = generate_spec()
    assert spec.startswith("k1:")
    keys = KeyRing.from_spec(spec, generate_key_b64())
    assert keys.newest_id == "k1"
    assert decrypt(keys, encrypt(keys, "value", AAD), AAD) == "value"
    assert generate_spec() != spec


SECRET = b64(KEY1)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (SECRET, "entry 1: expected 'id:base64key'"),
        (f"k1:{SECRET},", "entry 2: expected 'id:base64key'"),
        (f"k1:{SECRET},,k2:{b64(KEY2)}", "entry 2: expected 'id:base64key'"),
        (f":{SECRET}", "entry 1: the key id must be"),
        (f"key.1:{SECRET}", "entry 1: the key id must be"),
        (f"a-key-id-that-is-too-long:{SECRET}", "entry 1: the key id must be"),
        (f"{SECRET}:k1", "entry 1: the key id must be"),  # swapped
        (f"k1:{SECRET},k2:{SECRET[:-8]}", "entry 2 \\('k2'\\): the key must decode to 32 bytes, not 27"),
        (f"k1:{SECRET[:-1]}AAAA", "entry 1 \\('k1'\\): the key must decode to 32 bytes, not 35"),
        (f"k1:{SECRET[:20]}!{SECRET[21:]}", "entry 1 \\('k1'\\): the key is not base64"),
        (f"k1:{SECRET[:-1]}AA", "entry 1 \\('k1'\\): the key is not valid base64"),
        (f"k1:{SECRET},k1:{b64(KEY2)}", "duplicate key id 'k1'"),
        (f"k1:{b64(INDEX)}", "blind-index key must differ"),
    ],
)
def test_a_bad_spec_raises_config_error_naming_the_entry_but_not_the_key(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        KeyRing.from_spec(spec, b64(INDEX))
    shown = str(caught.value)
    for secret in (SECRET, SECRET[:10], SECRET[-20:], b64(KEY2)[:10], b64(INDEX)[:10]):
        assert secret not in shown


@pytest.mark.parametrize("index_key", ["", "secret value!", b64(KEY1)[:-8], b64(bytes(33))])
def test_a_bad_index_key_raises_config_error(index_key: str) -> None:
    with pytest.raises(ConfigError, match="blind-index key") as caught:
        KeyRing.from_spec(f"k1:{b64(KEY2)}", index_key)
    assert not index_key or index_key[:10] not in str(caught.value)


@pytest.mark.parametrize(
    ("keys", "index_key", "message"),
    [
        ([], INDEX, "at least one key"),
        ([("k1", KEY1[:16])], INDEX, "must be 32 bytes, not 16"),
        ([("k1", "text")], INDEX, "must be bytes"),
        ([("k 1", KEY1)], INDEX, "key id must be"),
        ([("k1", KEY1)], INDEX[:31], "blind-index key: must be 32 bytes"),
    ],
)
def test_a_bad_key_ring_raises_config_error(keys: list, index_key: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        KeyRing(keys, index_key)


# --- key file ----------------------------------------------------------------------------------


def test_load_or_create_creates_a_private_file_with_one_key(tmp_path) -> None:
    path = tmp_path / "keys.json"
    keys = load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.key_ids == ("k1",)
    data = json.loads(path.read_text())
    assert set(data) == {"keys", "index_key"}
    assert [key_id for key_id, _ in data["keys"]] == ["k1"]
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]  # no temp file left behind


def test_load_or_create_is_stable_across_loads(tmp_path) -> None:
    path = tmp_path / "keys.json"
    first = load_or_create(path)
    content = path.read_text()
    second = load_or_create(path)
    assert path.read_text() == content
    assert decrypt(second, encrypt(first, "value", AAD), AAD) == "value"
    assert blind_index(first, "a@example.org", purpose="email") == blind_index(
        second, "a@example.org", purpose="email"
    )


def test_load_or_create_from_many_threads_agrees_on_one_file(tmp_path) -> None:
    path = tmp_path / "keys.json"
    rings: list[KeyRing] = []
    threads = [threading.Thread(target=lambda: rings.append(load_or_create(path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    token = encrypt(rings[0], "value", AAD)
    assert all(decrypt(keys, token, AAD) == "value" for keys in rings)


def test_load_or_create_reads_a_file_it_did_not_write(tmp_path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [["k1", b64(KEY1)], ["k2", b64(KEY2)]], "index_key": b64(INDEX)}))
    keys = load_or_create(path)
    assert keys.key_ids == ("k1", "k2")
    assert decrypt(ring("k1", "k2"), encrypt(keys, "value", AAD), AAD) == "value"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "exactly 'keys' and 'index_key'"),
        (json.dumps({"keys": [["k1", SECRET]]}), "exactly 'keys' and 'index_key'"),
        (json.dumps({"keys": [], "index_key": b64(INDEX)}), "non-empty list"),
        (json.dumps({"keys": [["k1", SECRET, "x"]], "index_key": b64(INDEX)}), "keys entry 1 must be"),
        (json.dumps({"keys": [["k1", SECRET[:-8]]], "index_key": b64(INDEX)}), "keys entry 1 \\('k1'\\)"),
        (json.dumps({"keys": [["k1", SECRET]], "index_key": 5}), "'index_key' must be"),
        (json.dumps({"keys": [["k1", SECRET]], "index_key": SECRET}), "must differ"),
    ],
)
def test_a_broken_key_file_raises_config_error_without_the_keys(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as caught:
        load_or_create(path)
    assert str(path) in str(caught.value)
    assert SECRET[:10] not in str(caught.value)
    assert path.read_text() == content  # a broken file is never overwritten


def test_load_or_create_in_a_missing_directory_raises_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot create"):
        load_or_create(tmp_path / "missing" / "keys.json")


def test_add_key_appends_a_new_key_and_keeps_earlier_keys_and_the_index_key(tmp_path) -> None:
    path = tmp_path / "keys.json"
    before = load_or_create(path)
    old_data = json.loads(path.read_text())
    old_token = encrypt(before, "value", AAD)

    assert add_key(path) == "k2"
    assert add_key(path) == "k3"

    data = json.loads(path.read_text())
    assert data["keys"][:1] == old_data["keys"]
    assert data["index_key"] == old_data["index_key"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    after = load_or_create(path)
    assert after.key_ids == ("k1", "k2", "k3")
    assert key_id_of(encrypt(after, "value", AAD)) == "k3"
    assert decrypt(after, old_token, AAD) == "value"
    assert blind_index(after, "x", purpose="p") == blind_index(before, "x", purpose="p")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_add_key_numbers_after_the_highest_existing_key(tmp_path) -> None:
    path = tmp_path / "keys.json"
    entries = [["2026-11", b64(KEY1)], ["k7", b64(KEY2)]]
    path.write_text(json.dumps({"keys": entries, "index_key": b64(INDEX)}))
    assert add_key(path) == "k8"


def test_add_key_from_many_threads_loses_no_key(tmp_path) -> None:
    path = tmp_path / "keys.json"
    load_or_create(path)
    added: list[str] = []
    threads = [threading.Thread(target=lambda: added.append(add_key(path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(added) == sorted(f"k{n}" for n in range(2, 10))
    assert len(load_or_create(path).key_ids) == 9


def test_add_key_refuses_a_missing_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        add_key(tmp_path / "keys.json")


def test_the_key_file_permissions_ignore_a_lax_umask(tmp_path) -> None:
    old_umask = os.umask(0o000)
    try:
        load_or_create(tmp_path / "keys.json")
        add_key(tmp_path / "keys.json")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "keys.json").stat().st_mode) == 0o600


# --- blind index ----------------------------------------------------------------------------


def test_the_blind_index_is_deterministic_and_does_not_reveal_the_value() -> None:
    digest = blind_index(ring("k1"), "alice@example.org", purpose="email")
    assert digest == blind_index(ring("k1"), "alice@example.org", purpose="email")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert "alice" not in digest


def test_the_blind_index_does_not_change_when_a_key_is_added() -> None:
    assert blind_index(ring("k1"), "v", purpose="email") == blind_index(ring("k1", "k2"), "v", purpose="email")


def test_the_blind_index_differs_per_purpose_value_and_index_key() -> None:
    base = blind_index(ring("k1"), "alice@example.org", purpose="email")
    assert base != blind_index(ring("k1"), "alice@example.org", purpose="username")
    assert base != blind_index(ring("k1"), "bob@example.org", purpose="email")
    assert base != blind_index(ring("k1", index=bytes(32)), "alice@example.org", purpose="email")


def test_the_blind_index_separates_purpose_from_value() -> None:
    assert blind_index(ring("k1"), "b", purpose="a") != blind_index(ring("k1"), "", purpose="ab")
    with pytest.raises(ValueError, match="purpose"):
        blind_index(ring("k1"), "value", purpose="")
    with pytest.raises(ValueError, match="purpose"):
        blind_index(ring("k1"), "value", purpose="a\0b")


def test_the_module_exports_its_public_api() -> None:
    assert set(crypto.__all__) <= set(dir(crypto))


def test_a_persons_token_opens_only_with_their_key_in_its_place():
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from rallypoint.lib.crypto import (
        decrypt_for_person,
        encrypt_for_person,
        handle_of,
        new_data_key,
        unwrap_data_key,
        wrap_data_key,
    )

    ring = KeyRing([("k1", bytes(range(32)))], bytes(range(1, 33)))
    handle, other = "a" * 32, "b" * 32
    key = new_data_key()
    place = aad_for(1, "tenants_membership", "full_name", "r1")
    token = encrypt_for_person(AESGCM(key), handle, "Erika", place)
    assert token.startswith(f"p1.{handle}.") and handle_of(token) == handle
    assert decrypt_for_person(AESGCM(key), token, place) == "Erika"
    with pytest.raises(DecryptionError):
        decrypt_for_person(AESGCM(new_data_key()), token, place)  # another person's key
    with pytest.raises(DecryptionError):
        decrypt_for_person(AESGCM(key), token, aad_for(1, "tenants_membership", "phone", "r1"))  # another place
    with pytest.raises(DecryptionError):
        decrypt_for_person(AESGCM(key), token.replace(handle, other), place)  # the header is authenticated
    wrapped = wrap_data_key(ring, handle, key)
    assert unwrap_data_key(ring, handle, wrapped) == key
    with pytest.raises(DecryptionError):
        unwrap_data_key(ring, other, wrapped)  # a wrapped key moved to another handle
