"""Warning listings from the warning table's indexes (the API's `WarningListings` port).

Every listing is one Query per index partition of the caller's scope, merged in the listing's order; nothing
scans the table. A partition is read a page at a time (the first page small, the next ones the caller's page size)
and only as far as the merge consumes it, so what a page reads is proportional to its size, whatever the table's
history:

| scope | newest first (`raised_at` desc) | open, most urgent first (`urgency` asc) |
|---|---|---|
| an enterprise | `by_enterprise` | `open_by_enterprise` |
| sectors (regulator; everything = all six) | `by_sector`, one partition per sector | `open_by_sector` |
| areas | `by_area` + `by_other_area`, per area, and `by_other_area`=`*` | `open_by_area` + `open_by_other_area` |

A warning touches up to twenty areas but an index key holds one value: the first area goes to `by_area`, the second
to `by_other_area`, and a warning with more than two areas has `*` in its second slot (`dynamo.area_slots`); area
listings read that partition too and keep what touches the caller's areas (the caller filters by scope anyway). A
warning in two of the caller's partitions comes out of the merge twice in a row and is listed once.

Within a partition, items with the same sort key come out of DynamoDB in no set order: they are sorted by warning
id, so a listing's order is total — (sort key, warning id) — and a cursor (that pair) resumes it exactly.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator
from typing import Any

from pynamodb.attributes import UnicodeAttribute
from pynamodb.indexes import GlobalSecondaryIndex

from chalicelib.adapters.audit_store import public_record
from chalicelib.adapters.dynamo import MORE_AREAS, WarningItem, record_from_item
from chalicelib.adapters.index_pages import query_pages
from chalicelib.domain.access import Scope, ScopeKind
from chalicelib.domain.levels import Sector
from chalicelib.domain.warnings import WarningRecord
from chalicelib.services.ports import Key

Entry = tuple[tuple[str, str], WarningRecord]  # ((sort key, warning id), record)
Partition = tuple[GlobalSecondaryIndex[WarningItem], str]


class DynamoWarningListings:
    """`WarningListings` over the warning table's indexes (module docstring)."""

    def newest_first(self, scope: Scope, after: Key | None, page_size: int) -> Iterator[tuple[WarningRecord, Key]]:
        partitions = _newest_partitions(scope)
        position = (after["raised_at"], after["warning_id"]) if after else None
        return _listing(partitions, "raised_at", descending=True, after=position, page_size=page_size)

    def most_urgent_first(
        self, scope: Scope, after: Key | None, page_size: int
    ) -> Iterator[tuple[WarningRecord, Key]]:
        partitions = _urgent_partitions(scope)
        position = (after["urgency"], after["warning_id"]) if after else None
        return _listing(partitions, "urgency", descending=False, after=position, page_size=page_size)


def _sectors(scope: Scope) -> Iterable[Sector]:
    return Sector if scope.kind is ScopeKind.ALL else scope.sectors


def _newest_partitions(scope: Scope) -> list[Partition]:
    if scope.kind is ScopeKind.ENTERPRISE:
        return [(WarningItem.by_enterprise, scope.enterprise_id or "")]
    if scope.kind is ScopeKind.AREAS:
        return _area_partitions(scope.area_codes, WarningItem.by_area, WarningItem.by_other_area)
    return [(WarningItem.by_sector, sector.value) for sector in dict.fromkeys(_sectors(scope))]


def _urgent_partitions(scope: Scope) -> list[Partition]:
    if scope.kind is ScopeKind.ENTERPRISE:
        return [(WarningItem.open_by_enterprise, scope.enterprise_id or "")]
    if scope.kind is ScopeKind.AREAS:
        return _area_partitions(scope.area_codes, WarningItem.open_by_area, WarningItem.open_by_other_area)
    return [(WarningItem.open_by_sector, sector.value) for sector in dict.fromkeys(_sectors(scope))]


def _area_partitions(
    areas: Iterable[str], first: GlobalSecondaryIndex[WarningItem], other: GlobalSecondaryIndex[WarningItem]
) -> list[Partition]:
    codes = [code for code in dict.fromkeys(areas) if code and code != MORE_AREAS]
    if not codes:
        return []
    return [(index, code) for code in codes for index in (first, other)] + [(other, MORE_AREAS)]


def _listing(
    partitions: list[Partition],
    sort_attribute: str,
    *,
    descending: bool,
    after: tuple[str, str] | None,
    page_size: int,
) -> Iterator[tuple[WarningRecord, Key]]:
    if not partitions:
        return
    first_page = max(2, math.ceil(page_size / len(partitions)) + 1)
    streams = [
        _partition(index, value, sort_attribute, descending, after, first_page, page_size)
        for index, value in partitions
    ]
    previous: str | None = None
    for (sort_value, warning_id), record in heapq.merge(*streams, key=lambda entry: entry[0], reverse=descending):
        if warning_id == previous:
            continue  # the same warning in two of the caller's partitions (two of its areas)
        previous = warning_id
        yield record, {sort_attribute: sort_value, "warning_id": warning_id}


def _partition(
    index: GlobalSecondaryIndex[WarningItem],
    hash_value: str,
    sort_attribute: str,
    descending: bool,
    after: tuple[str, str] | None,
    first_page: int,
    page_size: int,
) -> Iterator[Entry]:
    """One partition in (sort key, warning id) order, strictly after `after`."""
    run: list[Entry] = []
    for item in _items(index, hash_value, sort_attribute, descending, after, first_page, page_size):
        position = (str(getattr(item, sort_attribute)), str(item.warning_id))
        if after is not None and (position >= after if descending else position <= after):
            continue
        if run and run[0][0][0] != position[0]:
            yield from sorted(run, key=lambda entry: entry[0], reverse=descending)
            run = []
        run.append((position, public_record(record_from_item(item))))
    yield from sorted(run, key=lambda entry: entry[0], reverse=descending)


def _items(
    index: GlobalSecondaryIndex[WarningItem],
    hash_value: str,
    sort_attribute: str,
    descending: bool,
    after: tuple[str, str] | None,
    first_page: int,
    page_size: int,
) -> Iterator[WarningItem]:
    """The partition's items from the cursor's sort key on (inclusive: ties are sorted out by the caller), one
    Query page at a time, fetched only when the previous page is consumed."""
    sort_key: Any = getattr(type(index), sort_attribute)
    assert isinstance(sort_key, UnicodeAttribute)
    condition = None
    if after is not None:
        condition = sort_key <= after[0] if descending else sort_key >= after[0]
    return query_pages(index, hash_value, condition, descending, first_page, page_size)
