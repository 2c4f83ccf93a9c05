"""The audit trail is tamper-evident: an altered, deleted or truncated event stored in DynamoDB is reported by the
audit route and by `python -m scripts.verify_chain`, at the seq where the chain breaks."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from chalicelib.domain.levels import Level
from chalicelib.domain.warnings import WarningRecord
from scripts import verify_chain
from tests.functional.api_fixtures import ApiEnv, Http, api_env, http, raise_warning

ENTERPRISE, DUTY = "ent-e-hc-04", "duty-01"


def dynamodb(api_env: ApiEnv) -> Any:
    return boto3.client("dynamodb", endpoint_url=api_env.infra.endpoint_url, region_name=api_env.infra.region)


def events_table(api_env: ApiEnv) -> str:
    return api_env.infra.table("WarningEventTable")


def key(subject: str, seq: int) -> dict[str, Any]:
    return {"warning_id": {"S": f"AUDIT#{subject}"}, "seq": {"N": str(seq)}}


@pytest.fixture
def acted(api_env: ApiEnv, http: Http) -> WarningRecord:
    """A warning with four events: raise, acknowledge, verify, start_disposal."""
    record = raise_warning(api_env.registry, "E-HC-04", Level.ORANGE)
    for body in ({"type": "acknowledge"}, {"type": "verify", "outcome": "real"}, {"type": "start_disposal"}):
        assert http.post(f"/warnings/{record.warning_id}/actions", ENTERPRISE, body).status == 200
    assert http.get(f"/warnings/{record.warning_id}/audit", DUTY).body["ok"] is True
    return record


def audit(http: Http, record: WarningRecord) -> dict[str, Any]:
    answer = http.get(f"/warnings/{record.warning_id}/audit", "admin")
    assert answer.status == 200
    body: dict[str, Any] = answer.body
    return body


def test_an_altered_field_inside_a_stored_event_is_reported_at_its_seq(
    api_env: ApiEnv, http: Http, acted: WarningRecord
) -> None:
    client = dynamodb(api_env)
    item = client.get_item(TableName=events_table(api_env), Key=key(acted.warning_id, 2))["Item"]
    data = json.loads(item["data"]["S"])
    data["actor"] = "someone-else"
    client.update_item(
        TableName=events_table(api_env),
        Key=key(acted.warning_id, 2),
        UpdateExpression="SET #d = :d",
        ExpressionAttributeNames={"#d": "data"},
        ExpressionAttributeValues={":d": {"S": json.dumps(data)}},
    )
    assert audit(http, acted) | {"reason_zh": None} == {
        "ok": False,
        "first_bad_seq": 2,
        "reason": "hash_mismatch",
        "reason_zh": None,
        "checked": 1,
        "head_seq": 4,
    }


def test_an_altered_time_on_the_item_itself_is_reported(api_env: ApiEnv, http: Http, acted: WarningRecord) -> None:
    dynamodb(api_env).update_item(
        TableName=events_table(api_env),
        Key=key(acted.warning_id, 3),
        UpdateExpression="SET #at = :at",
        ExpressionAttributeNames={"#at": "at"},
        ExpressionAttributeValues={":at": {"N": "1000"}},
    )
    report = audit(http, acted)
    assert (report["ok"], report["first_bad_seq"], report["reason"]) == (False, 3, "hash_mismatch")


def test_a_deleted_event_is_reported_as_a_gap(api_env: ApiEnv, http: Http, acted: WarningRecord) -> None:
    dynamodb(api_env).delete_item(TableName=events_table(api_env), Key=key(acted.warning_id, 2))
    report = audit(http, acted)
    assert (report["ok"], report["first_bad_seq"], report["reason"]) == (False, 2, "seq_gap")
    assert "缺失" in report["reason_zh"]


def test_a_deleted_last_event_is_caught_against_the_head_kept_on_the_warning(
    api_env: ApiEnv, http: Http, acted: WarningRecord
) -> None:
    dynamodb(api_env).delete_item(TableName=events_table(api_env), Key=key(acted.warning_id, 4))
    report = audit(http, acted)
    assert (report["ok"], report["reason"], report["checked"]) == (False, "head_mismatch", 3)


def test_the_command_line_check_agrees_with_the_route(
    api_env: ApiEnv, http: Http, acted: WarningRecord, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_chain.main([acted.warning_id]) == 0
    dynamodb(api_env).delete_item(TableName=events_table(api_env), Key=key(acted.warning_id, 3))
    assert verify_chain.main([acted.warning_id]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["ok"], line["first_bad_seq"]) for line in lines] == [(True, None), (False, 3)]
    assert verify_chain.main(["WNOSUCHWARNING"]) == 2


def test_events_record_who_from_where_and_what_changed(api_env: ApiEnv, http: Http, acted: WarningRecord) -> None:
    item = dynamodb(api_env).get_item(TableName=events_table(api_env), Key=key(acted.warning_id, 2))["Item"]
    event = json.loads(item["data"]["S"])
    assert (event["actor"], event["role"], event["type"]) == (ENTERPRISE, "enterprise", "acknowledge")
    assert (event["before"], event["after"]) == (
        {"status": "raised", "level": "orange"},
        {"status": "acknowledged", "level": "orange"},
    )
    assert event["source_ip"] and event["prev_hash"] and event["hash"]


def test_a_device_setpoint_change_is_audited_and_tampering_with_it_is_reported(
    api_env: ApiEnv, http: Http
) -> None:
    device = next(d for d in api_env.registry.devices if d.setpoints)
    metric, setpoint = next(iter(device.setpoints.items()))
    setpoints = {name: value.model_dump(exclude_none=True) for name, value in device.setpoints.items()}
    body: dict[str, Any] = {
        "enterprise_id": device.enterprise_id,
        "unit_id": device.unit_id,
        "unit_name": device.unit_name,
        "point_name": device.point_name,
        "kind": device.kind,
        "setpoints": setpoints,
        "static": device.static.model_dump(exclude_none=True),
        "reason": "设计变更",
    }
    changed = {**body, "setpoints": {**setpoints, metric: {**setpoint.model_dump(exclude_none=True), "h": 1.5}}}
    first = http.put(f"/admin/devices/{device.device_id}", "admin", changed)
    assert (first.status, first.body["changed"], first.body["audit_seq"]) == (200, True, 1)
    again = http.put(f"/admin/devices/{device.device_id}", "admin", changed)
    assert (again.body["changed"], again.body["audit_seq"]) == (False, 1)
    assert http.put(f"/admin/devices/{device.device_id}", "admin", body).body["audit_seq"] == 2

    trail = http.get(f"/admin/devices/{device.device_id}/audit", "admin").body
    assert trail["report"]["ok"] is True
    assert [event["type"] for event in trail["events"]] == ["device_updated", "device_updated"]
    assert trail["events"][0]["before"]["setpoints"][metric].get("h") != 1.5
    assert trail["events"][0]["after"]["setpoints"][metric]["h"] == 1.5
    assert trail["events"][0]["reason"] == "设计变更"

    dynamodb(api_env).update_item(
        TableName=events_table(api_env),
        Key=key(f"device:{device.device_id}", 1),
        UpdateExpression="SET #t = :t",
        ExpressionAttributeNames={"#t": "type"},
        ExpressionAttributeValues={":t": {"S": "device_registered"}},
    )
    report = http.get(f"/admin/devices/{device.device_id}/audit", "admin").body["report"]
    assert (report["ok"], report["first_bad_seq"]) == (False, 1)


__all__ = ["api_env", "http"]  # the fixtures this module uses
