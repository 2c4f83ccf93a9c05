"""The online-time ledger's storage (docs/offline-watch.md "The online ledger"), in the warning-event table:

- `ONLINE#{enterprise}` / `day * 2**40 + device_key(device)`: one device's recorded offline periods within one
  local day (`[[start, end], ...]`, compact JSON), written when an outage ends (read, merged, put: the same period
  twice is one). An enterprise's days of a period are one range query; no TTL (the evaluation reads years).
  The table's `ledger_by_day` index (hash `day`, range `seq`; only these items and the offline records carry
  `day`) lists one day's outages of every enterprise: an evaluation run reads a month in 31 queries.

And `DynamoDeviceDirectory`, the registry's listings the ledger and the device-status listing read (enterprises
from the registry index, an enterprise's devices from its partition of the index, named devices by key).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from chalicelib.adapters import aws_clients
from chalicelib.adapters.dynamo import RegistryItem
from chalicelib.domain.presence import Window
from chalicelib.domain.registry import DeviceRegistration, Enterprise
from chalicelib.settings import Settings

DEVICE_KEY_BITS = 40
T = TypeVar("T")


class OutageDayItem(Model):
    class Meta:
        table_name = "unbound"

    warning_id = UnicodeAttribute(hash_key=True)  # ONLINE#{enterprise}
    seq = NumberAttribute(range_key=True)  # day * 2**40 + device_key(device)
    device_id = UnicodeAttribute()
    day = NumberAttribute()
    outages = UnicodeAttribute()  # [[start, end], ...]


def bind(settings: Settings) -> None:
    meta: Any = OutageDayItem.Meta
    meta.table_name = settings.table_warning_event
    for name, value in aws_clients.dynamo_meta(settings).items():
        setattr(meta, name, value)
    OutageDayItem._connection = None


def device_key(device_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(device_id.encode(), digest_size=5).digest(), "big")


class DynamoOutageLedger:
    """`OutageLedger` (module docstring)."""

    day_readers = 8  # an evaluation run's days read at a time (one query each: latency, not size)

    def add(self, enterprise_id: str, device_id: str, day: int, start: float, end: float) -> None:
        partition, seq = f"ONLINE#{enterprise_id}", (day << DEVICE_KEY_BITS) + device_key(device_id)
        try:
            current = json.loads(OutageDayItem.get(partition, seq, consistent_read=True).outages)
        except DoesNotExist:
            current = []
        period = [round(start, 3), round(end, 3)]
        if period in current:
            return
        merged = sorted([*current, period])
        OutageDayItem(partition, seq, device_id=device_id, day=day, outages=json.dumps(merged)).save()

    def outages(self, enterprise_id: str, first_day: int, last_day: int) -> dict[tuple[str, int], list[Window]]:
        low, high = first_day << DEVICE_KEY_BITS, ((last_day + 1) << DEVICE_KEY_BITS) - 1
        found: defaultdict[tuple[str, int], list[Window]] = defaultdict(list)
        for item in OutageDayItem.query(f"ONLINE#{enterprise_id}", OutageDayItem.seq.between(low, high)):
            found[(item.device_id, int(item.day))] += [(float(a), float(b)) for a, b in json.loads(item.outages)]
        return dict(found)

    def outages_between(self, first_day: int, last_day: int) -> dict[tuple[str, int], list[Window]]:
        days = range(first_day, last_day + 1)
        with ThreadPoolExecutor(min(self.day_readers, len(days)) or 1) as pool:
            found: defaultdict[tuple[str, int], list[Window]] = defaultdict(list)
            for day, outages in zip(days, pool.map(_day_outages, days), strict=True):
                for device_id, windows in outages:
                    found[(device_id, day)] += windows
        return dict(found)


def _day_outages(day: int) -> list[tuple[str, list[Window]]]:
    """One local day's recorded outages of every enterprise: the table's `ledger_by_day` index (outage items
    only carry `day`; the offline records are listed under a negative one)."""
    client = OutageDayItem._get_connection().connection.client
    request: dict[str, Any] = {
        "TableName": OutageDayItem.Meta.table_name,
        "IndexName": "ledger_by_day",
        "KeyConditionExpression": "#day = :day",
        "ExpressionAttributeNames": {"#day": "day"},
        "ExpressionAttributeValues": {":day": {"N": str(day)}},
        "ProjectionExpression": "device_id, outages",
    }
    found: list[tuple[str, list[Window]]] = []
    while True:
        page = client.query(**request)
        for item in page.get("Items", []):
            windows = [(float(a), float(b)) for a, b in json.loads(item["outages"]["S"])]
            found.append((item["device_id"]["S"], windows))
        if not page.get("LastEvaluatedKey"):
            return found
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class DynamoDeviceDirectory:
    """`DeviceDirectory` over the registry index (read only). With `ttl_s`, the listings (enterprises, an
    enterprise's devices) are kept per container that long: the registry changes rarely, and a listing walks every
    enterprise (one index query each); named devices are always read."""

    def __init__(self, ttl_s: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._listings: dict[str, tuple[float, list[Any]]] = {}

    def enterprises(self) -> list[Enterprise]:
        return self._listed(
            "ENTERPRISES",
            lambda: [Enterprise.model_validate(item.data) for item in RegistryItem.by_gsi1.query("ENTERPRISES")],
        )

    def devices_of(self, enterprise_id: str) -> list[DeviceRegistration]:
        def read() -> list[DeviceRegistration]:
            query = RegistryItem.by_gsi1.query(f"ENT#{enterprise_id}", RegistryItem.gsi1sk.startswith("DEV#"))
            return [DeviceRegistration.model_validate(item.data) for item in query]

        return self._listed(f"ENT#{enterprise_id}", read)

    def _listed(self, partition: str, read: Callable[[], list[T]]) -> list[T]:
        now = self._clock()
        kept = self._listings.get(partition)
        if kept is not None and now - kept[0] <= self._ttl_s:
            return list(kept[1])
        found = read()
        if self._ttl_s > 0:
            self._listings[partition] = (now, found)
        return list(found)

    def devices(self, device_ids: Iterable[str]) -> Mapping[str, DeviceRegistration]:
        keys = [(f"DEV#{d}", "REG") for d in dict.fromkeys(device_ids)]
        return {
            item.pk.removeprefix("DEV#"): DeviceRegistration.model_validate(item.data)
            for item in RegistryItem.batch_get(keys)
        }
