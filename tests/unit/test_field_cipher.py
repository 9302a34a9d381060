"""The field cipher of personal data: sealed values, their subject, keys and erasure markers."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from service.app.personal_data import reveal_sources, sealed_subjects
from service.domain.values import Source, SourceKind
from service.store.cipher import EncryptionKey, EncryptionKeyError, Keyring, is_encrypted
from service.store.field_cipher import (
    ERASED_NAME,
    ERASED_REFERENCE,
    KEY_BYTES,
    PREFIX,
    SealedValueError,
    is_sealed,
    new_key,
    reveal,
    seal,
    subject_of,
    unseal,
    unwrap_key,
    wrap_key,
)

NAME = "Philomène Zwartbol"


def test_a_sealed_value_names_its_subject_and_opens_with_its_key():
    subject, key = uuid4(), new_key()
    sealed = seal(NAME, subject, key)
    assert sealed.startswith(f"{PREFIX}{subject.hex}:")
    assert is_sealed(sealed)
    assert "Zwartbol" not in sealed
    assert subject_of(sealed) == subject
    assert unseal(sealed, key) == NAME
    assert seal(NAME, subject, key) != sealed  # a fresh nonce every time
    assert unseal(seal("", subject, key), key) == ""


def test_a_wrong_key_a_moved_value_or_damage_do_not_open():
    subject, key = uuid4(), new_key()
    sealed = seal(NAME, subject, key)
    with pytest.raises(SealedValueError):
        unseal(sealed, new_key())
    # The subject is authenticated: the same ciphertext under another subject fails.
    moved = sealed.replace(subject.hex, uuid4().hex)
    with pytest.raises(SealedValueError):
        unseal(moved, key)
    raw = bytearray(base64.b64decode(sealed.rsplit(":", 1)[1]))
    raw[-1] ^= 1
    damaged = sealed.rsplit(":", 1)[0] + ":" + base64.b64encode(bytes(raw)).decode()
    with pytest.raises(SealedValueError):
        unseal(damaged, key)
    with pytest.raises(SealedValueError):
        unseal(sealed.rsplit(":", 1)[0] + ":not base64!", key)
    with pytest.raises(SealedValueError):
        unseal("plain text", key)
    assert subject_of("pd1:not-a-uuid:AAAA") is None
    assert subject_of("pd1:nocolon") is None
    assert subject_of("plain") is None


def test_reveal_gives_the_plaintext_the_marker_or_the_value_itself():
    subject, key = uuid4(), new_key()
    sealed = seal(NAME, subject, key)
    assert reveal(sealed, {subject: key}, ERASED_NAME) == NAME
    assert reveal(sealed, {}, ERASED_NAME) == ERASED_NAME
    assert reveal(sealed, {subject: new_key()}, ERASED_NAME) == ERASED_NAME
    assert reveal("Le Soir", {}, ERASED_NAME) == "Le Soir"


def test_only_witness_sources_are_revealed_and_marked():
    subject, key = uuid4(), new_key()
    when = datetime(2026, 1, 2, tzinfo=UTC)
    sources = (
        Source(SourceKind.PRESS, "Le Soir", "https://x.test", when),
        Source(SourceKind.WITNESS, seal(NAME, subject, key), seal("PV 7", subject, key), when),
    )
    assert sealed_subjects(sources) == {subject}
    assert reveal_sources(sources, {subject: key}) == (
        sources[0],
        Source(SourceKind.WITNESS, NAME, "PV 7", when),
    )
    assert reveal_sources(sources, {}) == (
        sources[0],
        Source(SourceKind.WITNESS, ERASED_NAME, ERASED_REFERENCE, when),
    )


def test_subject_keys_are_wrapped_with_the_at_rest_keyring_when_there_is_one():
    key = new_key()
    assert len(key) == KEY_BYTES
    assert wrap_key(key, None) == key
    assert unwrap_key(key, None) == key
    cipher = Keyring((EncryptionKey("k1", b"\x01" * 32),), "k1").cipher()
    wrapped = wrap_key(key, cipher)
    assert is_encrypted(wrapped)
    assert key not in wrapped
    assert unwrap_key(wrapped, cipher) == key
    with pytest.raises(EncryptionKeyError):
        unwrap_key(wrapped, None)
    other = Keyring((EncryptionKey("k2", b"\x02" * 32),), "k2").cipher()
    with pytest.raises(EncryptionKeyError):
        unwrap_key(wrapped, other)
