"""Crypto-shredding of personal data: single fields sealed with their data subject's own key.

A personal field (the name or reference of a witness source) is stored in its event as

    pd1:<subject id, 32 hex digits>:<base64 of nonce (12 bytes) | ciphertext | GCM tag (16 bytes)>

encrypted with AES-256-GCM under a key that belongs to one data subject (an incident) and is
kept apart from the log, in the `subject_keys` table. The `pd1:<subject id>` prefix is GCM
associated data, so a sealed value cannot be moved to another subject unnoticed. Destroying
the subject's key erases every value sealed with it without rewriting the append-only log:
such a value then reads as an agreed marker (`ERASED_NAME`, `ERASED_REFERENCE`), never as an
error.

A subject key is stored wrapped with the at-rest keyring's current key when encryption at
rest is configured (see service/store/cipher.py), and as its 32 raw bytes otherwise.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Cipher

PREFIX = "pd1:"
"""How every sealed value starts (format version 1)."""

KEY_BYTES = 32
"""AES-256."""

NONCE_BYTES = 12

ERASED_NAME = "[erased]"
"""What a sealed name reads as once its subject's key is gone."""

ERASED_REFERENCE = ""
"""What a sealed reference reads as once its subject's key is gone."""


class SealedValueError(ValueError):
    """Raised when a sealed value is malformed or does not decrypt with its subject's key."""


def new_key() -> bytes:
    """A new random subject key."""
    return os.urandom(KEY_BYTES)


def is_sealed(value: str) -> bool:
    """True when `value` is in the sealed format (it may still be malformed)."""
    return value.startswith(PREFIX)


def _associated(subject_id: UUID) -> bytes:
    return f"{PREFIX}{subject_id.hex}".encode("ascii")


def seal(value: str, subject_id: UUID, key: bytes) -> str:
    """Encrypt `value` with the subject's key, in the sealed format."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, value.encode("utf-8"), _associated(subject_id))
    return f"{PREFIX}{subject_id.hex}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def subject_of(value: str) -> UUID | None:
    """The subject whose key sealed `value`; None when it is not sealed or is malformed."""
    if not is_sealed(value):
        return None
    subject, sep, _ = value[len(PREFIX) :].partition(":")
    if not sep:
        return None
    try:
        return UUID(hex=subject)
    except ValueError:
        return None


def unseal(value: str, key: bytes) -> str:
    """Decrypt a sealed value with its subject's key (SealedValueError when that fails)."""
    subject = subject_of(value)
    if subject is None:
        msg = "not a sealed value"
        raise SealedValueError(msg)
    encoded = value.rsplit(":", 1)[1]
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as err:
        msg = "a sealed value's ciphertext is not base64"
        raise SealedValueError(msg) from err
    nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
    try:
        plain = AESGCM(key).decrypt(nonce, sealed, _associated(subject))
    except (InvalidTag, ValueError) as err:
        msg = f"a value sealed for subject {subject} does not decrypt with its key"
        raise SealedValueError(msg) from err
    return plain.decode("utf-8")


def reveal(value: str, keys: Mapping[UUID, bytes], erased: str) -> str:
    """The plaintext of `value` when sealed and its key is in `keys`; `erased` when sealed and
    its key is not there (or it does not decrypt); `value` itself when it is not sealed."""
    if not is_sealed(value):
        return value
    subject = subject_of(value)
    key = keys.get(subject) if subject is not None else None
    if key is None:
        return erased
    try:
        return unseal(value, key)
    except SealedValueError:
        return erased


def wrap_key(key: bytes, cipher: Cipher | None) -> bytes:
    """The stored form of a subject key: encrypted with the at-rest cipher when there is one."""
    return cipher.encrypt(key) if cipher is not None else key


def unwrap_key(stored: bytes, cipher: Cipher | None) -> bytes:
    """A subject key from its stored form (32 raw bytes, or wrapped by the at-rest cipher).

    Raises service.store.cipher.EncryptionKeyError when it is wrapped and the at-rest key it
    was wrapped with is not configured.
    """
    if len(stored) == KEY_BYTES:
        return stored
    if cipher is None:
        from service.store.cipher import check_readable  # noqa: PLC0415 - avoids a cycle

        check_readable(stored, None)
        msg = "a subject key is wrapped, but no encryption key is configured"
        raise SealedValueError(msg)
    return cipher.decrypt(stored)
