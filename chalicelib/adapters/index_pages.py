"""Listings over the registry table's `gsi1`, whose sort keys are unique per subject (`{sort value}#{id}`):
several partitions merged in sort-key order, each read a Query page at a time and only as far as the merge consumes
it, so a page of a listing reads about its size whatever a partition's history (docs/api.md "Listings and
indexes")."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Sequence
from typing import Any


def merged(
    index: Any, partitions: Sequence[str], *, descending: bool, after: str | None, page_size: int
) -> Iterator[Any]:
    """The items of the `gsi1` partitions in sort-key order (newest or highest first when `descending`), strictly
    after the position `after`; an item in two partitions (the same sort key) once."""
    values = list(dict.fromkeys(partitions))
    if not values:
        return
    first_page = max(2, math.ceil(page_size / len(values)) + 1)
    streams = [_partition(index, value, descending, after, first_page, page_size) for value in values]
    previous: str | None = None
    for item in heapq.merge(*streams, key=lambda found: str(found.gsi1sk), reverse=descending):
        if item.gsi1sk == previous:
            continue
        previous = item.gsi1sk
        yield item


def _partition(
    index: Any, hash_value: str, descending: bool, after: str | None, first_page: int, page_size: int
) -> Iterator[Any]:
    sort_key: Any = type(index).gsi1sk
    condition = None
    if after is not None:
        condition = sort_key < after if descending else sort_key > after
    return query_pages(index, hash_value, condition, descending, first_page, page_size)


def query_pages(
    index: Any, hash_value: str, condition: Any, descending: bool, first_page: int, page_size: int
) -> Iterator[Any]:
    """One index partition's items in sort-key order, one Query page at a time (the first of `first_page` items,
    then `page_size`), the next fetched only when the previous one is consumed."""
    start: dict[str, dict[str, Any]] | None = None
    size = first_page
    while True:
        page = index.query(
            hash_value,
            condition,
            scan_index_forward=not descending,
            limit=size,
            page_size=size,
            last_evaluated_key=start,
        )
        yield from page
        start = page.last_evaluated_key
        if not start:
            return
        size = page_size


def chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    """The items in lists of `size` (the last one shorter): a page's worth of pointers resolved in one batch."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
