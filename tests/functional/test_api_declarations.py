"""Outage declarations through the API (`chalice.test.Client`, moto, real ID tokens): declare → approve → in
effect, reject, overlaps, another enterprise's device, scopes, the audit chain, the schedule's sweep."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import boto3

from chalicelib.adapters.declarations import DynamoDeclarationStore
from chalicelib.adapters.dynamo import DynamoWarningStore
from chalicelib.domain.changes import DATA_QUALITY, ChangeKind
from chalicelib.domain.declarations import declared as declared_change
from chalicelib.domain.declarations import suppressing
from chalicelib.domain.levels import Level
from tests.functional.api_fixtures import ApiEnv, Http, api_env, engine_change, http

ENT = "ent-e-hc-01"  # E-HC-01, hazchem, areas TJFTZ and GULIN
OTHER_ENT = "ent-e-hc-02"
REG = "reg-emergency-bureau"  # regulates hazchem
FIRE_REG = "reg-fire-rescue"
DUTY = "duty-01"
H = 3600.0
FIXTURES = (api_env, http)  # the module's fixtures (pytest finds them by name)


def body(device_ids: list[str], reason: str = "equipment_damage", start: float = 0, end: float = 4 * H) -> dict:
    now = time.time()
    return {
        "device_ids": device_ids,
        "reason": reason,
        "starts_at": now + start,
        "ends_at": now + end,
        "note": "测试",
    }


def test_declare_approve_and_the_window_suppresses_its_devices(api_env: ApiEnv, http: Http) -> None:
    planned = body(["HC01-T1-GT1"], "planned_stop", start=H, end=3 * H)
    declared = http.post("/declarations", ENT, planned)
    assert declared.status == 201, declared.body
    ident = declared.body["declaration_id"]
    assert (declared.body["status"], declared.body["in_effect"], declared.body["reason_zh"]) == (
        "pending",
        False,
        "停产检修",
    )

    assert http.post(f"/declarations/{ident}/approve", DUTY, {}).code == "role_not_permitted"
    assert http.post(f"/declarations/{ident}/approve", FIRE_REG, {}).status == 404  # not its sector
    approved = http.post(f"/declarations/{ident}/approve", REG, {"note": "同意"})
    assert (approved.status, approved.body["status"], approved.body["verified_by"]) == (200, "approved", REG)
    assert http.post(f"/declarations/{ident}/approve", REG, {}).code == "declaration_not_pending"

    stored = DynamoDeclarationStore().open()
    assert suppressing(stored, "HC01-T1-GT1", planned["starts_at"] + 1) is not None
    assert suppressing(stored, "HC01-T1-GT1", planned["starts_at"] - 1) is None
    assert suppressing(stored, "HC01-T1-GT2", planned["starts_at"] + 1) is None

    audit = http.get(f"/declarations/{ident}/audit", DUTY).body
    assert audit["report"]["ok"] and audit["subject_id"] == f"declaration:{ident}"
    assert [e["type"] for e in audit["events"]] == ["declaration_declared", "declaration_approved"]
    assert http.get(f"/declarations/{ident}/audit", ENT).code == "role_not_permitted"


def test_reject_needs_a_reason_and_ends_the_declaration(http: Http) -> None:
    declared = http.post("/declarations", ENT, body(["HC01-T1-GT2"], "data_distortion"))
    ident = declared.body["declaration_id"]
    assert declared.body["in_effect"] is True  # effective when declared
    assert http.post(f"/declarations/{ident}/reject", REG, {}).status == 422
    rejected = http.post(f"/declarations/{ident}/reject", REG, {"reason": "现场核查数据正常"})
    assert (rejected.body["status"], rejected.body["rejection_reason"], rejected.body["in_effect"]) == (
        "rejected",
        "现场核查数据正常",
        False,
    )
    assert http.post(f"/declarations/{ident}/withdraw", ENT, {}).code == "declaration_not_pending"


def test_overlaps_foreign_devices_and_bad_windows_are_refused(http: Http) -> None:
    first = http.post("/declarations", ENT, body(["HC01-T1-GT3"], start=0, end=2 * H))
    assert first.status == 201
    overlap = http.post("/declarations", ENT, body(["HC01-T1-GT3"], start=H, end=3 * H))
    assert (overlap.status, overlap.code) == (409, "declaration_overlaps")
    assert overlap.body["details"]["declaration_id"] == first.body["declaration_id"]

    foreign = http.post("/declarations", ENT, body(["HC02-T1-GT1"]))
    assert (foreign.status, foreign.code) == (422, "device_not_in_enterprise")
    other = http.post("/declarations", ENT, {**body(["HC02-T1-GT1"]), "enterprise_id": "E-HC-02"})
    assert (other.status, other.code) == (403, "other_enterprise")
    assert http.post("/declarations", ENT, body(["HC01-T1-GT3"], start=0, end=8 * 24 * H)).code == (
        "window_too_long"
    )
    assert http.post("/declarations", ENT, body(["HC01-T1-GT3"], "planned_stop", -H, H)).code == (
        "retroactive_window"
    )
    both = {**body(["HC01-T1-GT3"]), "unit_id": "U-HC01-T1"}
    assert (http.post("/declarations", ENT, both).status, http.post("/declarations", DUTY, body(["x"])).code) == (
        422,
        "role_not_permitted",
    )


def test_a_unit_is_declared_as_its_devices_and_scopes_hold(api_env: ApiEnv, http: Http) -> None:
    unit = {**body([], start=5 * H, end=6 * H), "unit_id": "U-HC02-T1"}
    del unit["device_ids"]
    declared = http.post("/declarations", OTHER_ENT, unit)
    assert declared.status == 201, declared.body
    expected = sorted(d.device_id for d in api_env.registry.devices if d.unit_id == "U-HC02-T1")
    assert sorted(declared.body["device_ids"]) == expected
    ident = declared.body["declaration_id"]

    assert http.get(f"/declarations/{ident}", ENT).status == 404  # another enterprise's
    assert http.get(f"/declarations/{ident}", OTHER_ENT).status == 200

    def listed(user: str, query: str = "") -> list[str]:
        return [d["declaration_id"] for d in http.get(f"/declarations{query}", user).body["items"]]

    assert ident not in listed(ENT) and ident in listed(OTHER_ENT)
    assert ident in listed(DUTY) and ident in listed(REG) and ident not in listed(FIRE_REG)
    assert ident in listed("area-dagang") and ident not in listed("area-gulin")
    assert ident in listed(DUTY, "?enterprise_id=E-HC-02&status=pending")
    assert ident not in listed(DUTY, "?status=approved")

    assert http.post(f"/declarations/{ident}/withdraw", ENT, {}).status == 404
    withdrawn = http.post(f"/declarations/{ident}/withdraw", OTHER_ENT, {"note": "计划取消"})
    assert withdrawn.body["status"] == "withdrawn"
    assert ident not in listed(DUTY)  # no longer open


def test_the_findings_a_declaration_suppressed_are_listed_within_its_scope(api_env: ApiEnv, http: Http) -> None:
    declared = http.post("/declarations", ENT, body(["HC01-T1-O2"], "equipment_damage", start=-60, end=H))
    assert declared.status == 201, declared.body
    ident = declared.body["declaration_id"]
    now = time.time()
    store = DynamoWarningStore()
    for at in (now - 30, now - 20):
        change = engine_change(ChangeKind.RAISE, "HC01-T1-O2", "E-HC-01", Level.BLUE, at, at, api_env.registry)
        suppressed = declared_change(replace(change, risk_type=DATA_QUALITY, reason="stuck_value"), ident)
        assert store.append_engine_event(suppressed)
        assert not store.append_engine_event(suppressed)  # a repeated append lists it once
    store.append_engine_event(
        engine_change(ChangeKind.RAISE, "HC01-T1-O2", "E-HC-01", 1, now, now, api_env.registry)
    )

    for user in (ENT, DUTY, REG, "area-gulin"):
        listed = http.get(f"/declarations/{ident}/findings", user)
        assert listed.status == 200, (user, listed.body)
        assert [row["at"] for row in listed.body["items"]] == [now - 20, now - 30]  # the newest first
    first = listed.body["items"][0]
    assert (first["device_id"], first["risk_type"], first["risk_name"], first["reason"], first["level"]) == (
        "HC01-T1-O2",
        DATA_QUALITY,
        "数据质量",
        "stuck_value",
        "blue",
    )
    assert listed.body["truncated"] is False
    limited = http.get(f"/declarations/{ident}/findings?limit=1", DUTY).body
    assert len(limited["items"]) == 1 and limited["truncated"] is True
    assert http.get(f"/declarations/{ident}/findings", FIRE_REG).code == "declaration_not_found"
    assert http.get(f"/declarations/{ident}/findings", OTHER_ENT).status == 404
    assert http.get("/declarations/DCL-none/findings", DUTY).code == "declaration_not_found"


def test_the_sweep_handler_runs(http: Http) -> None:
    from chalice.test import Client

    from app import app
    from tests.functional.api_fixtures import PROJECT_DIR, STAGE

    with Client(app, stage_name=STAGE, project_dir=str(PROJECT_DIR)) as client:
        result = client.lambda_.invoke(
            "declaration_sweep", client.events.generate_cw_event("Scheduled Event", "aws.events", {}, [])
        )
    assert set(result.payload) == {"expired", "reminded", "failed"} and result.payload["failed"] == 0


def test_a_decision_is_queued_for_delivery_and_reaches_the_enterprise_by_sms_and_inbox(
    api_env: ApiEnv, http: Http
) -> None:
    from chalice.test import Client

    from app import app
    from chalicelib.adapters.delivery_store import read_receipts
    from tests.functional.api_fixtures import PROJECT_DIR, STAGE

    declared = http.post("/declarations", ENT, body(["HC01-T2-GT1"])).body["declaration_id"]
    http.post(f"/declarations/{declared}/reject", REG, {"reason": "现场核查数据正常"})

    sqs = boto3.client("sqs", endpoint_url=api_env.infra.endpoint_url, region_name=api_env.infra.region)
    url = api_env.infra.queue_url("DeliveryQueue")
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    [job] = [json.loads(b) for b in bodies if json.loads(b)["declaration_id"] == declared]
    assert (job["kind"], job["job_id"]) == ("declaration_decision", f"declaration_decision:{declared}:rejected")

    with Client(app, stage_name=STAGE, project_dir=str(PROJECT_DIR)) as client:
        event = client.events.generate_sqs_event(message_bodies=[json.dumps(job)], queue_name="delivery")
        assert client.lambda_.invoke("deliver", event).payload == {"batchItemFailures": []}

    receipts = read_receipts(f"declaration:{declared}")
    assert sorted((r["channel"], r["audience"], r["outcome"]) for r in receipts) == [
        ("inbox", "duty", "sent"),
        ("inbox", "enterprise", "sent"),
        ("sms", "enterprise", "sent"),
    ]
    [notice] = [n for n in http.get("/me/notifications", ENT).body["items"] if n["declaration_id"] == declared]
    assert notice["kind"] == "declaration_decision" and "申报被驳回:现场核查数据正常" in notice["text"]
