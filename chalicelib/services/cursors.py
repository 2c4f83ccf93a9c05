"""Listing cursors: the position a listing resumes after (its index key), as an opaque URL-safe string."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from chalicelib.domain.errors import ValidationFailed


def encode_cursor(key: Mapping[str, str]) -> str:
    raw = json.dumps(dict(key), separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None, fields: tuple[str, ...]) -> dict[str, str] | None:
    """The key a cursor carries, with exactly `fields` as non-empty printable strings; else 422 `invalid_cursor`
    (whatever the text: deep nesting and escapes of lone surrogates included)."""
    if cursor is None:
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, RecursionError) as exc:
        raise ValidationFailed("invalid_cursor", "分页游标无效") from exc
    if (
        not isinstance(body, dict)
        or set(body) != set(fields)
        or not all(isinstance(value, str) and 0 < len(value) <= 128 for value in body.values())
        or not all(value.isprintable() and value.isascii() for value in body.values())
    ):
        raise ValidationFailed("invalid_cursor", "分页游标无效")
    return {str(key): str(value) for key, value in body.items()}
