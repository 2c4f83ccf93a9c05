"""Listing cursors: the position a listing resumes after (its index key), as an opaque URL-safe string."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from chalicelib.domain.errors import ValidationFailed

T = TypeVar("T")

POSITION_KEY = ("at",)
"""The key of a cursor over one index order whose sort key is unique (`{sort value}#{id}`): the position."""


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


def examined_per_page(limit: int) -> int:
    """How many index entries a page looks at, at most, before it answers (short, with a cursor): filters that no
    index serves (level, some statuses, overdue=false) cannot make a page read without bound."""
    return 5 * limit + 50


@dataclass(frozen=True)
class ListingPage(Generic[T]):
    items: list[T] = field(default_factory=list)
    next_cursor: str | None = None


def take_page(listing: Iterable[tuple[T, str]], wanted: Callable[[T], bool], limit: int) -> ListingPage[T]:
    """Up to `limit` wanted entries of a listing of (entry, position) and the cursor of the next page: set when one
    more wanted entry exists, or when the page stopped after `examined_per_page` entries (then the page may be
    short, even empty: the caller follows the cursor)."""
    items: list[T] = []
    last: str | None = None
    budget = examined_per_page(limit)
    for examined, (entry, position) in enumerate(listing, start=1):
        if wanted(entry):
            if len(items) == limit:
                return ListingPage(items, encode_cursor({"at": last or ""}))
            items.append(entry)
        last = position
        if examined >= budget:
            return ListingPage(items, encode_cursor({"at": last}))
    return ListingPage(items)


def position_after(cursor: str | None) -> str | None:
    """The position a `take_page` cursor resumes after; 422 `invalid_cursor` for anything else."""
    after = decode_cursor(cursor, POSITION_KEY)
    return None if after is None else after["at"]
