"""Authentication over a real channel: tokens, JWTs, the recorded actor, analysts' view."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from incident_registry_client import (
    NO_RETRY,
    AreaKind,
    PeriodKind,
    PermissionDeniedError,
    RegistryClient,
    UnauthenticatedError,
)
from incident_registry_client.proto.incidents.v1 import (
    incident_service_pb2,
    incident_service_pb2_grpc,
)

from service.security.auth import JwtVerifier, TokenTable, hash_token
from service.security.settings import SecurityConfigError, SecuritySettings
from tests.security.conftest import ALICE_TOKEN, StartServer, role_token
from tests.support import builders as b

SECRET = "a-shared-hs256-secret-of-more-than-32-bytes"


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def report(channel: grpc.Channel, token: str, actor: str = "") -> str:
    stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
    metadata = bearer(token) + ((("x-actor", actor),) if actor else ())
    reply = stub.ReportShooting(b.shooting(), metadata=metadata, timeout=10)
    return reply.result.aggregate_id


def incident_history(channel: grpc.Channel, token: str, incident_id: str):
    stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
    return stub.GetIncident(
        incident_service_pb2.GetIncidentRequest(incident_id=incident_id),
        metadata=bearer(token),
        timeout=10,
    ).history


def rpc_error(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


# --- tokens ------------------------------------------------------------------------------


def test_the_actor_is_the_authenticated_identity_not_the_x_actor_header(token_server):
    with token_server.channel() as channel:
        incident_id = report(channel, ALICE_TOKEN, actor="someone-else")
        history = incident_history(channel, ALICE_TOKEN, incident_id)
    assert [event.metadata.actor for event in history] == ["alice"]


def test_analysts_read_histories_without_who_recorded_them(token_server):
    with token_server.channel() as channel:
        incident_id = report(channel, ALICE_TOKEN)
        as_analyst = incident_history(channel, role_token("analyst"), incident_id)
        as_commander = incident_history(channel, role_token("commander"), incident_id)
    assert [event.metadata.actor for event in as_analyst] == [""]
    assert as_analyst[0].event_type == as_commander[0].event_type
    assert [event.metadata.actor for event in as_commander] == ["alice"]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "authentication required"),
        ("Bearer not-a-known-token", "invalid bearer token"),
        (f"Bearer {ALICE_TOKEN}x", "invalid bearer token"),  # tampered
        (f"Basic {ALICE_TOKEN}", "must be 'Bearer <token>'"),
        ("Bearer ", "must be 'Bearer <token>'"),
    ],
)
def test_missing_unknown_and_malformed_tokens_are_unauthenticated(token_server, header, message):
    metadata = () if header is None else (("authorization", header),)
    with token_server.channel() as channel:
        stub = incident_service_pb2_grpc.IncidentServiceStub(channel)
        err = rpc_error(lambda: stub.ReportShooting(b.shooting(), metadata=metadata, timeout=10))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert message in err.details()
    assert ALICE_TOKEN not in err.details()


def test_the_client_library_sends_its_bearer_token(token_server):
    with RegistryClient(token_server.target, bearer_token=ALICE_TOKEN, retry=NO_RETRY) as client:
        written = client.register_gang(name="Clan T")  # alice is an investigator
        assert written.version == 1
        with pytest.raises(PermissionDeniedError, match="alice may not call"):
            client.get_area_statistics(
                area_kind=AreaKind.MUNICIPALITY, period_kind=PeriodKind.MONTH
            )
    with (
        RegistryClient(token_server.target, retry=NO_RETRY) as anonymous,
        pytest.raises(UnauthenticatedError),
    ):
        anonymous.get_head()
    tokens = iter([role_token("operator"), "wrong"])
    with RegistryClient(
        token_server.target, bearer_token=lambda: next(tokens), retry=NO_RETRY
    ) as rotating:
        assert rotating.get_head().position >= 1
        with pytest.raises(UnauthenticatedError):
            rotating.get_head()


def test_tokens_file_entries_are_checked(tmp_path):
    path = tmp_path / "tokens.json"
    good = {"identity": "bob", "roles": ["analyst"], "sha256": hash_token("t")}
    cases = {
        "not JSON": "{",
        "must be": json.dumps({"users": []}),
        "64 lowercase hex": json.dumps({"tokens": [{**good, "sha256": "t"}]}),
        "unknown roles": json.dumps({"tokens": [{**good, "roles": ["chief"]}]}),
        "identity must": json.dumps({"tokens": [{**good, "identity": ""}]}),
        "listed twice": json.dumps({"tokens": [good, {**good, "identity": "eve"}]}),
    }
    for expected, text in cases.items():
        path.write_text(text, encoding="utf-8")
        with pytest.raises(SecurityConfigError, match=expected):
            TokenTable.load(path)
    path.write_text(json.dumps({"tokens": [good]}), encoding="utf-8")
    assert TokenTable.load(path).authenticate("t").name == "bob"
    with pytest.raises(SecurityConfigError, match="cannot read"):
        TokenTable.load(tmp_path / "missing.json")


# --- JWT ---------------------------------------------------------------------------------


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "carol", "roles": ["reporter"], "iat": now, "exp": now + 600, **overrides}


@pytest.fixture
def jwt_server(secured_server: StartServer, tmp_path: Path):
    secret = tmp_path / "jwt-secret"
    secret.write_text(SECRET + "\n", encoding="utf-8")
    return secured_server(
        SecuritySettings(
            auth="jwt",
            auth_jwt_secret_file=secret,
            auth_jwt_issuer="https://idp.example",
            auth_jwt_audience="incident-registry",
        )
    )


def signed(**overrides) -> str:
    payload = claims(**{"iss": "https://idp.example", "aud": "incident-registry", **overrides})
    return jwt.encode(payload, SECRET, algorithm="HS256")


def tamper(token: str) -> str:
    header, _, signature = token.split(".")
    forged = jwt.utils.base64url_encode(json.dumps(claims(roles=["admin"])).encode()).decode()
    return f"{header}.{forged}.{signature}"


def test_a_valid_jwt_authenticates_its_subject_with_its_roles(jwt_server):
    with jwt_server.channel() as channel:
        incident_id = report(channel, signed(), actor="mallory")
        history = incident_history(channel, signed(roles=["analyst", "unknown-role"]), incident_id)
    assert [event.metadata.actor for event in history] == [""]  # an analyst's view
    with jwt_server.channel() as channel:
        history = incident_history(channel, signed(), incident_id)
    assert [event.metadata.actor for event in history] == ["carol"]


@pytest.mark.parametrize(
    ("make_token", "code", "message"),
    [
        (
            lambda: signed(exp=int(time.time()) - 3600),
            "UNAUTHENTICATED",
            "bearer token has expired",
        ),
        (lambda: tamper(signed()), "UNAUTHENTICATED", "invalid bearer token"),
        (lambda: signed(iss="https://evil.example"), "UNAUTHENTICATED", "invalid bearer token"),
        (lambda: signed(aud="another-service"), "UNAUTHENTICATED", "invalid bearer token"),
        (
            lambda: jwt.encode(claims(), "another-secret-that-is-long-enough-for-hs256"),
            "UNAUTHENTICATED",
            "invalid bearer token",
        ),
        (
            lambda: jwt.encode({k: v for k, v in claims().items() if k != "exp"}, SECRET),
            "UNAUTHENTICATED",
            "invalid bearer token",
        ),
        (
            lambda: jwt.encode(
                claims(iss="https://idp.example", aud="incident-registry"), "", "none"
            ),
            "UNAUTHENTICATED",
            "invalid bearer token",
        ),
        (lambda: signed(roles=["analyst"]), "PERMISSION_DENIED", "carol may not call"),
        (lambda: signed(roles="reporter"), "UNAUTHENTICATED", "invalid bearer token"),
    ],
    ids=["expired", "tampered", "issuer", "audience", "key", "no-exp", "alg-none", "role", "roles"],
)
def test_bad_jwts_are_refused(jwt_server, make_token, code, message):
    # Minted when the test runs, not when it is collected: a token valid for 10 minutes
    # must not have expired because the suite before it took longer.
    token = make_token()
    with jwt_server.channel() as channel:
        err = rpc_error(lambda: report(channel, token))
    assert err.code().name == code
    assert message in err.details()
    assert SECRET not in err.details()


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_jwts_signed_with_a_private_key_are_checked_with_its_public_key(tmp_path, kind):
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    public = tmp_path / "public.pem"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    verifier = JwtVerifier.load(SecuritySettings(auth="jwt", auth_jwt_public_key_file=public))
    algorithm = "RS256" if kind == "rsa" else "ES256"
    assert verifier.algorithm == algorithm
    identity = verifier.authenticate(jwt.encode(claims(), key, algorithm=algorithm))
    assert (identity.name, identity.roles, identity.via) == ("carol", {"reporter"}, "jwt")
    with pytest.raises(Exception, match="invalid bearer token"):
        # The same claims as an HS256 token "signed" with the public key: refused.
        verifier.authenticate(jwt.encode(claims(), SECRET, algorithm="HS256"))


def test_a_short_jwt_secret_is_refused(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("short", encoding="utf-8")
    with pytest.raises(SecurityConfigError, match="fewer than 32 bytes"):
        JwtVerifier.load(SecuritySettings(auth="jwt", auth_jwt_secret_file=secret))
