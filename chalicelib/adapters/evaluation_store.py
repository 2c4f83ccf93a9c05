"""The evaluation's reads and its report archive (docs/evaluation.md "Runs, storage and reads").

`DynamoEvaluationFacts` — nothing scans the warning history:
- raised in [since, end): `by_sector`, one range Query per sector (since = the period's start less the repeat
  window);
- raised before `since` and still open: `open_by_sector` (sparse: the open warnings only), filtered on
  `raised_epoch`;
- raised before `since` and closed at or after it: `closed_by_sector` (sparse, keys and `raised_epoch` only, ~100
  bytes an entry), filtered on `raised_epoch`, then BatchGetItem of the few found;
- level changes (for `facts_of`'s earlier armings) only for warnings whose level changed (`level_seq` > 0): one
  Query of the warning's event partition each.
- the fleet: the registry's enterprises and devices in one parallel Scan of the registry table (current state, not
  history: the evaluation needs every device anyway; ~0.5 KB a device).

`DerivedDeviceDays` — the device-day ledger until the offline watch writes one (issue 12): every registered device
is expected online all of every day of the period up to the read time; its outage is what the offline watch knows
now (`OfflineState`, `OFFLINE#{device}`: offline since, and whether a declaration suppresses it), clipped to the
period. Outages that ended before the read time are not known to it (the presence summaries expire after three
days), so until the ledger exists 在线率 is an upper bound. A device's unremarkable days are one `DeviceDay` run.

`S3ReportArchive` — the JSON document and the artifacts under `evaluations/{kind}/{label}/report.{ext}` in the
versioned evaluation bucket (a re-run writes new versions of the same keys), and one index item per report in the
registry table (`EVAL#{report id}` / `REPORT`, listed through `gsi1` = `EVALUATIONS`, newest period first).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.adapters.dynamo import (
    RegistryItem,
    WarningEventItem,
    WarningItem,
    iso_utc,
    record_from_item,
)
from chalicelib.domain.changes import ChangeKind
from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.evaluation.facts import DeviceDay, FleetFacts, LevelChange, WarningFacts, facts_of
from chalicelib.domain.evaluation.indicators import EnterpriseProfile
from chalicelib.domain.evaluation.periods import Period, local_midnight
from chalicelib.domain.levels import LEVEL_BY_CODE, Sector
from chalicelib.domain.policy import DeadlinePolicy
from chalicelib.domain.registry import Enterprise
from chalicelib.services.ports import Fleet, FleetDevice, OfflineRecord, OfflineState, RenderedReport, ReportEntry

INDEX_PARTITION = "EVALUATIONS"
SCAN_SEGMENTS = 4
_LEVEL_EVENTS = {f"engine.{ChangeKind.LEVEL_UP.value}", f"engine.{ChangeKind.LEVEL_DOWN.value}"}
_BATCH = 100
_CONTENT_TYPES = {
    "json": "application/json; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html; charset=utf-8",
}


def _registry_segment(segment: tuple[int, int]) -> tuple[list[Enterprise], list[FleetDevice]]:
    """One segment of the registry's parallel Scan: enterprises' profiles and devices' registrations, read with the
    model's client but parsed here (only what the evaluation needs of a device: 250,000 full registrations through
    PynamoDB and pydantic would cost more CPU than the rest of the run)."""
    client = RegistryItem._get_connection().connection.client
    request: dict[str, Any] = {
        "TableName": RegistryItem.Meta.table_name,
        "Segment": segment[0],
        "TotalSegments": segment[1],
        "ProjectionExpression": "pk, sk, #data",
        "FilterExpression": "sk = :reg OR (sk = :profile AND begins_with(pk, :enterprise))",
        "ExpressionAttributeNames": {"#data": "data"},
        "ExpressionAttributeValues": {
            ":reg": {"S": "REG"},
            ":profile": {"S": "PROFILE"},
            ":enterprise": {"S": "ENT#"},
        },
    }
    enterprises: list[Enterprise] = []
    devices: list[FleetDevice] = []
    while True:
        page = client.scan(**request)
        for item in page.get("Items", []):
            data = json.loads(item["data"]["S"])
            if item["sk"]["S"] != "REG":
                enterprises.append(Enterprise.model_validate(data))
                continue
            devices.append(
                FleetDevice(
                    device_id=data["device_id"],
                    enterprise_id=data["enterprise_id"],
                    sector=Sector(data["sector"]),
                    area_codes=tuple(data.get("area_codes") or ()),
                    major_hazard_grade=(data.get("static") or {}).get("major_hazard_grade"),
                )
            )
        if not page.get("LastEvaluatedKey"):
            return enterprises, devices
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class DynamoEvaluationFacts:
    def __init__(self, deadlines: DeadlinePolicy, segments: int = SCAN_SEGMENTS) -> None:
        self._deadlines = deadlines
        self._segments = segments

    # --- the fleet ---------------------------------------------------------------------------------------------

    def fleet(self) -> Fleet:
        with ThreadPoolExecutor(self._segments) as pool:
            parts = list(pool.map(_registry_segment, [(n, self._segments) for n in range(self._segments)]))
        enterprises = [enterprise for part in parts for enterprise in part[0]]
        devices: dict[str, list[FleetDevice]] = defaultdict(list)
        for part in parts:
            for device in part[1]:
                devices[device.enterprise_id].append(device)
        profiles = [
            EnterpriseProfile(
                enterprise_id=e.enterprise_id,
                name=e.name,
                sector=e.sector,
                area_codes=e.area_codes,
                major_hazard_grades=tuple(
                    sorted({g for d in devices.get(e.enterprise_id, ()) if (g := d.major_hazard_grade)})
                ),
            )
            for e in sorted(enterprises, key=lambda e: e.enterprise_id)
        ]
        fleets = [
            FleetFacts(enterprise_id=e.enterprise_id, vehicles_networked=len(devices.get(e.enterprise_id, ())))
            for e in enterprises
            if e.sector is Sector.ROAD_TRANSPORT
        ]
        return Fleet(profiles=profiles, devices=dict(devices), fleets=fleets)

    # --- warnings ----------------------------------------------------------------------------------------------

    def warnings(self, period: Period, as_of: float, since: float) -> Iterator[WarningFacts]:
        with ThreadPoolExecutor(len(Sector)) as pool:
            for items in pool.map(lambda sector: self._sector(sector, period, since), list(Sector)):
                for item in items:
                    yield facts_of(record_from_item(item), self._deadlines, as_of, self._changes(item))

    def _sector(self, sector: Sector, period: Period, since: float) -> list[WarningItem]:
        raised = iso_utc(since), iso_utc(period.end - 0.001)
        found = {
            item.warning_id: item
            for item in WarningItem.by_sector.query(sector.value, WarningItem.raised_at.between(*raised))
        }
        earlier = WarningItem.raised_epoch < since
        for item in WarningItem.open_by_sector.query(sector.value, filter_condition=earlier):
            found[item.warning_id] = item
        closed = [
            entry.warning_id
            for entry in WarningItem.closed_by_sector.query(
                sector.value, WarningItem.closed_at >= iso_utc(since), filter_condition=earlier
            )
            if entry.warning_id not in found
        ]
        for start in range(0, len(closed), _BATCH):
            for item in WarningItem.batch_get(closed[start : start + _BATCH]):
                found[item.warning_id] = item
        return list(found.values())

    @staticmethod
    def _changes(item: WarningItem) -> tuple[LevelChange, ...] | None:
        if not int(item.level_seq or 0):
            return ()  # the level never changed: the arming at the raise is the only one
        changes = [
            LevelChange(
                at=float(event.at),
                from_level=LEVEL_BY_CODE[event.data["previous_level"]],
                to_level=LEVEL_BY_CODE[event.data["level"]],
            )
            for event in WarningEventItem.query(item.warning_id)
            if event.type in _LEVEL_EVENTS and event.data.get("previous_level") != event.data.get("level")
        ]
        return tuple(sorted(changes, key=lambda change: change.at))


def _local_day(at: float) -> date:
    return datetime.fromtimestamp(at, SHANGHAI).date()


class DerivedDeviceDays:
    """The device-day ledger derived from the offline watch's current state (module docstring)."""

    def __init__(self, offline: OfflineState, readers: int = 8) -> None:
        self._offline = offline
        self._readers = readers

    def device_days(self, period: Period, fleet: Fleet, as_of: float) -> Iterator[DeviceDay]:
        end = min(period.end, as_of)
        if end <= period.start:
            return
        devices = [device for group in fleet.devices.values() for device in group]
        batches = [[d.device_id for d in devices[at : at + _BATCH]] for at in range(0, len(devices), _BATCH)]
        offline: dict[str, OfflineRecord] = {}
        with ThreadPoolExecutor(self._readers) as pool:  # one BatchGetItem per 100 devices, mostly not found
            for found in pool.map(self._offline.offline, batches):
                offline.update(found)
        for device in devices:
            yield from _days(device, period.start, end, offline.get(device.device_id))


def _days(device: FleetDevice, start: float, end: float, outage: OfflineRecord | None) -> Iterable[DeviceDay]:
    """One run of whole days online, then, from the outage's first day, one row per day."""
    first, last = _local_day(start), _local_day(end - 0.001)
    since = max(start, outage.since) if outage is not None and outage.since < end else None
    split = _local_day(since) if since is not None else last + timedelta(days=1)
    common: dict[str, Any] = {
        "device_id": device.device_id,
        "enterprise_id": device.enterprise_id,
        "sector": device.sector,
        "area_codes": device.area_codes,
    }
    if split > first:
        run_end = min(end, local_midnight(split))
        expected = run_end - start
        yield DeviceDay(**common, day=first, days=(split - first).days, expected_s=expected, online_s=expected)
    day = split
    while since is not None and day <= last:
        day_start, day_end = max(start, local_midnight(day)), min(end, local_midnight(day + timedelta(days=1)))
        down = max(0.0, day_end - max(day_start, since))
        declared = down if outage is not None and outage.suppressed_by else 0.0
        expected = day_end - day_start
        yield DeviceDay(
            **common,
            day=day,
            expected_s=expected,
            online_s=expected - down,
            declared_outage_s=declared,
            undeclared_outage_s=down - declared,
        )
        day += timedelta(days=1)


class S3ReportArchive:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def store(self, entry: ReportEntry, report: RenderedReport) -> ReportEntry:
        prefix = f"evaluations/{entry.kind}/{entry.label}/report"
        bodies = {"json": report.document, **report.artifacts}
        keys, versions = {}, {}
        for name, body in bodies.items():
            key = f"{prefix}.{name}"
            answer = self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType=_CONTENT_TYPES.get(name, "application/octet-stream"),
            )
            keys[name], versions[name] = key, str(answer.get("VersionId") or "")
        stored = ReportEntry(**{**_fields(entry), "keys": keys, "versions": versions})
        _index_item(stored).save()
        return stored

    def entries(self, limit: int) -> list[ReportEntry]:
        items = RegistryItem.by_gsi1.query(INDEX_PARTITION, scan_index_forward=False, limit=limit)
        return [_entry(item.data) for item in items]

    def entry(self, report_id: str) -> ReportEntry | None:
        try:
            return _entry(RegistryItem.get(f"EVAL#{report_id}", "REPORT").data)
        except DoesNotExist:
            return None

    def document(self, entry: ReportEntry) -> bytes:
        params = {"Bucket": self._bucket, "Key": entry.keys["json"]}
        if entry.versions.get("json"):
            params["VersionId"] = entry.versions["json"]
        body: bytes = self._s3.get_object(**params)["Body"].read()
        return body

    def download_url(self, entry: ReportEntry, artifact: str, expires_s: int) -> str:
        params = {"Bucket": self._bucket, "Key": entry.keys[artifact]}
        if entry.versions.get(artifact):
            params["VersionId"] = entry.versions[artifact]
        url: str = self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)
        return url


def _fields(entry: ReportEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in ReportEntry.__dataclass_fields__}


def _index_item(entry: ReportEntry) -> RegistryItem:
    return RegistryItem(
        f"EVAL#{entry.report_id}",
        "REPORT",
        gsi1pk=INDEX_PARTITION,
        gsi1sk=f"{iso_utc(entry.end)}#{iso_utc(entry.start)}#{entry.kind}",
        data=json.loads(json.dumps(_fields(entry))),
    )


def _entry(data: dict[str, Any]) -> ReportEntry:
    return ReportEntry(**{**data, "start": float(data["start"]), "end": float(data["end"])})
