"""The audit chain: each event is sealed over its content and its predecessor's hash, so altering a field,
deleting an event, swapping two or cutting the tail shows up in `verify_chain`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, replace
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest

from chalicelib.domain.audit import (
    GENESIS_HASH,
    AuditEvent,
    ChainHead,
    canonical_json,
    chain,
    next_event,
    verify_chain,
)
from chalicelib.domain.levels import Level
from chalicelib.domain.lifecycle import (
    Acknowledge,
    Action,
    ClearReason,
    ConfirmClosure,
    RequestClear,
    StartDisposal,
    VerificationOutcome,
    Verify,
    apply_action,
)
from tests.unit.test_lifecycle import ACTOR_FOR, T0, make_record


def warning_history() -> list[AuditEvent]:
    """Five real lifecycle events of one red warning, chained as a service would."""
    record = make_record(Level.RED, reading_normal=True)
    events: list[AuditEvent] = []
    actions: list[Action] = [
        Acknowledge(),
        Verify(outcome=VerificationOutcome.REAL, note="储罐液位确实偏高"),
        StartDisposal(note="倒罐"),
        RequestClear(reason=ClearReason.DISPOSED, text="已倒罐，液位70%", evidence_keys=("E1/p1.jpg",)),
        ConfirmClosure(note="视频核实"),
    ]
    for minute, action in enumerate(actions, start=1):
        transition = apply_action(record, action, ACTOR_FOR[action.action_type], T0 + 60.5 * minute)
        record = transition.record
        previous = events[-1] if events else None
        events.append(next_event(previous, **transition.event.audit_fields(), source_ip="10.0.0.8", app="web"))
    return events


HISTORY = warning_history()


def test_an_intact_chain_verifies() -> None:
    report = verify_chain(HISTORY, head=ChainHead.of(HISTORY[-1]))
    assert report.ok
    assert (report.first_bad_seq, report.reason, report.checked) == (None, None, 5)
    assert report.reason_zh == "完整"


def test_events_are_numbered_from_one_and_linked_from_the_genesis() -> None:
    assert [event.seq for event in HISTORY] == [1, 2, 3, 4, 5]
    assert HISTORY[0].prev_hash == GENESIS_HASH
    assert all(later.prev_hash == earlier.hash for earlier, later in pairwise(HISTORY))


def test_the_hash_is_sha256_of_the_canonical_json_of_every_other_field() -> None:
    event = HISTORY[2]  # at = T0 + 181.5: a float stays a float (an integral float is written as an int)
    body = {f.name: getattr(event, f.name) for f in fields(event) if f.name != "hash"}
    body["before"], body["after"], body["data"] = dict(body["before"]), dict(body["after"]), dict(body["data"])
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert event.hash == hashlib.sha256(text.encode()).hexdigest()
    assert "倒罐" in canonical_json(body)
    assert ": " not in canonical_json(body) and ", " not in canonical_json(body)


def test_an_integral_float_and_an_int_hash_alike() -> None:
    assert canonical_json({"b": 2.0, "a": [1.5, Decimal("3"), Decimal("0.25")]}) == '{"a":[1.5,3,0.25],"b":2}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), Decimal("NaN"), {1, 2}, object()])
def test_values_without_a_canonical_form_are_refused(value: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        canonical_json({"value": value})


TAMPERED_FIELDS: dict[str, Any] = {
    "type": "mark_false_alarm",
    "actor": "u-someone-else",
    "role": "duty",
    "at": T0 + 1,
    "before": {"status": "raised", "level": "blue"},
    "after": {"status": "closed", "level": "red"},
    "reason": "false_alarm",
    "data": {"text": "改过的反馈"},
    "source_ip": "203.0.113.9",
    "app": "script",
}


@pytest.mark.parametrize("name", sorted(TAMPERED_FIELDS))
def test_altering_any_field_of_an_event_is_detected_at_that_event(name: str) -> None:
    events = list(HISTORY)
    events[2] = replace(events[2], **{name: TAMPERED_FIELDS[name]})
    report = verify_chain(events)
    assert (report.ok, report.first_bad_seq, report.reason) == (False, 3, "hash_mismatch")
    assert report.checked == 2


def test_altering_an_event_and_resealing_it_breaks_the_next_link() -> None:
    events = list(HISTORY)
    events[2] = replace(events[2], reason="false_alarm").sealed()
    report = verify_chain(events)
    assert (report.first_bad_seq, report.reason) == (4, "broken_link")


def test_altering_the_last_event_and_resealing_it_is_caught_by_the_anchor() -> None:
    events = [*HISTORY[:-1], replace(HISTORY[-1], actor="u-forger").sealed()]
    assert verify_chain(events).ok
    report = verify_chain(events, head=ChainHead.of(HISTORY[-1]))
    assert (report.first_bad_seq, report.reason) == (5, "head_mismatch")


def test_a_rewritten_prev_hash_is_a_broken_link() -> None:
    events = list(HISTORY)
    events[1] = replace(events[1], prev_hash=GENESIS_HASH)
    assert (verify_chain(events).first_bad_seq, verify_chain(events).reason) == (2, "broken_link")


@pytest.mark.parametrize("index", [0, 2, 3])
def test_deleting_an_event_leaves_a_gap(index: int) -> None:
    events = HISTORY[:index] + HISTORY[index + 1 :]
    report = verify_chain(events)
    assert (report.ok, report.first_bad_seq, report.reason) == (False, index + 1, "seq_gap")


def test_deleting_the_last_event_is_caught_only_by_the_anchor() -> None:
    events = HISTORY[:-1]
    assert verify_chain(events).ok
    report = verify_chain(events, head=ChainHead.of(HISTORY[-1]))
    assert (report.ok, report.first_bad_seq, report.reason) == (False, 5, "head_mismatch")


def test_deleting_and_rechaining_the_rest_is_caught_by_the_anchor() -> None:
    rewritten = chain([*HISTORY[:2], *HISTORY[3:]])
    assert verify_chain(rewritten).ok
    assert verify_chain(rewritten, head=ChainHead.of(HISTORY[-1])).reason == "head_mismatch"


@pytest.mark.parametrize(("first", "second"), [(0, 1), (1, 3), (3, 4)])
def test_swapping_two_events_is_out_of_order(first: int, second: int) -> None:
    events = list(HISTORY)
    events[first], events[second] = events[second], events[first]
    report = verify_chain(events)
    assert (report.ok, report.first_bad_seq, report.reason) == (False, first + 1, "seq_out_of_order")


def test_an_event_of_another_subject_is_refused() -> None:
    events = [*HISTORY[:2], replace(HISTORY[2], subject_id="WOTHER").sealed()]
    assert verify_chain(events).reason == "subject_mismatch"


def test_the_chain_survives_a_dynamodb_round_trip() -> None:
    def as_dynamodb(value: Any) -> Any:
        if isinstance(value, float | int) and not isinstance(value, bool):
            return Decimal(str(value))
        if isinstance(value, dict):
            return {key: as_dynamodb(item) for key, item in value.items()}
        if isinstance(value, list):
            return [as_dynamodb(item) for item in value]
        return value

    stored = [AuditEvent.from_dict(as_dynamodb(json.loads(json.dumps(e.to_dict())))) for e in HISTORY]
    assert verify_chain(stored, head=ChainHead.of(HISTORY[-1])).ok


def test_chain_numbers_links_and_seals_drafts_and_continues_an_existing_chain() -> None:
    drafts = [
        AuditEvent("DEV-HC01-T1", 0, "setpoint_changed", "u-admin", "admin", T0, {"hh": 90}, {"hh": 92}),
        AuditEvent("DEV-HC01-T1", 0, "setpoint_changed", "u-admin", "admin", T0 + 1, {"hh": 92}, {"hh": 95}),
    ]
    first = chain(drafts)
    assert [event.seq for event in first] == [1, 2]
    assert verify_chain(first).ok
    more = chain(drafts, after=first[-1])
    assert [event.seq for event in more] == [3, 4]
    assert verify_chain(more, start=ChainHead.of(first[-1])).ok
    assert verify_chain(first + more).ok


def test_a_chain_holds_one_subject() -> None:
    mixed = [replace(HISTORY[0], subject_id="A"), replace(HISTORY[1], subject_id="B")]
    with pytest.raises(ValueError, match="one chain per subject"):
        chain(mixed)
    with pytest.raises(ValueError, match="cannot follow"):
        next_event(HISTORY[-1], **{**_fields(HISTORY[0]), "subject_id": "WOTHER"})


def test_an_empty_chain_is_intact_unless_the_anchor_says_otherwise() -> None:
    assert verify_chain([]).ok
    assert verify_chain([], head=ChainHead()).ok
    report = verify_chain([], head=ChainHead.of(HISTORY[0]))
    assert (report.first_bad_seq, report.reason) == (1, "head_mismatch")


def _fields(event: AuditEvent) -> dict[str, Any]:
    names = ("subject_id", "type", "actor", "role", "at", "before", "after", "reason", "data")
    return {name: getattr(event, name) for name in names}
