"""A speed patch for moto's DynamoDB and a seedable moto server, for the full-size evaluation bench only.

moto 5 answers every Query (base table or index) by sorting and walking ALL the items of its table
(`Table.query`: `for item in self.all_items()`, where `all_items` sorts the whole table on each call), and every
Scan page by sorting the table again: a run of Q pages over a table of N items costs O(Q x N log N) in moto's
process, which is moto's cost, not DynamoDB's. `install()` keeps, per table and per write generation:
- the table's sorted item list (what `all_items` returns), built once after the last write;
- a partition index: for the key attributes a Query names, a dict from their values to the items holding them,
  each list in `all_items` order;
and `Item.project` (a ProjectionExpression) converts an item to plain JSON once, not once per projected name.
A Query then runs moto's own `Table.query` over its partition's items (handed to it as `all_items` for that call,
thread-locally), so its filtering, sorting, paging, projection and counts are moto's code on a subset that holds
every item moto's walk would have kept, in the same order: same answers (tests/integration/test_moto_speed.py
compares them with unpatched moto's). Any write to a table (put, delete, update; PartiQL and imports for every
table) starts a new generation, so nothing stale is served.

`python -m bench.moto_speed PORT [--plain]` runs moto's server with the patch (`--plain`: without), and takes
commands on stdin, one a line: `load PATH` puts the items of the BatchWriteItem request bodies in PATH (JSON, one
a line, as botocore would have sent them) straight into moto's backend through `put_item` (what moto's
BatchWriteItem handler calls), then answers `loaded N` on stdout. It is how the bench seeds 370,000 items in
minutes rather than an hour over HTTP; the evaluation's reads still go over HTTP through the real adapters.
Never used by the tests' fixtures or the runtime.
"""

from __future__ import annotations

import inspect
import json
import sys
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import Item, serializer
from moto.dynamodb.models.table import Table

_ORIGINAL_QUERY = Table.query
_ORIGINAL_ALL_ITEMS = Table.all_items
_ORIGINAL_PUT = Table.put_item
_ORIGINAL_DELETE = Table.delete_item
_ORIGINAL_UPDATE = DynamoDBBackend.update_item
_ORIGINAL_PROJECT = Item.project
_EVERY_TABLE_WRITERS = ("execute_statement", "batch_execute_statement", "execute_transaction", "import_table")
_ORIGINALS = {name: getattr(DynamoDBBackend, name) for name in _EVERY_TABLE_WRITERS}
_QUERY_SIGNATURE = inspect.signature(_ORIGINAL_QUERY)

_generations = {"every table": 0}
_subset = threading.local()  # (table, items) for the Query this thread is answering


def install() -> None:
    _generations["every table"] += 1  # writes while not installed were not counted
    Table.query = _query  # type: ignore[method-assign]
    Table.all_items = _all_items  # type: ignore[method-assign]
    Table.put_item = _put_item  # type: ignore[method-assign]
    Table.delete_item = _delete_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = _update_item  # type: ignore[method-assign]
    Item.project = _project  # type: ignore[method-assign]
    for name in _EVERY_TABLE_WRITERS:
        setattr(DynamoDBBackend, name, _writing_every_table(_ORIGINALS[name]))


def uninstall() -> None:
    _generations["every table"] += 1
    Table.query = _ORIGINAL_QUERY  # type: ignore[method-assign]
    Table.all_items = _ORIGINAL_ALL_ITEMS  # type: ignore[method-assign]
    Table.put_item = _ORIGINAL_PUT  # type: ignore[method-assign]
    Table.delete_item = _ORIGINAL_DELETE  # type: ignore[method-assign]
    DynamoDBBackend.update_item = _ORIGINAL_UPDATE  # type: ignore[method-assign]
    Item.project = _ORIGINAL_PROJECT  # type: ignore[method-assign]
    for name, original in _ORIGINALS.items():
        setattr(DynamoDBBackend, name, original)


def _generation(table: Table) -> tuple[int, int]:
    return _generations["every table"], int(table.__dict__.get("_bench_generation", 0))


def _written(table: Table) -> None:
    table.__dict__["_bench_generation"] = int(table.__dict__.get("_bench_generation", 0)) + 1


def _put_item(self: Table, *args: Any, **kwargs: Any) -> Any:
    try:
        return _ORIGINAL_PUT(self, *args, **kwargs)
    finally:
        _written(self)


def _delete_item(self: Table, *args: Any, **kwargs: Any) -> Any:
    try:
        return _ORIGINAL_DELETE(self, *args, **kwargs)
    finally:
        _written(self)


def _update_item(self: DynamoDBBackend, table_name: str, *args: Any, **kwargs: Any) -> Any:
    """moto updates the stored item in place (no put): the table's generation moves here."""
    try:
        return _ORIGINAL_UPDATE(self, table_name, *args, **kwargs)
    finally:
        if table_name in self.tables:
            _written(self.tables[table_name])


def _writing_every_table(original: Callable[..., Any]) -> Callable[..., Any]:
    def writing(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        finally:
            _generations["every table"] += 1

    return writing


def _sorted_items(table: Table) -> list[Item]:
    generation = _generation(table)
    cached = table.__dict__.get("_bench_sorted")
    if cached is not None and cached[0] == generation:
        return cached[1]  # type: ignore[no-any-return]
    items = _ORIGINAL_ALL_ITEMS(table)
    table.__dict__["_bench_sorted"] = (generation, items)
    table.__dict__["_bench_partitions"] = (generation, {})
    return items


def _all_items(self: Table) -> list[Item]:
    subset = getattr(_subset, "items", None)
    if subset is not None and subset[0] is self:
        return list(subset[1])
    return list(_sorted_items(self))


def _partitions(table: Table, names: tuple[str, ...] | None) -> dict[Hashable, list[Item]]:
    """The table's items grouped by the values of `names` (None: the table's hash key), in `all_items` order."""
    items = _sorted_items(table)
    generation, by_names = table.__dict__["_bench_partitions"]
    if generation != _generation(table):
        return _partitions(table, names)  # written meanwhile
    if names not in by_names:
        grouped: dict[Hashable, list[Item]] = {}
        for item in items:
            if isinstance(item, Item):
                try:
                    grouped.setdefault(_partition_key(item, names), []).append(item)
                except TypeError:  # a map or list under a key's name: never equal to a key value
                    continue
        by_names[names] = grouped
    return by_names[names]  # type: ignore[no-any-return]


def _partition_key(item: Item, names: tuple[str, ...] | None) -> Hashable:
    if names is None:
        return item.hash_key
    return tuple(item.attrs.get(name) for name in names)


def _query(self: Table, *args: Any, **kwargs: Any) -> Any:
    call = _QUERY_SIGNATURE.bind(self, *args, **kwargs).arguments
    if call.get("index_name"):
        conditions = dict(call.get("hash_key_conditions") or ())  # what moto's walk compares, by name
        if not conditions:
            return _ORIGINAL_QUERY(self, *args, **kwargs)
        names = tuple(sorted(conditions))
        wanted: Hashable = tuple(conditions[name] for name in names)
        partition = _partitions(self, names).get(wanted, [])
    else:
        if call.get("hash_key") is None:
            return _ORIGINAL_QUERY(self, *args, **kwargs)
        partition = _partitions(self, None).get(call["hash_key"], [])
    _subset.items = (self, partition)
    try:
        return _ORIGINAL_QUERY(self, *args, **kwargs)
    finally:
        _subset.items = None


def _project(self: Item, projection_expressions: list[list[str]]) -> Item:
    """moto's `Item.project` converts the whole item to plain JSON once per projected name (18 for the
    evaluation's reads): for top-level names, once in all; nested paths and list elements keep moto's code."""
    if not all(len(path) == 1 and "[" not in path[0] for path in projection_expressions):
        return _ORIGINAL_PROJECT(self, projection_expressions)
    plain = self.to_regular_json()
    kept = {name: plain[name] for (name,) in projection_expressions if name in plain}
    return Item(hash_key=self.hash_key, range_key=self.range_key, attrs=serializer.serialize(kept)["M"])


def _backend_with(table_name: str) -> DynamoDBBackend:
    for regions in dynamodb_backends.values():
        for backend in regions.values():
            if table_name in backend.tables:
                return backend
    raise KeyError(table_name)


def load(path: str) -> int:
    """Put the items of the BatchWriteItem bodies in `path` (one JSON body a line) into moto's backend."""
    count = 0
    backends: dict[str, DynamoDBBackend] = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            for table_name, requests in json.loads(line)["RequestItems"].items():
                if table_name not in backends:
                    backends[table_name] = _backend_with(table_name)
                for request in requests:
                    backends[table_name].put_item(table_name, request["PutRequest"]["Item"])
                    count += 1
    return count


def _commands() -> Iterator[tuple[str, str]]:
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        yield command, argument


def main() -> None:
    from moto.server import ThreadedMotoServer

    if "--plain" not in sys.argv:
        install()
    server = ThreadedMotoServer("127.0.0.1", int(sys.argv[1]), verbose=False)
    server.start()
    for command, argument in _commands():
        if command == "load":
            print(f"loaded {load(argument)}", flush=True)
    server.stop()


if __name__ == "__main__":
    main()
