"""Encryption at rest: the keyring cipher, the key settings, and the mapper's use of them.

States are AES-256-GCM encrypted under a header naming the key id; any configured key
decrypts, the current one encrypts; plaintext JSON stored before encryption was turned on
reads as before; a state no configured key opens fails with EncryptionKeyError, which the
API answers FAILED_PRECONDITION.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from eventsourcing.persistence import MapperDeserialisationError

from service.api.errors import status_for
from service.app.import_checks import check_events, rows_of
from service.config import ConfigError, Settings
from service.domain.base import recording_metadata
from service.domain.incident import Incident
from service.domain.values import GeoPoint, Source, SourceKind, TimePrecision, Weapon, WeaponKind
from service.store.cipher import (
    KEY_BYTES,
    EncryptionKey,
    EncryptionKeyError,
    Keyring,
    KeyringCipher,
    KeyringError,
    encryption_description,
    is_encrypted,
    key_id_of,
    keyring_from_env,
    parse_key_file,
    parse_key_setting,
)
from service.store.transcoding import registry_mapper
from tests.unit.app_driver import BRUSSELS, NOW
from tests.unit.test_import_checks import portable

SECRET_ADDRESS = "Rue du Secret Bien Gardé 77"
SECRET_DESCRIPTION = "witness saw a turquoise scooter leave toward Clemenceau"


def key(key_id: str) -> EncryptionKey:
    """A fresh random key under `key_id`."""
    return EncryptionKey(key_id, secrets.token_bytes(KEY_BYTES))


def b64(k: EncryptionKey) -> str:
    return base64.b64encode(k.key).decode()


def ring(*keys: EncryptionKey, current: str | None = None) -> Keyring:
    return Keyring(tuple(keys), current or keys[0].key_id)


def stored_shooting(mapper: Any) -> list[Any]:
    """The stored events of a shooting (reported, then its casualties revised)."""
    with recording_metadata({"actor": "a", "request_id": "r"}):
        incident = Incident(
            occurred_at=NOW - timedelta(hours=3), occurred_at_precision=TimePrecision.MINUTE,
            reported_at=NOW, municipality_code="21001", police_zone_code="5341",
            address=SECRET_ADDRESS, location=GeoPoint(50.83, 4.30),
            weapons=(Weapon(WeaponKind.HANDGUN, 2),), assailant_count=1,
            assailants_masked=False, killed=0, injured=1, drug_nexus=True,
            description=SECRET_DESCRIPTION,
            sources=(Source(SourceKind.PRESS, "Le Soir", "", NOW),), external_reference="",
        )  # fmt: skip
        incident.revise_casualties(occurred_at=NOW, killed=1, injured=0, reason="died")
    return [mapper.to_stored_event(e) for e in incident.collect_events()]


# --- the cipher ---------------------------------------------------------------------------


def test_a_state_round_trips_under_a_header_naming_its_key():
    cipher = ring(key("2026-11")).cipher()
    plaintext = json.dumps({"address": SECRET_ADDRESS}).encode()
    encrypted = cipher.encrypt(plaintext)
    assert encrypted[:9] == b"\x01\x072026-11"
    assert is_encrypted(encrypted)
    assert key_id_of(encrypted) == "2026-11"
    assert SECRET_ADDRESS.encode() not in encrypted
    assert cipher.decrypt(encrypted) == plaintext


def test_each_encryption_uses_a_fresh_nonce():
    cipher = ring(key("k1")).cipher()
    assert cipher.encrypt(b'{"a":1}') != cipher.encrypt(b'{"a":1}')


def test_the_current_key_encrypts_and_every_configured_key_decrypts():
    old, new = key("old"), key("new")
    before = ring(old).cipher().encrypt(b'{"n":1}')
    rotated = ring(new, old).cipher()
    after = rotated.encrypt(b'{"n":2}')
    assert key_id_of(after) == "new"
    assert rotated.decrypt(before) == b'{"n":1}'
    assert rotated.decrypt(after) == b'{"n":2}'


def test_plaintext_json_stored_before_encryption_reads_as_it_is():
    cipher = ring(key("k1")).cipher()
    assert cipher.decrypt(b'{"killed":1}') == b'{"killed":1}'


def test_a_state_of_a_key_that_is_not_configured_names_the_key_id():
    encrypted = ring(key("k1")).cipher().encrypt(b'{"a":1}')
    with pytest.raises(EncryptionKeyError, match=r"key id 'k1'.*\(k2\)") as caught:
        ring(key("k2")).cipher().decrypt(encrypted)
    assert caught.value.key_id == "k1"


def test_another_key_under_the_same_id_does_not_authenticate():
    encrypted = ring(key("k1")).cipher().encrypt(b'{"a":1}')
    with pytest.raises(EncryptionKeyError, match="does not authenticate"):
        ring(key("k1")).cipher().decrypt(encrypted)


def test_tampered_bytes_and_a_tampered_key_id_do_not_authenticate():
    k1, k2 = key("k1"), key("k2")
    cipher = ring(k1, k2).cipher()
    encrypted = cipher.encrypt(b'{"a":1}')
    flipped = encrypted[:-1] + bytes([encrypted[-1] ^ 1])
    with pytest.raises(EncryptionKeyError, match="does not authenticate"):
        cipher.decrypt(flipped)
    # The header is authenticated: relabelling the state with another configured id fails.
    relabelled = encrypted.replace(b"\x02k1", b"\x02k2", 1)
    with pytest.raises(EncryptionKeyError, match="does not authenticate"):
        cipher.decrypt(relabelled)
    with pytest.raises(EncryptionKeyError, match="truncated"):
        cipher.decrypt(encrypted[:10])
    with pytest.raises(EncryptionKeyError, match="no known format"):
        cipher.decrypt(b"\x07garbage")


def test_the_cipher_is_built_from_an_environment_as_the_library_builds_ciphers():
    k = key("env1")
    cipher = KeyringCipher({"INCIDENTS_ENCRYPTION_KEY": f"env1:{b64(k)}"})
    assert cipher.current_key_id == "env1"
    with pytest.raises(KeyringError, match="neither"):
        KeyringCipher({})


# --- keys from the configuration -------------------------------------------------------------


def test_a_key_file_lists_keys_the_first_current_unless_one_is_marked(tmp_path: Path):
    a, b, c = key("2026-01"), key("2026-06"), key("2026-11")
    text = f"# keys\n\n2026-11 {b64(c)}\n2026-06 {b64(b)}\n  2026-01 {b64(a)}\n"
    keyring = parse_key_file(text)
    assert keyring.current_id == "2026-11"
    assert keyring.key_ids == ("2026-11", "2026-06", "2026-01")
    assert keyring.keys[2].key == a.key
    marked = parse_key_file(f"2026-01 {b64(a)}\n2026-06 {b64(b)} current\n")
    assert marked.current_id == "2026-06"
    path = tmp_path / "keys"
    path.write_text(text, encoding="utf-8")
    from_file = keyring_from_env({"INCIDENTS_ENCRYPTION_KEY_FILE": str(path)})
    assert from_file == keyring


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "holds no key"),
        ("# only a comment\n", "holds no key"),
        ("k1\n", "line 1: expected"),
        ("k1 AAAA extra\n", "line 1: expected"),
        ("k1 not-base64!\n", "not valid base64"),
        (f"k1 {base64.b64encode(b'short').decode()}\n", "must be 32 bytes"),
        (f"bad/id {base64.b64encode(bytes(32)).decode()}\n", "key id"),
        (
            f"k1 {base64.b64encode(bytes(32)).decode()}\nk1 {base64.b64encode(bytes(32)).decode()}",
            "more than once",
        ),
        (
            f"k1 {base64.b64encode(bytes(32)).decode()} current\n"
            f"k2 {base64.b64encode(bytes(32)).decode()} current\n",
            "more than one key",
        ),
    ],
)
def test_a_bad_key_file_is_refused_saying_why(text: str, problem: str):
    with pytest.raises(KeyringError, match=problem):
        parse_key_file(text)


def test_a_development_key_is_given_with_its_id():
    k = key("dev")
    assert parse_key_setting(f"dev:{b64(k)}") == ring(k)
    with pytest.raises(KeyringError, match="<key id>:<base64 key>"):
        parse_key_setting(b64(k))


def test_settings_are_off_by_default_and_read_the_key_file(tmp_path: Path):
    assert Settings.from_env({}).encryption is None
    assert encryption_description(None) == {"encryption_at_rest": False}
    k = key("k7")
    path = tmp_path / "keys"
    path.write_text(f"k7 {b64(k)}\n", encoding="utf-8")
    settings = Settings.from_env({"INCIDENTS_ENCRYPTION_KEY_FILE": str(path)})
    assert settings.encryption == ring(k)
    described = encryption_description(settings.encryption)
    assert described == {
        "encryption_at_rest": True,
        "encryption_key_id": "k7",
        "encryption_key_ids": ["k7"],
    }
    # Keys never show in representations (which may end up in logs).
    assert b64(k) not in repr(settings)
    assert repr(k.key) not in repr(settings)


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"INCIDENTS_ENCRYPTION_KEY_FILE": "/nonexistent/keys"}, "cannot read"),
        ({"INCIDENTS_ENCRYPTION_KEY": "no-id-here"}, "INCIDENTS_ENCRYPTION_KEY"),
        (
            {"INCIDENTS_ENCRYPTION_KEY": "a:AAAA", "INCIDENTS_ENCRYPTION_KEY_FILE": "/k"},
            "not both",
        ),
    ],
)
def test_bad_key_settings_are_configuration_errors(env: dict[str, str], problem: str):
    with pytest.raises(ConfigError, match=problem):
        Settings.from_env(env)


# --- the mapper ---------------------------------------------------------------------------


def test_the_mapper_encrypts_states_and_decodes_them_as_the_plaintext_mapper_does():
    plain = registry_mapper()
    encrypting = registry_mapper(ring(key("k1")).cipher())
    stored = stored_shooting(encrypting)
    assert all(is_encrypted(s.state) for s in stored)
    assert all(SECRET_ADDRESS.encode() not in s.state for s in stored)
    events = [encrypting.to_domain_event(s) for s in stored]
    assert [vars(e) for e in events] == [
        vars(plain.to_domain_event(plain.to_stored_event(e))) for e in events
    ]
    payloads = [encrypting.to_payload(s) for s in stored]
    assert payloads == [json.loads(plain.to_stored_event(e).state) for e in events]
    assert payloads[0] is not None
    assert payloads[0]["address"] == SECRET_ADDRESS


def test_the_mapper_reads_a_mixed_log():
    plain_stored = stored_shooting(registry_mapper())
    encrypting = registry_mapper(ring(key("k1")).cipher())
    assert [vars(encrypting.to_domain_event(s)) for s in plain_stored] == [
        vars(registry_mapper().to_domain_event(s)) for s in plain_stored
    ]
    assert encrypting.to_payload(plain_stored[0]) == json.loads(plain_stored[0].state)


@pytest.mark.parametrize("configured", [None, "k2"])
def test_a_state_the_mapper_cannot_decrypt_raises_a_clear_error(configured: str | None):
    stored = stored_shooting(registry_mapper(ring(key("k1")).cipher()))[0]
    mapper = registry_mapper(None if configured is None else ring(key(configured)).cipher())
    expected = "no encryption key is configured" if configured is None else r"\(k2\)"
    for read in (mapper.to_domain_event, mapper.to_payload, mapper.check_readable):
        with pytest.raises(EncryptionKeyError, match=expected) as caught:
            read(stored)
        assert f"event 1 of stream {stored.originator_id}" in str(caught.value)
        assert "key id 'k1'" in str(caught.value)
        assert caught.value.key_id == "k1"


def test_a_plaintext_state_that_is_not_valid_json_fails_as_before():
    stored = stored_shooting(registry_mapper())[0]
    broken = stored.__class__(stored.originator_id, 1, stored.topic, b'{"not json')
    mapper = registry_mapper(ring(key("k1")).cipher())
    with pytest.raises(json.JSONDecodeError):
        mapper.to_payload(broken)
    with pytest.raises(MapperDeserialisationError, match="Failed to deserialise"):
        mapper.to_domain_event(broken)


def test_the_error_is_answered_failed_precondition_with_its_message():
    error = EncryptionKeyError("it is encrypted at rest with key id 'k1'", key_id="k1")
    code, message, trailers = status_for(error)
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert "key id 'k1'" in message
    assert trailers


def test_an_imported_state_must_be_plaintext():
    stored = stored_shooting(registry_mapper(ring(key("k1")).cipher()))[0]
    event = portable(stored)
    found = {f: t for _, f, t in check_events(rows_of([event]), frozenset(BRUSSELS.municipalities))}
    assert "encrypted at rest (key id 'k1')" in found["state_json"]
