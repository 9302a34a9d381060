"""Who is calling: bearer tokens (hashed in a file), JWTs, or client certificates.

`CallGuard.admit` is called by the registration-time wrapper of every registry RPC
(`service.api.handlers`) when authentication is on. It answers UNAUTHENTICATED for missing,
malformed, unknown, expired or tampered credentials — with a message that names the problem
but never echoes a credential — and PERMISSION_DENIED for a valid identity whose roles
`service.security.roles.RPC_ROLES` does not allow. Nothing here logs: the wrapper's access
log line records the identity's name and the status, never a credential.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.security.roles import ROLES, known_roles
from service.security.settings import SecurityConfigError, SecuritySettings
from service.security.tls import read_setting_file, server_credentials

AUTHORIZATION_HEADER = "authorization"
"""The metadata key of bearer tokens (`authorization: Bearer <token>`)."""

MAX_TOKEN_CHARS = 8192
"""Longer bearer tokens are refused unread."""

JWT_LEEWAY_SECONDS = 30
"""Clock skew allowed when checking a JWT's exp, nbf and iat."""

MIN_JWT_SECRET_BYTES = 32
"""The shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash's size)."""

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Identity:
    """An authenticated caller: its name (recorded as the actor of its events) and roles."""

    name: str
    roles: frozenset[str]
    via: str
    """How it was authenticated: `token`, `jwt` or `certificate`."""


_call_identity: ContextVar[Identity | None] = ContextVar("call_identity", default=None)


def call_identity() -> Identity | None:
    """The identity of the call being served, None when authentication is off."""
    return _call_identity.get()


def set_call_identity(identity: Identity) -> None:
    """Remember the identity of the call being served (each call runs in its own context)."""
    _call_identity.set(identity)


class AccessDenied(Exception):  # noqa: N818 - a refusal, answered with a status, not a bug
    """A call refused: UNAUTHENTICATED or PERMISSION_DENIED, with a message safe to return."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _unauthenticated(message: str) -> AccessDenied:
    return AccessDenied(grpc.StatusCode.UNAUTHENTICATED, message)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest of a bearer token, as stored in INCIDENTS_AUTH_TOKENS_FILE."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _load_json(path: Path, setting: str) -> Any:
    raw = read_setting_file(path, setting)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        msg = f"{setting}: {path} is not JSON"
        raise SecurityConfigError(msg) from None


def _roles(value: object, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(role, str) for role in value):
        msg = f"{where}: roles must be a list of role names"
        raise SecurityConfigError(msg)
    unknown = sorted(set(value) - set(ROLES))
    if unknown:
        msg = f"{where}: unknown roles {unknown}; the roles are {', '.join(ROLES)}"
        raise SecurityConfigError(msg)
    return frozenset(value)


def _entries(document: object, key: str, path: Path, setting: str) -> list[dict[str, Any]]:
    entries = document.get(key) if isinstance(document, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        msg = f'{setting}: {path} must be {{"{key}": [{{...}}, ...]}}'
        raise SecurityConfigError(msg)
    return entries


def _identity_name(entry: Mapping[str, Any], where: str) -> str:
    name = entry.get("identity")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        msg = f"{where}: identity must be a non-empty name of at most 200 characters"
        raise SecurityConfigError(msg)
    return name.strip()


class TokenTable:
    """Bearer tokens known by their SHA-256 digests (INCIDENTS_AUTH_TOKENS_FILE).

    The file is JSON: `{"tokens": [{"identity": "alice", "roles": ["reporter"],
    "sha256": "<64 hex digits>"}]}`. Raw tokens are never stored; a presented token's digest
    is compared with every entry's using `hmac.compare_digest`.
    """

    def __init__(self, entries: Sequence[tuple[bytes, Identity]]) -> None:
        self._entries = tuple(entries)

    @classmethod
    def load(cls, path: Path) -> TokenTable:
        """Read and check a tokens file."""
        setting = "INCIDENTS_AUTH_TOKENS_FILE"
        entries: list[tuple[bytes, Identity]] = []
        seen: set[str] = set()
        for index, entry in enumerate(_entries(_load_json(path, setting), "tokens", path, setting)):
            where = f"{setting}: {path}: tokens[{index}]"
            digest = entry.get("sha256")
            if not isinstance(digest, str) or not _SHA256_HEX.match(digest):
                msg = f"{where}: sha256 must be 64 lowercase hex digits (the token's digest)"
                raise SecurityConfigError(msg)
            if digest in seen:
                msg = f"{where}: the same token digest is listed twice"
                raise SecurityConfigError(msg)
            seen.add(digest)
            identity = Identity(
                _identity_name(entry, where), _roles(entry.get("roles"), where), "token"
            )
            entries.append((bytes.fromhex(digest), identity))
        return cls(entries)

    def authenticate(self, token: str) -> Identity:
        """The identity a token was issued to; AccessDenied when no entry matches."""
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        found: Identity | None = None
        for known, identity in self._entries:
            # Every entry is compared, so that the time taken does not say which one matched.
            if hmac.compare_digest(known, digest):
                found = identity
        if found is None:
            raise _unauthenticated("invalid bearer token")
        return found


_CURVE_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


class JwtVerifier:
    """JSON Web Tokens signed with a shared secret (HS256) or a private key (RS256, ES256).

    `exp` and `sub` are required; `iss` and `aud` are checked when INCIDENTS_AUTH_JWT_ISSUER
    and _AUDIENCE are set; the identity is `sub` and the roles the `roles` claim (a list;
    names that are not roles of the registry are ignored). Only the algorithm that fits the
    configured key is accepted, so a token cannot choose how it is checked.
    """

    def __init__(
        self, key: Any, algorithm: str, *, issuer: str | None, audience: str | None
    ) -> None:
        self._key = key
        self._algorithm = algorithm
        self._issuer = issuer
        self._audience = audience

    @property
    def algorithm(self) -> str:
        """The one signing algorithm accepted."""
        return self._algorithm

    @classmethod
    def load(cls, settings: SecuritySettings) -> JwtVerifier:
        """The verifier configured by INCIDENTS_AUTH_JWT_*."""
        issuer, audience = settings.auth_jwt_issuer, settings.auth_jwt_audience
        if settings.auth_jwt_secret_file is not None:
            secret = read_setting_file(
                settings.auth_jwt_secret_file, "INCIDENTS_AUTH_JWT_SECRET_FILE"
            ).strip()
            if len(secret) < MIN_JWT_SECRET_BYTES:
                msg = (
                    f"INCIDENTS_AUTH_JWT_SECRET_FILE: {settings.auth_jwt_secret_file} holds "
                    f"fewer than {MIN_JWT_SECRET_BYTES} bytes: use a longer secret"
                )
                raise SecurityConfigError(msg)
            return cls(secret, "HS256", issuer=issuer, audience=audience)
        path = settings.auth_jwt_public_key_file
        if path is None:
            msg = "INCIDENTS_AUTH=jwt needs a secret or a public key file"
            raise SecurityConfigError(msg)
        pem = read_setting_file(path, "INCIDENTS_AUTH_JWT_PUBLIC_KEY_FILE")
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError):
            msg = f"INCIDENTS_AUTH_JWT_PUBLIC_KEY_FILE: {path} is not a PEM public key"
            raise SecurityConfigError(msg) from None
        if isinstance(key, rsa.RSAPublicKey):
            algorithm = "RS256"
        elif isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _CURVE_ALGORITHMS:
            algorithm = _CURVE_ALGORITHMS[key.curve.name]
        else:
            msg = f"INCIDENTS_AUTH_JWT_PUBLIC_KEY_FILE: {path}: use an RSA or P-256/384/521 key"
            raise SecurityConfigError(msg)
        return cls(key, algorithm, issuer=issuer, audience=audience)

    def authenticate(self, token: str) -> Identity:
        """The identity a valid token names; AccessDenied otherwise."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                issuer=self._issuer,
                audience=self._audience,
                leeway=JWT_LEEWAY_SECONDS,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self._audience is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise _unauthenticated("bearer token has expired") from None
        except jwt.PyJWTError:
            raise _unauthenticated("invalid bearer token") from None
        subject = claims.get("sub")
        roles = claims.get("roles", [])
        if (
            not isinstance(subject, str)
            or not subject.strip()
            or len(subject) > 200
            or not isinstance(roles, list)
            or not all(isinstance(role, str) for role in roles)
        ):
            raise _unauthenticated("invalid bearer token")
        return Identity(subject.strip(), known_roles(roles), "jwt")


class CertificateRoles:
    """Roles of client-certificate identities (INCIDENTS_AUTH_CERT_ROLES_FILE).

    The file is JSON: `{"certificates": [{"identity": "ops-1.registry.internal",
    "roles": ["operator"]}]}`. A certificate's identity is its subject common name, or else
    the first of its subject alternative names that the file lists.
    """

    def __init__(self, roles: Mapping[str, frozenset[str]]) -> None:
        self._roles = dict(roles)

    @classmethod
    def load(cls, path: Path) -> CertificateRoles:
        """Read and check a certificate roles file."""
        setting = "INCIDENTS_AUTH_CERT_ROLES_FILE"
        roles: dict[str, frozenset[str]] = {}
        for index, entry in enumerate(
            _entries(_load_json(path, setting), "certificates", path, setting)
        ):
            where = f"{setting}: {path}: certificates[{index}]"
            name = _identity_name(entry, where)
            if name in roles:
                msg = f"{where}: {name!r} is listed twice"
                raise SecurityConfigError(msg)
            roles[name] = _roles(entry.get("roles"), where)
        return cls(roles)

    def identify(self, auth_context: Mapping[str, Iterable[bytes]]) -> Identity | None:
        """The identity of the verified client certificate, None when it is not listed."""
        names = [
            *auth_context.get("x509_common_name", ()),
            *auth_context.get("x509_subject_alternative_name", ()),
        ]
        for raw in names:
            name = raw.decode("utf-8", "replace")
            roles = self._roles.get(name)
            if roles is not None:
                return Identity(name, roles, "certificate")
        return None


TokenCheck = Callable[[str], Identity]


class CallGuard:
    """Authenticates and authorizes each call of the registry's RPCs.

    A bearer token, when sent, decides; without one, a client certificate listed in the
    certificate roles file does (mutual TLS only). Everything else is UNAUTHENTICATED.
    """

    def __init__(
        self, tokens: TokenCheck | None = None, certificates: CertificateRoles | None = None
    ) -> None:
        if tokens is None and certificates is None:
            msg = "a CallGuard needs a token check, certificate roles, or both"
            raise ValueError(msg)
        self._tokens = tokens
        self._certificates = certificates

    def authenticate(
        self, headers: Mapping[str, str], context: grpc.aio.ServicerContext[Any, Any]
    ) -> Identity:
        """Who is calling; AccessDenied (UNAUTHENTICATED) when that cannot be established."""
        header = headers.get(AUTHORIZATION_HEADER)
        if header is not None:
            scheme, _, token = header.strip().partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
                raise _unauthenticated("the authorization header must be 'Bearer <token>'")
            if self._tokens is None:
                raise _unauthenticated(
                    "this server does not accept bearer tokens: present a client certificate"
                )
            return self._tokens(token)
        if self._certificates is not None:
            identity = self._certificates.identify(context.auth_context())
            if identity is not None:
                return identity
            if self._tokens is None:
                raise _unauthenticated("the client certificate's identity is not registered")
        raise _unauthenticated(
            "authentication required: send an 'authorization: Bearer <token>' header"
        )

    def admit(
        self,
        method: str,
        allowed: frozenset[str],
        headers: Mapping[str, str],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> Identity:
        """The caller's identity if it may call `method`; AccessDenied otherwise."""
        identity = self.authenticate(headers, context)
        if not identity.roles & allowed:
            needed = ", ".join(role for role in ROLES if role in allowed)
            raise AccessDenied(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{identity.name} may not call {method}: it needs one of the roles {needed}",
            )
        return identity


@dataclass(frozen=True)
class ServerSecurity:
    """What `start_server` secures a server with: TLS credentials and the call guard."""

    credentials: grpc.ServerCredentials | None = None
    guard: CallGuard | None = None


def build_guard(settings: SecuritySettings) -> CallGuard | None:
    """The call guard INCIDENTS_AUTH* configure (files read now), None when auth is off."""
    mode = settings.auth_mode
    if mode == "none":
        return None
    certificates = (
        CertificateRoles.load(settings.auth_cert_roles_file)
        if settings.auth_cert_roles_file is not None
        else None
    )
    tokens: TokenCheck | None = None
    if mode == "tokens":
        assert settings.auth_tokens_file is not None, "checked by security_from_env"
        tokens = TokenTable.load(settings.auth_tokens_file).authenticate
    elif mode == "jwt":
        tokens = JwtVerifier.load(settings).authenticate
    return CallGuard(tokens, certificates)


def build_server_security(settings: SecuritySettings) -> ServerSecurity:
    """TLS credentials and call guard from the settings; SecurityConfigError when a file is
    missing or wrong."""
    return ServerSecurity(credentials=server_credentials(settings), guard=build_guard(settings))
