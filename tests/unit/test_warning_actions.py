"""The warning use cases (`WarningActions`, `SystemActions`) over the shared fakes, in milliseconds: the
lifecycle through the audited path, concurrent writers, timers superseded when the due times move, what each actor
is offered, evidence, reassignment, listings and the wall, the timeline an enterprise sees, and the chain check.
Who may do what where, for every role, is `test_access_matrix.py`.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.api import views
from chalicelib.domain.audit import verify_chain
from chalicelib.domain.errors import Forbidden, InvalidTransition, NotConfigured, ValidationFailed
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.lifecycle import (
    Acknowledge,
    ActionType,
    Actor,
    ClearReason,
    ConfirmClosure,
    ContactChannel,
    ContactOutcome,
    Reassign,
    RecordContact,
    RequestClear,
    Role,
    StartDisposal,
    VerificationOutcome,
    Verify,
)
from chalicelib.domain.warnings import WarningStatus
from chalicelib.services.ports import ConcurrentUpdateError, Origin
from chalicelib.services.warning_actions import SystemActions, evidence_prefix, examined_per_page
from chalicelib.services.workflow import WORKFLOW_ACTOR
from tests.unit.test_lifecycle import ACTORS, ADMIN, DUTY, EMERGENCY, ENTERPRISE, REGULATOR, T0, make_record
from tests.unit.warning_fixtures import IN_SCOPE, NOW, OUT_OF_SCOPE, Query, World, recorded

COLLEAGUE = Actor(user_id="colleague-E1", role=Role.ENTERPRISE, name="王工", enterprise_id="E1")
FROM_THE_APP = Origin(source_ip="203.0.113.7", app="dayingji-app/2.1")


# --- the lifecycle through the audited path --------------------------------------------------------------------


def test_the_enterprise_acknowledges_and_the_audit_chain_says_who_from_where_by_name() -> None:
    world = World(IN_SCOPE)

    standing = world.actions.act(ENTERPRISE, "WIN", Acknowledge(), FROM_THE_APP)

    assert standing.record.status is WarningStatus.ACKNOWLEDGED and standing.record.version == 2
    log = world.warnings.log("WIN")
    assert [e.type for e in log.events] == ["raise", "acknowledge"] and verify_chain(log.events, log.head).ok
    event = log.events[-1]
    assert (event.actor, event.role, event.at) == ("u-ent", "enterprise", NOW)
    assert (event.source_ip, event.app, event.data["actor_name"]) == ("203.0.113.7", "dayingji-app/2.1", "张工")
    assert not standing.overdue.any and standing.due.acknowledge_by == T0 + 300


def test_the_feedback_goes_verify_dispose_and_clear_request_and_the_duty_centre_confirms_the_closure() -> None:
    world = World(IN_SCOPE)
    photo = f"{evidence_prefix(IN_SCOPE)}after.jpg"
    world.act(ENTERPRISE, "WIN", Acknowledge())
    world.act(ENTERPRISE, "WIN", Verify(outcome=VerificationOutcome.REAL))
    world.act(ENTERPRISE, "WIN", StartDisposal(note="倒罐"))

    requested = world.act(
        ENTERPRISE, "WIN", RequestClear(reason=ClearReason.DEVICE_FAULT, text="更换探头", evidence_keys=(photo,))
    )
    closed = world.act(DUTY, "WIN", ConfirmClosure(note="视频核实"))

    assert requested.record.status is WarningStatus.CLEAR_REQUESTED  # red: the duty centre confirms
    assert requested.record.details["clear_request"]["evidence_keys"] == [photo]
    assert closed.record.status is WarningStatus.CLOSED and closed.record.details["closure"]["confirmed"]
    assert world.event_types("WIN")[1:] == [
        "acknowledge",
        "verify",
        "start_disposal",
        "request_clear",
        "confirm_closure",
    ]


def test_a_blue_warning_closes_on_the_enterprises_report_without_a_confirmation() -> None:
    blue = replace(make_record(Level.BLUE, warning_id="WBLUE"), reading_normal=True)
    world = World(blue)
    world.act(ENTERPRISE, "WBLUE", Acknowledge())
    world.act(ENTERPRISE, "WBLUE", Verify(outcome=VerificationOutcome.FALSE_ALARM))

    closed = world.act(ENTERPRISE, "WBLUE", RequestClear(reason=ClearReason.FALSE_ALARM, text="探头受潮误报"))

    assert closed.record.status is WarningStatus.CLOSED and not closed.record.details["closure"]["confirmed"]


def test_evidence_cited_from_outside_the_warning_is_422_and_writes_nothing() -> None:
    world = World(IN_SCOPE, OUT_OF_SCOPE)
    world.drive("WIN", WarningStatus.DISPOSING)
    chain = world.event_types("WIN")
    elsewhere = f"{evidence_prefix(OUT_OF_SCOPE)}theirs.jpg"

    with pytest.raises(ValidationFailed) as refused:
        world.act(
            ENTERPRISE,
            "WIN",
            RequestClear(reason=ClearReason.DEVICE_FAULT, text="更换", evidence_keys=(elsewhere,)),
        )

    assert refused.value.code == "evidence_outside_warning" and world.event_types("WIN") == chain


def test_an_action_the_status_does_not_allow_is_a_409_and_writes_nothing() -> None:
    world = World(IN_SCOPE)

    with pytest.raises(InvalidTransition) as refused:
        world.act(DUTY, "WIN", ConfirmClosure())

    assert refused.value.code == "wrong_status" and world.event_types("WIN") == ["raise"]


def test_the_emergency_bureau_confirms_a_red_closure() -> None:
    world = World(IN_SCOPE)
    world.drive("WIN", WarningStatus.CLEAR_REQUESTED)

    assert world.act(EMERGENCY, "WIN", ConfirmClosure()).record.status is WarningStatus.CLOSED


def test_the_workflow_records_what_fell_due_through_the_same_path_by_the_system_actor() -> None:
    world = World(IN_SCOPE)

    record = SystemActions(world.actions).act(
        WORKFLOW_ACTOR, "WIN", {"type": "escalate", "tier": 1, "stage": "acknowledge"}
    )

    assert record.details["escalation_tier"] == 1
    event = world.warnings.log("WIN").events[-1]
    assert (event.type, event.actor, event.role, event.data["actor_name"]) == (
        "escalate",
        "workflow",
        "system",
        "处置时限跟踪",
    )


# --- concurrent writers ------------------------------------------------------------------------------------------


def test_of_two_concurrent_acknowledges_exactly_one_wins_and_the_other_is_a_409() -> None:
    world = World(IN_SCOPE)
    world.warnings.race(lambda: world.act(COLLEAGUE, "WIN", Acknowledge()))  # lands between read and save

    with pytest.raises(InvalidTransition) as lost:
        world.act(ENTERPRISE, "WIN", Acknowledge())

    assert lost.value.code == "wrong_status"
    events = world.warnings.log("WIN").events
    assert [(e.type, e.actor) for e in events] == [("raise", "engine"), ("acknowledge", "colleague-E1")]


def test_an_action_that_lost_its_race_decides_again_on_what_the_other_writer_left() -> None:
    world = World(IN_SCOPE)
    contact = RecordContact(channel=ContactChannel.PHONE, outcome=ContactOutcome.REACHED)
    world.warnings.race(lambda: world.act(DUTY, "WIN", contact))

    standing = world.act(ENTERPRISE, "WIN", Acknowledge())

    assert standing.record.details["contact_count"] == 1 and standing.record.version == 3
    assert world.event_types("WIN") == ["raise", "record_contact", "acknowledge"]


def test_an_action_that_never_wins_its_race_is_a_concurrent_update_and_writes_nothing() -> None:
    world = World(IN_SCOPE)
    world.warnings.race(times=4)

    with pytest.raises(ConcurrentUpdateError):
        world.act(ENTERPRISE, "WIN", Acknowledge())

    assert world.event_types("WIN") == ["raise"]


# --- timers ------------------------------------------------------------------------------------------------------


def test_an_action_that_moves_the_due_times_arms_the_next_timer_and_stops_the_one_it_supersedes() -> None:
    world = World(IN_SCOPE)

    world.act(ENTERPRISE, "WIN", Acknowledge())  # no more reminders: the next due time moves

    [(name, payload)] = world.executions.started
    assert (name, payload["due_version"], payload["due_kind"]) == ("WIN-2", 2, "verify")
    assert world.executions.stopped == ["WIN-1"]


def test_an_action_that_leaves_the_due_times_arms_nothing() -> None:
    world = World(IN_SCOPE)

    world.act(DUTY, "WIN", RecordContact(channel=ContactChannel.VIDEO, outcome=ContactOutcome.NO_ANSWER))

    assert world.executions.started == [] and world.executions.stopped == []


def test_the_workflows_own_records_arm_no_timer_it_arms_its_next_one_itself() -> None:
    world = World(IN_SCOPE)

    SystemActions(world.actions).act(WORKFLOW_ACTOR, "WIN", {"type": "remind", "slot": T0 + 120})

    assert world.executions.started == []


def test_a_timer_that_cannot_be_armed_leaves_the_action_done_for_the_sweeper_to_repair() -> None:
    world = World(IN_SCOPE)
    world.executions.fail("start")

    standing = world.act(ENTERPRISE, "WIN", Acknowledge())

    assert standing.record.status is WarningStatus.ACKNOWLEDGED and world.executions.started == []


# --- one warning: what each actor is offered ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "offered"),
    [
        (Role.ENTERPRISE, (ActionType.ACKNOWLEDGE, ActionType.REASSIGN)),
        (
            Role.DUTY,
            (ActionType.RECORD_CONTACT, ActionType.ESCALATE, ActionType.MARK_FALSE_ALARM, ActionType.REASSIGN),
        ),
        (Role.REGULATOR, (ActionType.RECORD_INSPECTION, ActionType.ISSUE_SUPERVISION)),
        (Role.EMERGENCY, (ActionType.ESCALATE,)),
        (Role.ADMIN, ()),
    ],
)
def test_the_detail_offers_each_actor_what_it_may_do_now(role: Role, offered: tuple[ActionType, ...]) -> None:
    world = World(IN_SCOPE)

    history = world.actions.detail(ACTORS[role], "WIN")

    assert history.permitted == offered
    assert [e.type for e in history.log.events] == ["raise"] and history.log.engine_log == []


def test_after_a_clear_request_the_duty_centre_is_offered_its_decisions_and_the_enterprise_nothing_new() -> None:
    world = World(IN_SCOPE)
    world.drive("WIN", WarningStatus.CLEAR_REQUESTED)

    assert world.actions.detail(DUTY, "WIN").permitted[:2] == (ActionType.CONFIRM_CLOSURE, ActionType.REJECT_CLEAR)
    assert world.actions.detail(ENTERPRISE, "WIN").permitted == (ActionType.REASSIGN,)


# --- evidence ----------------------------------------------------------------------------------------------------


def test_an_evidence_upload_is_a_presigned_put_for_a_fresh_key_under_the_warning() -> None:
    world = World(IN_SCOPE)

    ticket = world.actions.evidence_upload(REGULATOR, "WIN", "image/png")

    assert ticket.key.startswith("evidence/E1/WIN/") and ticket.key.endswith(".png")
    assert (ticket.content_type, ticket.expires_in) == ("image/png", 300)
    assert world.evidence.issued == [(ticket.key, "image/png", 300)] and ticket.key in ticket.url
    assert world.actions.evidence_upload(REGULATOR, "WIN", "image/png").key != ticket.key


def test_a_closed_warning_takes_no_more_evidence() -> None:
    world = World(IN_SCOPE)
    world.drive("WIN", WarningStatus.CLOSED)

    with pytest.raises(InvalidTransition) as refused:
        world.actions.evidence_upload(ENTERPRISE, "WIN", "image/jpeg")

    assert refused.value.code == "warning_closed" and world.evidence.issued == []


def test_without_an_evidence_store_an_upload_is_not_configured() -> None:
    world = World(IN_SCOPE, evidence=False)

    with pytest.raises(NotConfigured):
        world.actions.evidence_upload(ENTERPRISE, "WIN", "image/jpeg")


# --- reassignment ------------------------------------------------------------------------------------------------


def test_a_reassignment_records_the_directorys_name_for_a_colleague_of_the_same_enterprise() -> None:
    world = World(IN_SCOPE)

    standing = world.act(DUTY, "WIN", Reassign(assignee_id="colleague-E1", assignee_name="随便写"))

    assignee = standing.record.details["assignee"]
    assert (assignee["id"], assignee["assignee_name"]) == ("colleague-E1", "王工")


@pytest.mark.parametrize("assignee", ["colleague-E2", "retired-E1", "duty-2", "nobody"])
def test_a_reassignment_to_anyone_but_an_enabled_colleague_is_the_same_422(assignee: str) -> None:
    world = World(IN_SCOPE)

    with pytest.raises(ValidationFailed) as refused:
        world.act(ENTERPRISE, "WIN", Reassign(assignee_id=assignee))

    assert refused.value.code == "assignee_not_in_enterprise" and world.event_types("WIN") == ["raise"]


def test_the_role_and_scope_checks_come_before_the_assignee_is_looked_up() -> None:
    world = World(OUT_OF_SCOPE)

    with pytest.raises(Forbidden):
        world.act(REGULATOR, "WOUT", Reassign(assignee_id="colleague-E2"))
    assert world.users.calls["user"] == 0


def test_without_a_user_directory_a_reassignment_is_not_configured() -> None:
    world = World(IN_SCOPE, users=False)

    with pytest.raises(NotConfigured):
        world.act(DUTY, "WIN", Reassign(assignee_id="colleague-E1"))


# --- listings and the wall ---------------------------------------------------------------------------------------


def test_the_newest_is_listed_first_and_pages_follow_the_cursor_without_repeating_or_skipping() -> None:
    world = World(*recorded(5))
    seen: list[str] = []
    cursor = None

    for _ in range(3):
        page = world.actions.list_warnings(DUTY, Query(limit=2, cursor=cursor))
        seen += [standing.record.warning_id for standing in page.items]
        cursor = page.next_cursor

    assert seen == ["W004", "W003", "W002", "W001", "W000"] and cursor is None


def test_the_wall_puts_red_first_then_the_oldest_and_flags_what_is_overdue() -> None:
    world = World(
        make_record(Level.ORANGE, warning_id="WORANGE", raised_at=T0 - 7200, updated_at=T0 - 7200),
        make_record(Level.RED, warning_id="WRED-NEW", raised_at=T0, updated_at=T0),
        make_record(Level.RED, warning_id="WRED-OLD", raised_at=T0 - 3600, updated_at=T0 - 3600),
    )

    page = world.actions.wall(DUTY, Query())

    assert [s.record.warning_id for s in page.items] == ["WRED-OLD", "WRED-NEW", "WORANGE"]
    assert [s.overdue.acknowledge for s in page.items] == [True, False, True]


def test_a_closed_warning_leaves_the_wall_and_the_open_listing_but_stays_in_the_history() -> None:
    world = World(IN_SCOPE, replace(IN_SCOPE, warning_id="WOTHER"))
    world.drive("WIN", WarningStatus.CLOSED)

    assert [s.record.warning_id for s in world.actions.wall(DUTY, Query()).items] == ["WOTHER"]
    assert [s.record.warning_id for s in world.actions.list_warnings(DUTY, Query(open=True)).items] == ["WOTHER"]
    assert {s.record.warning_id for s in world.actions.list_warnings(DUTY, Query()).items} == {"WIN", "WOTHER"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (Query(level=["red"]), {"WIN", "WOUT"}),
        (Query(level=["yellow"]), {"WYELLOW"}),
        (Query(sector=[Sector.FIRE]), {"WOUT"}),
        (Query(area=["TEDA-S01"]), {"WIN", "WYELLOW"}),
        (Query(status=[WarningStatus.ACKNOWLEDGED]), {"WYELLOW"}),
        (Query(overdue=True), {"WIN", "WOUT"}),
        (Query(overdue=False), {"WYELLOW"}),
    ],
)
def test_filters_keep_what_matches_all_of_them(query: Query, expected: set[str]) -> None:
    yellow = make_record(Level.YELLOW, warning_id="WYELLOW", raised_at=NOW, updated_at=NOW)
    world = World(IN_SCOPE, OUT_OF_SCOPE, yellow)
    world.act(ENTERPRISE, "WYELLOW", Acknowledge())
    world.now = T0 + 400  # the reds' acknowledgement (300 s) is overdue

    ids = {s.record.warning_id for s in world.actions.list_warnings(DUTY, query).items}

    assert ids == expected


def test_a_regulators_sector_filter_outside_its_sectors_lists_nothing() -> None:
    world = World(IN_SCOPE, OUT_OF_SCOPE)

    page = world.actions.list_warnings(REGULATOR, Query(sector=[Sector.FIRE]))

    assert page.items == [] and world.listings.calls == {}


def test_a_filter_no_index_serves_reads_a_bounded_page_and_the_cursor_goes_on() -> None:
    world = World(*recorded(80))

    page = world.actions.list_warnings(ADMIN, Query(level=["blue"], limit=1))

    assert page.items == [] and page.next_cursor is not None
    assert world.listings.examined == examined_per_page(1)


def test_a_cursor_that_is_not_one_is_a_422() -> None:
    world = World(IN_SCOPE)

    with pytest.raises(ValidationFailed) as refused:
        world.actions.list_warnings(DUTY, Query(cursor="not-a-cursor"))

    assert refused.value.code == "invalid_cursor"


# --- what an enterprise sees -------------------------------------------------------------------------------------


def test_an_enterprise_sees_staff_in_the_timeline_and_the_details_by_name_and_role_only() -> None:
    world = World(IN_SCOPE)
    world.actions.act(ENTERPRISE, "WIN", Acknowledge(), FROM_THE_APP)
    contact = RecordContact(channel=ContactChannel.PHONE, outcome=ContactOutcome.REACHED)
    world.actions.act(DUTY, "WIN", contact, Origin(source_ip="10.1.2.3", app="duty-console"))

    seen_by_enterprise = views.warning_detail(world.actions.detail(ENTERPRISE, "WIN"), ENTERPRISE)
    seen_by_duty = views.warning_detail(world.actions.detail(DUTY, "WIN"), DUTY)

    staff = {entry.type: entry for entry in seen_by_enterprise.timeline}["record_contact"]
    assert (staff.actor, staff.source_ip, staff.app) == (None, None, None)
    assert (staff.actor_name, staff.role) == ("值班员", "duty")
    own = {entry.type: entry for entry in seen_by_enterprise.timeline}["acknowledge"]
    assert (own.actor, own.source_ip) == ("u-ent", "203.0.113.7")
    assert "by" not in seen_by_enterprise.warning.details["last_contact"]
    duty_view = {entry.type: entry for entry in seen_by_duty.timeline}["record_contact"]
    assert (duty_view.actor, duty_view.source_ip) == ("u-duty", "10.1.2.3")
    assert seen_by_duty.warning.details["last_contact"]["by"] == "u-duty"


# --- the chain check ---------------------------------------------------------------------------------------------


def test_the_chain_check_reports_an_intact_trail() -> None:
    world = World(IN_SCOPE)
    world.drive("WIN", WarningStatus.VERIFIED)

    report = views.report_view(world.actions.verify(DUTY, "WIN"))

    assert (report.ok, report.checked, report.head_seq) == (True, 3, 3)


def test_the_chain_check_finds_an_altered_event_at_its_seq() -> None:
    world = World(IN_SCOPE)
    world.drive("WIN", WarningStatus.VERIFIED)
    events = world.warnings.events["WIN"]
    events[1] = replace(events[1], actor="someone-else")

    report = views.report_view(world.actions.verify(ADMIN, "WIN"))

    assert (report.ok, report.first_bad_seq, report.reason) == (False, 2, "hash_mismatch")


def test_the_chain_check_finds_a_deleted_last_event_against_the_head_kept_with_the_warning() -> None:
    world = World(IN_SCOPE)
    world.drive("WIN", WarningStatus.VERIFIED)
    world.warnings.events["WIN"].pop()

    report = views.report_view(world.actions.verify(DUTY, "WIN"))

    assert (report.ok, report.reason) == (False, "head_mismatch")
