"""A world for the warning use cases (`WarningActions`, `SystemActions`) over the shared fakes: warnings stored as
the ingest stores them (a chained raise), the actors of `test_lifecycle.py` (enterprise E1, regulator of hazchem,
area TEDA, duty, emergency, admin, system), a warning in their scopes and one out of them, and a way to drive a
warning to any status through the real actions. Imported by `test_warning_actions.py` and `test_access_matrix.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chalicelib.domain.catalog import build_policy
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.lifecycle import (
    Acknowledge,
    Action,
    ActionType,
    Actor,
    Archive,
    ClearReason,
    ConfirmClosure,
    ContactChannel,
    ContactOutcome,
    Escalate,
    EscalationTier,
    IssueSupervision,
    MarkFalseAlarm,
    Reassign,
    RecordContact,
    RecordInspection,
    RejectClear,
    Remind,
    RequestClear,
    Role,
    StartDisposal,
    VerificationOutcome,
    Verify,
)
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from chalicelib.services.fakes import (
    FakeEvidence,
    FakeExecutions,
    FakeUsers,
    FakeWarningListings,
    FakeWarnings,
)
from chalicelib.services.ports import UserAccount
from chalicelib.services.warning_actions import WarningActions, WarningStanding, evidence_prefix
from chalicelib.services.workflow import WorkflowTimers
from tests.unit.test_lifecycle import DUTY, ENTERPRISE, T0, make_record

POLICY = build_policy({})

NOW = T0 + 60
# in the scope of every scoped actor (enterprise E1, regulator of hazchem, area TEDA); red: the bureau may act
IN_SCOPE = make_record(Level.RED, warning_id="WIN")
# another enterprise, another sector, another area
OUT_OF_SCOPE = make_record(
    Level.RED, warning_id="WOUT", enterprise_id="E2", sector=Sector.FIRE, area_codes=("DJ",)
)
ENTERPRISE_E2 = Actor(user_id="u-ent-e2", role=Role.ENTERPRISE, name="赵工", enterprise_id="E2")
COLLEAGUES = (
    UserAccount(username="colleague-E1", role=Role.ENTERPRISE, name="王工", enterprise_id="E1"),
    UserAccount(username="colleague-E2", role=Role.ENTERPRISE, name="钱工", enterprise_id="E2"),
    UserAccount(username="retired-E1", role=Role.ENTERPRISE, name="孙工", enterprise_id="E1", enabled=False),
    UserAccount(username="duty-2", role=Role.DUTY, name="值班员乙"),
)


@dataclass(frozen=True)
class Query:
    """A listing query (`WarningFilter`), as the API's `WarningQuery` gives it."""

    status: Sequence[WarningStatus] | None = None
    level: Sequence[str] | None = None
    sector: Sequence[Sector] | None = None
    area: Sequence[str] | None = None
    overdue: bool | None = None
    open: bool | None = None
    limit: int = 50
    cursor: str | None = None


class World:
    """The warning actions over the fakes, with the workflow's timers on fake executions; the clock at `now`."""

    def __init__(self, *records: WarningRecord, evidence: bool = True, users: bool = True) -> None:
        self.now = NOW
        self.warnings = FakeWarnings(deadlines=POLICY.deadlines, clock=lambda: self.now)
        for record in records:
            assert self.warnings.create(record)
        self.listings = FakeWarningListings(self.warnings)
        self.users = FakeUsers(COLLEAGUES)
        self.evidence = FakeEvidence()
        self.executions = FakeExecutions()
        self.actions = WarningActions(
            self.warnings,
            self.listings,
            POLICY,
            lambda: self.now,
            users=self.users if users else None,
            evidence=self.evidence if evidence else None,
            timers=WorkflowTimers(self.executions, self.warnings, lambda: self.now),
        )

    def act(self, actor: Actor, warning_id: str, action: Action) -> WarningStanding:
        return self.actions.act(actor, warning_id, action)

    def record(self, warning_id: str) -> WarningRecord:
        return self.warnings.records[warning_id]

    def event_types(self, warning_id: str) -> list[str]:
        return [event.type for event in self.warnings.log(warning_id).events]

    def drive(self, warning_id: str, status: WarningStatus) -> WarningRecord:
        """The warning taken to `status` by its enterprise (and the duty centre's confirmation)."""
        record = self.record(warning_id)
        owner = ENTERPRISE if record.enterprise_id == "E1" else ENTERPRISE_E2
        path: list[tuple[WarningStatus, Actor, Action]] = [
            (WarningStatus.ACKNOWLEDGED, owner, Acknowledge()),
            (WarningStatus.VERIFIED, owner, Verify(outcome=VerificationOutcome.REAL)),
            (WarningStatus.DISPOSING, owner, StartDisposal(note="关阀")),
            (WarningStatus.CLEAR_REQUESTED, owner, RequestClear(reason=ClearReason.DEVICE_FAULT, text="更换探头")),
            (WarningStatus.CLOSED, DUTY, ConfirmClosure()),
        ]
        for reached, actor, action in path:
            if record.status is status:
                break
            record = self.act(actor, warning_id, action).record
            assert record.status is reached
        assert record.status is status
        return record


def recorded(count: int) -> list[WarningRecord]:
    """`count` red warnings of E1 raised a minute apart, the oldest first."""
    return [
        make_record(Level.RED, warning_id=f"W{i:03d}", raised_at=T0 + 60 * i, updated_at=T0 + 60 * i)
        for i in range(count)
    ]


STATUS_FOR: dict[ActionType, WarningStatus] = {
    ActionType.VERIFY: WarningStatus.ACKNOWLEDGED,
    ActionType.START_DISPOSAL: WarningStatus.VERIFIED,
    ActionType.REQUEST_CLEAR: WarningStatus.DISPOSING,
    ActionType.CONFIRM_CLOSURE: WarningStatus.CLEAR_REQUESTED,
    ActionType.REJECT_CLEAR: WarningStatus.CLEAR_REQUESTED,
    ActionType.ARCHIVE: WarningStatus.CLOSED,
}
"""The status in which an action can be taken (raised for the rest)."""


def sample_action(action_type: ActionType, record: WarningRecord, now: float = NOW) -> Action:
    """A valid action of each type for `record` (evidence under the warning, a colleague of its enterprise)."""
    photo = f"{evidence_prefix(record)}photo-1.jpg"
    samples: dict[ActionType, Action] = {
        ActionType.ACKNOWLEDGE: Acknowledge(),
        ActionType.VERIFY: Verify(outcome=VerificationOutcome.REAL, note="现场确认液位偏高"),
        ActionType.START_DISPOSAL: StartDisposal(note="启动倒罐"),
        ActionType.REQUEST_CLEAR: RequestClear(
            reason=ClearReason.DEVICE_FAULT, text="更换探头", evidence_keys=(photo,)
        ),
        ActionType.CONFIRM_CLOSURE: ConfirmClosure(note="视频核实"),
        ActionType.REJECT_CLEAR: RejectClear(note="照片不清晰，请补充"),
        ActionType.RECORD_CONTACT: RecordContact(channel=ContactChannel.PHONE, outcome=ContactOutcome.REACHED),
        ActionType.ESCALATE: Escalate(tier=EscalationTier.REGULATOR_AREA),
        ActionType.MARK_FALSE_ALARM: MarkFalseAlarm(note="视频确认为探头受潮"),
        ActionType.REASSIGN: Reassign(assignee_id=f"colleague-{record.enterprise_id}"),
        ActionType.RECORD_INSPECTION: RecordInspection(findings="现场已处置", evidence_keys=(photo,)),
        ActionType.ISSUE_SUPERVISION: IssueSupervision(order="限期整改联锁", deadline=now + 86_400),
        ActionType.ARCHIVE: Archive(),
        ActionType.REMIND: Remind(slot=now),
    }
    return samples[action_type]
