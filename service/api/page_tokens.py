"""Opaque keyset page tokens, bound to the selection (filters) they were issued for."""

from __future__ import annotations

import base64
import binascii
import json

from service.api.fields import FieldReader

PageKey = tuple[int, str]
"""Where a page ended: a time in microseconds and an id, the listing's sort key."""


def encode_page_token(key: PageKey, bound: str) -> str:
    """A token for the page after `key`, valid only with the selection fingerprint `bound`."""
    data = {"b": bound, "t": key[0], "k": key[1]}
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(
    token: str, bound: str, reader: FieldReader, *, other_selection: str
) -> PageKey | None:
    """The key a token continues after (None without a token, or when it is refused).

    A token that is not ours, or was issued for another selection (`other_selection` says
    so), is recorded as a `page_token` violation.
    """
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        key, issued_for = (data["t"], data["k"]), data["b"]
        ok = isinstance(key[0], int) and isinstance(key[1], str)
    except (ValueError, TypeError, KeyError, binascii.Error):
        ok, issued_for, key = False, "", (0, "")
    if not reader.check(ok, "page_token", "is not a page token this service issued"):
        return None
    if not reader.check(issued_for == bound, "page_token", other_selection):
        return None
    return key


def read_page_request(
    page_size: int,
    token: str,
    bound: str,
    reader: FieldReader,
    *,
    max_size: int,
    default_size: int,
    other_selection: str,
) -> tuple[PageKey | None, int]:
    """Check a listing's `page_size` and `page_token`; return the key to continue after and
    the number of rows to return. Violations are recorded in `reader`."""
    reader.check(
        0 <= page_size <= max_size,
        "page_size",
        f"must be from 1 to {max_size} (0: {default_size})",
    )
    after = decode_page_token(token, bound, reader, other_selection=other_selection)
    return after, page_size or default_size
