"""Encryption at rest of stored event states: AES-GCM with a keyring, for key rotation.

A state encrypted by `KeyringCipher` starts with a short header naming the key it was
encrypted with, so that any configured key can decrypt it and the current key encrypts new
states: rotating keys never requires rewriting the log (which is append-only anyway).

    version (1 byte, 0x01) | key id length n (1 byte) | key id (n ASCII bytes)
    | nonce (12 random bytes) | ciphertext | GCM tag (16 bytes)

The header is authenticated too (GCM associated data), so a key id cannot be altered
unnoticed. A state stored before encryption was turned on is the library's plaintext JSON,
which starts with `{`: it is read as before.

`KeyringCipher` implements the `eventsourcing` library's `Cipher` interface (the mapper calls
it as it would the library's `AESCipher`), with AES-GCM from `cryptography` (OpenSSL): a key's
cipher is set up once, and a typical 1 KB state takes a few microseconds either way, where
the library's pycryptodome-based `AESCipher` sets up GCM for every state (about 60 µs).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import Cipher

from service.domain.errors import RuleViolatedError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_VERSION = 1
"""The first byte of an encrypted state."""

KEY_BYTES = 32
"""AES-256."""

NONCE_BYTES = 12
TAG_BYTES = 16

KEY_FILE_SETTING = "INCIDENTS_ENCRYPTION_KEY_FILE"
KEY_SETTING = "INCIDENTS_ENCRYPTION_KEY"

_VERSION_BYTE = bytes([FORMAT_VERSION])
_PLAINTEXT_START = b"{"
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_CURRENT_MARK = "current"

GENERATE_KEY_COMMAND = (
    'python -c "import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())"'
)
"""How to generate a key (documented in the README and repeated in configuration errors)."""


class KeyringError(ValueError):
    """Raised when encryption keys are configured wrongly (a file, a key, an id)."""


class EncryptionKeyError(RuleViolatedError):
    """Raised when a stored state cannot be decrypted with the configured keys.

    Its key is not configured (or none is), the key configured under its id is another key,
    or the stored bytes are damaged. A configuration problem, not a transient one: answered
    FAILED_PRECONDITION, never retried by clients.
    """

    RULE = "ENCRYPTION_KEY_UNAVAILABLE"

    def __init__(self, description: str, *, key_id: str | None = None, subject: str = "") -> None:
        self.key_id = key_id
        super().__init__(self.RULE, subject or "event store", description)


@dataclass(frozen=True)
class EncryptionKey:
    """A 256-bit AES key and the id stored with every state it encrypts."""

    key_id: str
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not _KEY_ID.fullmatch(self.key_id):
            msg = (
                f"key id {self.key_id[:40]!r} must be 1 to 32 characters of letters, digits, "
                "'.', '_' or '-', starting with a letter or digit"
            )
            raise KeyringError(msg)
        if len(self.key) != KEY_BYTES:
            msg = (
                f"key {self.key_id!r} must be {KEY_BYTES} bytes (256 bits), not "
                f"{len(self.key)}; generate one with: {GENERATE_KEY_COMMAND}"
            )
            raise KeyringError(msg)


@dataclass(frozen=True)
class Keyring:
    """The configured keys: the current one encrypts, every one of them decrypts."""

    keys: tuple[EncryptionKey, ...]
    current_id: str

    def __post_init__(self) -> None:
        if not self.keys:
            msg = "a keyring needs at least one key"
            raise KeyringError(msg)
        ids = [k.key_id for k in self.keys]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            msg = f"key id {repeated[0]!r} is given more than once"
            raise KeyringError(msg)
        if self.current_id not in ids:
            msg = f"the current key id {self.current_id!r} is not one of the keys"
            raise KeyringError(msg)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every configured key id, the current one included."""
        return tuple(k.key_id for k in self.keys)

    def cipher(self) -> KeyringCipher:
        """The cipher that encrypts with the current key and decrypts with any."""
        return KeyringCipher(self)


def parse_key_file(text: str, *, source: str = "the key file") -> Keyring:
    """Read a key file: one key a line, `<key id> <base64 key>`, optionally marked `current`.

    Blank lines and lines starting with `#` are ignored. The key marked `current` (at most
    one) encrypts new states; without a mark, the first key does.
    """
    keys: list[EncryptionKey] = []
    marked: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) not in {2, 3} or (len(parts) == 3 and parts[2] != _CURRENT_MARK):
            msg = (
                f"{source}, line {number}: expected '<key id> <base64 key>' with an optional "
                f"'{_CURRENT_MARK}' after it"
            )
            raise KeyringError(msg)
        try:
            keys.append(EncryptionKey(parts[0], _b64(parts[1], parts[0])))
        except KeyringError as err:
            msg = f"{source}, line {number}: {err}"
            raise KeyringError(msg) from None
        if len(parts) == 3:
            marked.append(parts[0])
    if not keys:
        msg = f"{source} holds no key"
        raise KeyringError(msg)
    if len(marked) > 1:
        msg = f"{source} marks more than one key '{_CURRENT_MARK}': {', '.join(marked)}"
        raise KeyringError(msg)
    return Keyring(tuple(keys), marked[0] if marked else keys[0].key_id)


def parse_key_setting(value: str) -> Keyring:
    """Read one key given as `<key id>:<base64 key>` (INCIDENTS_ENCRYPTION_KEY)."""
    key_id, sep, encoded = value.strip().partition(":")
    if not sep:
        msg = f"{KEY_SETTING} must be '<key id>:<base64 key>'"
        raise KeyringError(msg)
    key = EncryptionKey(key_id, _b64(encoded, key_id))
    return Keyring((key,), key.key_id)


def keyring_from_env(env: Mapping[str, str]) -> Keyring | None:
    """The keyring INCIDENTS_ENCRYPTION_KEY_FILE or INCIDENTS_ENCRYPTION_KEY configures.

    None when neither is set (encryption at rest is off). Both at once are an error.
    """
    path = env.get(KEY_FILE_SETTING, "").strip()
    value = env.get(KEY_SETTING, "").strip()
    if path and value:
        msg = f"set {KEY_FILE_SETTING} or {KEY_SETTING}, not both"
        raise KeyringError(msg)
    if value:
        try:
            return parse_key_setting(value)
        except KeyringError as err:
            msg = f"{KEY_SETTING}: {err}"
            raise KeyringError(msg) from None
    if not path:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        msg = f"{KEY_FILE_SETTING}: cannot read {path}: {err}"
        raise KeyringError(msg) from None
    return parse_key_file(text, source=f"{KEY_FILE_SETTING} ({path})")


def cipher_for(keyring: Keyring | None) -> KeyringCipher | None:
    """The cipher of a configured keyring; None when encryption at rest is off."""
    return None if keyring is None else keyring.cipher()


def encryption_description(keyring: Keyring | None) -> dict[str, Any]:
    """Fields for the start-up log line: whether states are encrypted and with which key id.

    Names key ids only, never keys.
    """
    if keyring is None:
        return {"encryption_at_rest": False}
    return {
        "encryption_at_rest": True,
        "encryption_key_id": keyring.current_id,
        "encryption_key_ids": list(keyring.key_ids),
    }


def is_encrypted(state: bytes) -> bool:
    """Whether a stored state is in the encrypted format (not the plaintext JSON)."""
    return state[:1] == _VERSION_BYTE


def key_id_of(state: bytes) -> str | None:
    """The key id in an encrypted state's header (None: plaintext, or no valid header)."""
    if not is_encrypted(state) or len(state) < 2:
        return None
    header = state[2 : 2 + state[1]]
    try:
        return header.decode("ascii")
    except UnicodeDecodeError:
        return None


def _b64(encoded: str, key_id: str) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        msg = f"key {key_id[:40]!r} is not valid base64; generate one with: {GENERATE_KEY_COMMAND}"
        raise KeyringError(msg) from None


def _header(key_id: str) -> bytes:
    raw = key_id.encode("ascii")
    return _VERSION_BYTE + bytes([len(raw)]) + raw


def _aes(key: bytes) -> AESGCM:
    # Imported here: `cryptography` is needed only when encryption at rest is on.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

    return AESGCM(key)


class KeyringCipher(Cipher):
    """The library's Cipher interface over a keyring: AES-256-GCM with a key-id header.

    `encrypt` uses the current key; `decrypt` chooses the key by the header's id, and gives
    back unchanged a plaintext JSON state (stored before encryption was turned on). It raises
    EncryptionKeyError when the key is not configured or the state does not authenticate.
    """

    def __init__(self, environment: Keyring | Mapping[str, str]) -> None:
        """Use a keyring, or read one from an environment as `keyring_from_env` does (as
        the library builds a cipher from its environment)."""
        keyring = environment if isinstance(environment, Keyring) else keyring_from_env(environment)
        if keyring is None:
            msg = f"neither {KEY_FILE_SETTING} nor {KEY_SETTING} is set"
            raise KeyringError(msg)
        from cryptography.exceptions import InvalidTag  # noqa: PLC0415 - as in _aes

        self._invalid_tag: type[Exception] = InvalidTag
        self.keyring = keyring
        self._ciphers = {k.key_id.encode("ascii"): _aes(k.key) for k in keyring.keys}
        self._current_header = _header(keyring.current_id)
        self._current = self._ciphers[keyring.current_id.encode("ascii")]

    @property
    def current_key_id(self) -> str:
        """The id of the key new states are encrypted with."""
        return self.keyring.current_id

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt with the current key: header, nonce, ciphertext and tag."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._current.encrypt(nonce, plaintext, self._current_header)
        return b"".join((self._current_header, nonce, sealed))

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt with the key the header names; plaintext JSON is given back as it is."""
        first = ciphertext[:1]
        if first == _PLAINTEXT_START:
            return ciphertext
        if first != _VERSION_BYTE or len(ciphertext) < 2:
            msg = (
                f"a stored state is in no known format (first byte {first!r}): neither "
                "plaintext JSON nor encrypted"
            )
            raise EncryptionKeyError(msg)
        end = 2 + ciphertext[1]
        raw_id = ciphertext[2:end]
        aes = self._ciphers.get(raw_id)
        key_id = raw_id.decode("ascii", errors="replace")
        if aes is None:
            raise EncryptionKeyError(missing_key_text(key_id, self.keyring), key_id=key_id)
        if len(ciphertext) < end + NONCE_BYTES + TAG_BYTES:
            msg = f"a stored state encrypted with key id {key_id!r} is truncated"
            raise EncryptionKeyError(msg, key_id=key_id)
        nonce = ciphertext[end : end + NONCE_BYTES]
        try:
            return aes.decrypt(nonce, ciphertext[end + NONCE_BYTES :], ciphertext[:end])
        except self._invalid_tag:
            msg = (
                f"a stored state encrypted with key id {key_id!r} does not authenticate: the "
                "key configured under that id is not the one it was encrypted with, or the "
                "stored bytes are damaged"
            )
            raise EncryptionKeyError(msg, key_id=key_id) from None


def missing_key_text(key_id: str | None, keyring: Keyring | None) -> str:
    """What to say about a state encrypted with a key id that is not configured."""
    named = f"key id {key_id!r}" if key_id is not None else "a key"
    if keyring is None:
        return (
            f"it is encrypted at rest with {named}, and no encryption key is configured: "
            f"set {KEY_FILE_SETTING} to a key file holding it"
        )
    return (
        f"it is encrypted at rest with {named}, which is not among the configured key ids "
        f"({', '.join(keyring.key_ids)}): add it to {KEY_FILE_SETTING} (old keys stay there "
        "for reading after a rotation)"
    )


def check_readable(state: bytes, cipher: Cipher | None) -> None:
    """Raise EncryptionKeyError unless `state` can be read with `cipher` (None: no keys)."""
    if cipher is not None:
        cipher.decrypt(state)
    elif is_encrypted(state):
        raise EncryptionKeyError(missing_key_text(key_id_of(state), None), key_id=key_id_of(state))
