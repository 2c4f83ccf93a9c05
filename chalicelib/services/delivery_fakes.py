"""In-memory fakes of the delivery path's ports (tests, the bench): ledger, receipts, inbox, job queue, SMS."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.domain.delivery import DeliveryJob, inbox_entry_id
from chalicelib.domain.registry import Enterprise, Person
from chalicelib.domain.roles import Role
from chalicelib.services.ports import (
    ClaimOutcome,
    DeliveryKey,
    DeliveryOutcome,
    DeliveryReceipt,
    InboxItem,
    InboxPage,
    SmsMessage,
    SmsReceipt,
)

FINAL = (DeliveryOutcome.SENT.value, DeliveryOutcome.UNKNOWN.value, DeliveryOutcome.REJECTED.value)


@dataclass
class MemoryLedger:
    """The delivery ledger's semantics (`DynamoDeliveryLedger`): claim, lease, settle."""

    rows: dict[DeliveryKey, dict[str, Any]] = field(default_factory=dict)

    def claim(self, key: DeliveryKey, owner: str, now: float, lease_s: float) -> ClaimOutcome:
        row = self.rows.get(key)
        if row is not None:
            if row["status"] in FINAL:
                return ClaimOutcome.DONE
            takeable = row["owner"] == owner or row["status"] != "claimed" or row["at"] < now - lease_s
            if not takeable:
                return ClaimOutcome.BUSY
        self.rows[key] = {"status": "claimed", "owner": owner, "at": now}
        return ClaimOutcome.MINE

    def settle(self, key: DeliveryKey, owner: str, outcome: DeliveryOutcome, now: float) -> None:
        row = self.rows.get(key)
        if row is not None and row["owner"] == owner:
            row.update(status=outcome.value, at=now)

    def status(self, job_id: str, channel: str, recipient: str) -> str | None:
        row = self.rows.get(DeliveryKey.of_job(job_id, channel, recipient))
        return None if row is None else str(row["status"])


@dataclass
class MemoryReceipts:
    by_warning: dict[str, dict[tuple[str, str, str], dict[str, Any]]] = field(default_factory=dict)

    def record(self, warning_id: str, receipt: DeliveryReceipt) -> None:
        rows = self.by_warning.setdefault(warning_id, {})
        key = (receipt.job_id, receipt.channel, receipt.recipient)
        attempts = rows.get(key, {}).get("attempts", 0) + 1
        rows[key] = {**receipt_dict(receipt), "attempts": attempts}

    def of_warning(self, warning_id: str) -> list[dict[str, Any]]:
        return sorted(self.by_warning.get(warning_id, {}).values(), key=lambda row: row["at"])


def receipt_dict(receipt: DeliveryReceipt) -> dict[str, Any]:
    return {
        "job_id": receipt.job_id,
        "kind": receipt.kind,
        "channel": receipt.channel,
        "audience": receipt.audience,
        "recipient": receipt.recipient,
        "name": receipt.name,
        "outcome": receipt.outcome,
        "at": receipt.at,
        "provider": receipt.provider,
        "message_id": receipt.message_id,
        "reason": receipt.reason,
    }


def inbox_item_id(item: InboxItem) -> str:
    return str(inbox_entry_id(item.job_id, item.at))


@dataclass
class MemoryInbox:
    items: dict[tuple[str, str], InboxItem] = field(default_factory=dict)
    fail: int = 0  # the next `fail` puts raise

    def put(self, item: InboxItem) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("inbox down")
        item = replace(item, item_id=inbox_item_id(item))
        self.items.setdefault((item.inbox, item.item_id), item)

    def page(self, inboxes: Sequence[str], after: str | None, limit: int, unread: bool) -> InboxPage:
        found = sorted(
            (i for (inbox, _), i in self.items.items() if inbox in inboxes and (not unread or i.read_at is None)),
            key=lambda i: int(i.item_id),
            reverse=True,
        )
        if after is not None:
            found = [i for i in found if int(i.item_id) < int(after)]
        page = found[:limit]
        return InboxPage(page, page[-1].item_id if len(found) > limit else None)

    def mark_read(self, inboxes: Sequence[str], item_id: str, at: float) -> InboxItem | None:
        for inbox in inboxes:
            item = self.items.get((inbox, item_id))
            if item is not None:
                if item.read_at is None:
                    item = self.items[(inbox, item_id)] = replace(item, read_at=at)
                return item
        return None

    def of(self, inbox: str) -> list[InboxItem]:
        return [item for (key, _), item in self.items.items() if key == inbox]


@dataclass
class MemoryJobs:
    jobs: list[DeliveryJob] = field(default_factory=list)

    def enqueue(self, jobs: Sequence[DeliveryJob]) -> None:
        self.jobs.extend(jobs)


@dataclass
class ScriptedSms:
    """An SMS channel whose answers are scripted per phone: an exception to raise (once per entry), else a
    receipt."""

    script: dict[str, list[Exception]] = field(default_factory=dict)
    sent: list[SmsMessage] = field(default_factory=list)
    calls: int = 0

    def send(self, message: SmsMessage) -> SmsReceipt:
        self.calls += 1
        failures = self.script.get(message.phone)
        if failures:
            raise failures.pop(0)
        self.sent.append(message)
        return SmsReceipt(provider="fake", message_id=f"M{len(self.sent)}")


@dataclass
class StaticRosters:
    """Everyone of the role is on duty, unless `shifts` names who is for a role (and an enterprise)."""

    people: Sequence[Person] = ()
    shifts: dict[tuple[Role, str | None], Sequence[Person]] = field(default_factory=dict)
    asked: list[tuple[Role, float, str | None]] = field(default_factory=list)

    def on_duty(self, role: Role, at: float, enterprise_id: str | None = None) -> Sequence[Person]:
        self.asked.append((role, at, enterprise_id))
        if (role, enterprise_id) in self.shifts:
            return self.shifts[(role, enterprise_id)]
        if role is Role.ENTERPRISE:
            return []
        return [person for person in self.people if person.role == role.value]


@dataclass
class StaticDirectory:
    enterprises: dict[str, Enterprise] = field(default_factory=dict)
    people_list: Sequence[Person] = ()
    on_enterprise: Callable[[str], None] | None = None

    def enterprise(self, enterprise_id: str) -> Enterprise | None:
        return self.enterprises.get(enterprise_id)

    def people(self) -> Sequence[Person]:
        return self.people_list


@dataclass
class RecordingSms:
    """An SMS channel that records (phone, text); `faults` are raised by the next sends, in order (None: send)."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    faults: list[Exception | None] = field(default_factory=list)

    def send(self, message: SmsMessage) -> SmsReceipt:
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            raise fault
        self.sent.append((message.phone, message.text))
        return SmsReceipt(provider="fake", message_id=f"M{len(self.sent)}")


class DeliverAtOnce:
    """`DeliveryJobs` that hands each job straight to a `DeliveryService` over in-memory fakes (the queue and the
    handler in one step); a job to retry stays in `pending` until `redeliver()` (the queue's retry)."""

    def __init__(self, directory: Any, people: Sequence[Person] | None = None, sms: Any = None) -> None:
        from chalicelib.services.delivery import DeliveryService

        self.sms = sms if sms is not None else RecordingSms()
        self.inbox = MemoryInbox()
        self.ledger = MemoryLedger()
        self.receipts = MemoryReceipts()
        self.jobs: list[DeliveryJob] = []
        self.pending: list[DeliveryJob] = []
        rosters = StaticRosters(list(directory.people()) if people is None else people)
        self.service = DeliveryService(
            self.ledger, self.receipts, rosters, directory, self.sms, self.inbox, clock=lambda: 0.0
        )

    def enqueue(self, jobs: Sequence[DeliveryJob]) -> None:
        for job in jobs:
            self.jobs.append(job)
            self._deliver(job)

    def redeliver(self) -> None:
        pending, self.pending = self.pending, []
        for job in pending:
            self._deliver(job)

    def _deliver(self, job: DeliveryJob) -> None:
        from chalicelib.services.delivery import DeliveryRetryError

        try:
            self.service.deliver(job)
        except DeliveryRetryError:
            self.pending.append(job)

    @property
    def sent(self) -> list[tuple[str, str]]:
        return list(self.sms.sent)
