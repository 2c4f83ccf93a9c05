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
- the fleet: the registry's enterprises, devices, areas and declarations in one parallel Scan of the registry table
  (current state, not history: the evaluation needs every device anyway; ~0.5 KB a device).
- a quarter's or year's re-read of the warnings its months carried: BatchGetItem by id (`warnings_by_id`).

These reads use the evaluation's own DynamoDB clients (`reader`), whose answers are decoded by `json`.

Device-days come from the online-time ledger (`services/online_ledger.py`, `OnlineLedger.device_days`).

`S3ReportArchive` — the JSON document and the artifacts under `evaluations/{kind}/{label}/report.{ext}` in the
versioned evaluation bucket (a re-run writes new versions of the same keys), and one index item per report in the
registry table (`EVAL#{report id}` / `REPORT`, listed through `gsi1` = `EVALUATIONS`, newest period first).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from chalicelib.adapters.dynamo import (
    RegistryItem,
    WarningEventItem,
    WarningItem,
    iso_utc,
)
from chalicelib.domain.changes import ChangeKind
from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.declarations import Declaration
from chalicelib.domain.evaluation.facts import FleetFacts, LevelChange, WarningFacts, facts_of
from chalicelib.domain.evaluation.indicators import EnterpriseProfile
from chalicelib.domain.evaluation.periods import Period
from chalicelib.domain.levels import LEVEL_BY_CODE, Sector
from chalicelib.domain.policy import DeadlinePolicy
from chalicelib.domain.registry import Enterprise
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from chalicelib.services.ports import Fleet, FleetDevice, RenderedReport, ReportEntry

INDEX_PARTITION = "EVALUATIONS"
SCAN_SEGMENTS = 4
_LEVEL_EVENTS = {f"engine.{ChangeKind.LEVEL_UP.value}", f"engine.{ChangeKind.LEVEL_DOWN.value}"}
_BATCH = 100
_CONTENT_TYPES = {
    "json": "application/json; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html; charset=utf-8",
    "tallies": "application/json",
}


_READERS: dict[str, Any] = {}
_READERS_LOCK = threading.Lock()


def _decoded_by_json(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """DynamoDB answers in JSON, whose attribute values botocore's parser walks member by member of the
    AttributeValue shape (half of a run's CPU); decoded with `json` instead: the same dicts, strings and numbers as
    strings. Only on the evaluation's own clients (`reader`): they read no binary attributes, the one type the
    parser would turn into something else (bytes)."""
    if response_dict.get("status_code", 500) >= 300:
        return  # errors: botocore's parser, for the modeled error fields
    customized_response_dict.update(json.loads(response_dict["body"]))
    response_dict["body"] = b"{}"


def reader(model: type[Model]) -> Any:
    """The evaluation's DynamoDB client for `model`'s table: the model's connection settings (region, endpoint,
    timeouts, retries), its own client, answers decoded by `_decoded_by_json`."""
    connection = model._get_connection().connection
    base = connection.client
    key = f"{model.Meta.table_name}|{base.meta.endpoint_url}"
    with _READERS_LOCK:
        client = _READERS.get(key)
        if client is None:
            client = connection.session.create_client(
                "dynamodb", base.meta.region_name, endpoint_url=base.meta.endpoint_url, config=base.meta.config
            )
            for operation in ("Query", "Scan", "BatchGetItem"):
                client.meta.events.register(f"before-parse.dynamodb.{operation}", _decoded_by_json)
            _READERS[key] = client
    return client


@dataclass
class _RegistryPart:
    enterprises: list[Enterprise] = field(default_factory=list)
    devices: list[FleetDevice] = field(default_factory=list)
    declarations: list[Declaration] = field(default_factory=list)
    area_names: dict[str, str] = field(default_factory=dict)


def _registry_segment(segment: tuple[int, int]) -> _RegistryPart:
    """One segment of the registry's parallel Scan: enterprises' profiles, devices' registrations, the
    declarations (their windows excuse outages) and the areas' names, read with the model's client but parsed here
    (only what the evaluation needs of a device: 250,000 full registrations through PynamoDB and pydantic would
    cost more CPU than the rest of the run)."""
    client = reader(RegistryItem)
    request: dict[str, Any] = {
        "TableName": RegistryItem.Meta.table_name,
        "Segment": segment[0],
        "TotalSegments": segment[1],
        "ProjectionExpression": "pk, sk, #data, version",
        "FilterExpression": "sk = :reg OR sk = :decl OR (sk = :profile AND "
        "(begins_with(pk, :enterprise) OR begins_with(pk, :area)))",
        "ExpressionAttributeNames": {"#data": "data"},
        "ExpressionAttributeValues": {
            ":reg": {"S": "REG"},
            ":decl": {"S": "DECL"},
            ":profile": {"S": "PROFILE"},
            ":enterprise": {"S": "ENT#"},
            ":area": {"S": "AREA#"},
        },
    }
    part = _RegistryPart()
    while True:
        page = client.scan(**request)
        for item in page.get("Items", []):
            data = json.loads(item["data"]["S"])
            kind = item["sk"]["S"]
            if kind == "REG":
                part.devices.append(
                    FleetDevice(
                        device_id=data["device_id"],
                        enterprise_id=data["enterprise_id"],
                        sector=Sector(data["sector"]),
                        area_codes=tuple(data.get("area_codes") or ()),
                        major_hazard_grade=(data.get("static") or {}).get("major_hazard_grade"),
                    )
                )
            elif kind == "DECL":
                version = int(item.get("version", {}).get("N", "0"))
                part.declarations.append(Declaration.model_validate({**data, "version": version}))
            elif item["pk"]["S"].startswith("AREA#"):
                part.area_names[data["code"]] = data["name"]
            else:
                part.enterprises.append(Enterprise.model_validate(data))
        if not page.get("LastEvaluatedKey"):
            return part
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class DynamoEvaluationFacts:
    def __init__(self, deadlines: DeadlinePolicy, segments: int = SCAN_SEGMENTS, event_readers: int = 16) -> None:
        self._deadlines = deadlines
        self._segments = segments
        self._event_readers = event_readers

    # --- the fleet ---------------------------------------------------------------------------------------------

    def fleet(self) -> Fleet:
        with ThreadPoolExecutor(self._segments) as pool:
            parts = list(pool.map(_registry_segment, [(n, self._segments) for n in range(self._segments)]))
        enterprises = [enterprise for part in parts for enterprise in part.enterprises]
        devices: dict[str, list[FleetDevice]] = defaultdict(list)
        for part in parts:
            for device in part.devices:
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
        return Fleet(
            profiles=profiles,
            devices=dict(devices),
            fleets=fleets,
            declarations=[declaration for part in parts for declaration in part.declarations],
            area_names={code: name for part in parts for code, name in part.area_names.items()},
        )

    # --- warnings ----------------------------------------------------------------------------------------------

    def warnings(self, period: Period, as_of: float, since: float) -> Iterator[WarningFacts]:
        with ThreadPoolExecutor(len(Sector)) as pool:
            found = [pair for part in pool.map(lambda s: _sector(s, period, since), list(Sector)) for pair in part]
        changed = [record.warning_id for record, level_seq in found if level_seq]
        with ThreadPoolExecutor(self._event_readers) as pool:  # one small Query each: latency, not size
            changes = dict(zip(changed, pool.map(_changes, changed), strict=True))
        for record, _level_seq in found:
            yield facts_of(record, self._deadlines, as_of, changes.get(record.warning_id, ()))

    def warnings_by_id(self, warning_ids: Sequence[str], as_of: float) -> Iterator[WarningFacts]:
        ids = list(dict.fromkeys(warning_ids))
        batches = [ids[start : start + _BATCH] for start in range(0, len(ids), _BATCH)]
        with ThreadPoolExecutor(self._event_readers) as pool:
            for items in pool.map(lambda batch: list(_batch_get(batch)), batches):
                for item in items:
                    yield facts_of(_record(item)[0], self._deadlines, as_of)


# The attributes a warning's facts need (the item's texts and index keys are not read: less to parse).
_FACT_ATTRIBUTES = (
    "warning_id",
    "device_id",
    "enterprise_id",
    "sector",
    "area_codes",
    "risk_type",
    "level",
    "peak_level",
    "status",
    "raised_epoch",
    "updated_at",
    "flags",
    "details",
    "level_seq",
)
_NAMES = {f"#a{n}": name for n, name in enumerate(_FACT_ATTRIBUTES)}
_PROJECTION = ", ".join(_NAMES)


def _query(request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    client = reader(WarningItem)
    request = {"TableName": WarningItem.Meta.table_name, **request}
    while True:
        page = client.query(**request)
        yield from page.get("Items", [])
        if not page.get("LastEvaluatedKey"):
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _sector(sector: Sector, period: Period, since: float) -> list[tuple[WarningRecord, int]]:
    """One sector's warnings of the period: raised in [since, end), or raised before and open at `since`."""
    key = {":sector": {"S": sector.value}}
    earlier = {":since": {"N": repr(since)}}
    projected = {"ProjectionExpression": _PROJECTION, "ExpressionAttributeNames": {**_NAMES, "#sector": "sector"}}
    raised = _query(
        {
            "IndexName": "by_sector",
            "KeyConditionExpression": "#sector = :sector AND raised_at BETWEEN :from AND :to",
            "ExpressionAttributeValues": {
                **key,
                ":from": {"S": iso_utc(since)},
                ":to": {"S": iso_utc(period.end - 0.001)},
            },
            **projected,
        }
    )
    still_open = _query(
        {
            "IndexName": "open_by_sector",
            "KeyConditionExpression": "open_sector = :sector",
            "FilterExpression": "raised_epoch < :since",
            "ExpressionAttributeValues": {**key, **earlier},
            "ProjectionExpression": _PROJECTION,
            "ExpressionAttributeNames": _NAMES,
        }
    )
    found = {item["warning_id"]["S"]: item for item in (*raised, *still_open)}
    closed_since = [
        entry["warning_id"]["S"]
        for entry in _query(
            {
                "IndexName": "closed_by_sector",
                "KeyConditionExpression": "#sector = :sector AND closed_at >= :closed",
                "FilterExpression": "raised_epoch < :since",
                "ExpressionAttributeNames": {"#sector": "sector"},
                "ExpressionAttributeValues": {**key, **earlier, ":closed": {"S": iso_utc(since)}},
            }
        )
    ]
    missing = [warning_id for warning_id in closed_since if warning_id not in found]
    for start in range(0, len(missing), _BATCH):
        found.update((item["warning_id"]["S"], item) for item in _batch_get(missing[start : start + _BATCH]))
    return [_record(item) for item in found.values()]


def _batch_get(warning_ids: list[str]) -> Iterator[dict[str, Any]]:
    client = reader(WarningItem)
    table = WarningItem.Meta.table_name
    wanted: dict[str, Any] = {
        table: {
            "Keys": [{"warning_id": {"S": warning_id}} for warning_id in warning_ids],
            "ProjectionExpression": _PROJECTION,
            "ExpressionAttributeNames": _NAMES,
        }
    }
    while wanted:
        answer = client.batch_get_item(RequestItems=wanted)
        yield from answer.get("Responses", {}).get(table, [])
        wanted = answer.get("UnprocessedKeys") or {}


def _json(item: dict[str, Any], name: str, default: Any) -> Any:
    value = item.get(name)
    return json.loads(value["S"]) if value is not None and "S" in value else default


def _record(item: dict[str, Any]) -> tuple[WarningRecord, int]:
    """The evaluation's view of a stored warning (as `dynamo.record_from_item`, its names and texts left empty:
    nothing the facts read), and its `level_seq` (> 0: the level changed since the raise)."""
    record = WarningRecord(
        warning_id=item["warning_id"]["S"],
        device_id=item["device_id"]["S"],
        enterprise_id=item["enterprise_id"]["S"],
        enterprise_name="",
        sector=Sector(item["sector"]["S"]),
        unit_id="",
        unit_name="",
        point_name="",
        area_codes=tuple(_json(item, "area_codes", ())),
        risk_type=item["risk_type"]["S"],
        level=LEVEL_BY_CODE[item["level"]["S"]],
        peak_level=LEVEL_BY_CODE[item["peak_level"]["S"]],
        status=WarningStatus(item["status"]["S"]),
        reading_normal=False,
        raised_at=float(item["raised_epoch"]["N"]),
        updated_at=float(item["updated_at"]["N"]),
        title="",
        reason="",
        value=None,
        unit="",
        flags=tuple(_json(item, "flags", ())),
        details=_json(item, "details", {}),
    )
    return record, int(item.get("level_seq", {}).get("N", "0"))


def _changes(warning_id: str) -> tuple[LevelChange, ...]:
    """The warning's level changes from its engine events (`engine.level_up` / `engine.level_down`)."""
    client = reader(WarningEventItem)
    request: dict[str, Any] = {
        "TableName": WarningEventItem.Meta.table_name,
        "KeyConditionExpression": "warning_id = :warning",
        "FilterExpression": "#type IN (:up, :down)",
        "ProjectionExpression": "#at, #data",
        "ExpressionAttributeNames": {"#type": "type", "#at": "at", "#data": "data"},
        "ExpressionAttributeValues": {
            ":warning": {"S": warning_id},
            **{f":{name}": {"S": kind} for name, kind in zip(("up", "down"), sorted(_LEVEL_EVENTS), strict=True)},
        },
    }
    changes: list[LevelChange] = []
    while True:
        page = client.query(**request)
        for item in page.get("Items", []):
            data = json.loads(item["data"]["S"])
            if data.get("previous_level") != data.get("level"):
                changes.append(
                    LevelChange(
                        at=float(item["at"]["N"]),
                        from_level=LEVEL_BY_CODE[data["previous_level"]],
                        to_level=LEVEL_BY_CODE[data["level"]],
                    )
                )
        if not page.get("LastEvaluatedKey"):
            return tuple(sorted(changes, key=lambda change: change.at))
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _local_day(at: float) -> date:
    return datetime.fromtimestamp(at, SHANGHAI).date()


class SqsEvaluationRequests:
    """`EvaluationRequests`: one message per on-demand run on the evaluation queue."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def send(self, report_id: str, requested_by: str) -> None:
        body = json.dumps({"report_id": report_id, "requested_by": requested_by})
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=body)


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

    def mark(self, entry: ReportEntry) -> ReportEntry:
        before = self.entry(entry.report_id)
        kept = {}
        if before is not None and "json" in before.keys:  # the last stored report stays readable meanwhile
            kept = {"keys": before.keys, "versions": before.versions, "counts": before.counts}
        marked = ReportEntry(**{**_fields(entry), **kept})
        _index_item(marked).save()
        return marked

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

    def artifact(self, entry: ReportEntry, name: str) -> bytes:
        params = {"Bucket": self._bucket, "Key": entry.keys[name]}
        if entry.versions.get(name):
            params["VersionId"] = entry.versions[name]
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
