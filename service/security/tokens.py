"""`python -m service.security.tokens`: make a bearer token, or hash one, for the tokens file.

    python -m service.security.tokens new --identity alice --role reporter
    printf %s "$TOKEN" | python -m service.security.tokens hash --identity alice --role reporter

`new` prints a fresh random token (hand it to its owner; it is not stored anywhere) and the
entry to add to INCIDENTS_AUTH_TOKENS_FILE's "tokens" list; `hash` reads a token on standard
input (never from the command line, which other users and shell histories see) and prints the
entry. An entry holds the token's SHA-256 digest, never the token.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from collections.abc import Sequence

from service.security.auth import hash_token
from service.security.roles import ROLES

TOKEN_BYTES = 32
"""Random bytes in a new token (256 bits), URL-safe base64 encoded."""


def entry(token: str, identity: str, roles: Sequence[str]) -> dict[str, object]:
    """The tokens file entry of `token`."""
    return {"identity": identity, "roles": list(roles), "sha256": hash_token(token)}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 when an entry was printed, 2 on a usage error."""
    parser = argparse.ArgumentParser(
        prog="python -m service.security.tokens",
        description="Make or hash a bearer token for INCIDENTS_AUTH_TOKENS_FILE.",
    )
    parser.add_argument("action", choices=("new", "hash"), help="new token, or hash stdin's")
    parser.add_argument("--identity", required=True, help="recorded as the actor of its writes")
    parser.add_argument(
        "--role", action="append", choices=ROLES, required=True, help="a role (repeatable)"
    )
    args = parser.parse_args(argv)
    if args.action == "new":
        token = secrets.token_urlsafe(TOKEN_BYTES)
        print(f"token: {token}")  # noqa: T201
        print(f"entry: {json.dumps(entry(token, args.identity, args.role))}")  # noqa: T201
        return 0
    token = sys.stdin.read().strip()
    if not token:
        parser.error("no token on standard input")
    print(json.dumps(entry(token, args.identity, args.role)))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
