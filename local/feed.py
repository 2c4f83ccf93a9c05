"""The live warning feed of the local demo: what the audience consoles read, and the SMS that went out.

A background thread polls the five audience queues (the SQS queues subscribed to WarningTopic with an `audience`
filter, raw delivery), turns every message into one `FeedEntry` per warning change (deduplicated by warning id,
change kind and level across the queues, remembering which queues received it), and matches the SMS the platform
sent (moto keeps them instead of sending) to the change by their text. An entry is handed to `on_entry` once a
whole round of polling has passed since it was first seen (SNS fans out to every queue in one publish, so by then
every queue's copy is in) and its SMS have all been seen, or after `sms_wait_s` at the latest, in arrival order.

The disposal workflow's escalations and reminders reach the same queues (EscalationTopic, same `audience` filter;
the body's `change` is a string such as `escalation_tier1` or `reminder`, docs/disposal-workflow.md §4.3). Each is
one `EscalationEntry` (deduplicated by warning id, change and the state's entry time). The workflow queues a
delivery job for it at the same moment; the deliver function texts the tier's audiences and records a receipt per
recipient and channel on the warning (docs/delivery.md "Receipts"). The feed reads those receipts (`receipts`,
warning id -> rows) and counts the escalation's SMS from its own job's receipts (`escalation_sms`), never by
guessing from phone numbers and times. An escalation is handed to `on_escalation` once its receipts stopped
changing for a second, or after `escalation_wait_s` at the latest; a reminder after one round. One shown before its
receipts came (the deliver function is behind: locally one consumer, on AWS the queue's backlog) is handed to
`on_delivered` once they came and stopped changing, or after `delivery_wait_s`. Escalations do not hold up the
changes behind them, nor the reverse.

`ExecutionWatcher` polls the state machine's executions and reports each one that ended (archived, handed over,
failed) with its number of state transitions, the unit Step Functions bills.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from local.seed import SeedRegistry
from local.sfn import execution_history

__all__ = [
    "AUDIENCE_QUEUES",
    "EscalationEntry",
    "ExecutionEnd",
    "ExecutionWatcher",
    "FeedEntry",
    "FeedStats",
    "WarningFeed",
    "escalation_sms",
    "phone_audiences",
    "state_transitions",
]

logger = logging.getLogger(__name__)

AUDIENCE_QUEUES: Mapping[str, str] = {
    "enterprise": "EnterpriseQueue",
    "duty": "DutyQueue",
    "regulator": "RegulatorQueue",
    "area": "AreaQueue",
    "emergency": "EmergencyQueue",
}
"""Audience -> the template's logical id of its queue."""

UNKNOWN_AUDIENCE = "unknown"
_MAX_RECEIVE = 10
_SMS_SETTLE_S = 1.0  # an escalation's SMS go out in one loop: a second without more means they are all in


def phone_audiences(registry: SeedRegistry) -> dict[str, str]:
    """Phone number -> audience: enterprise contacts are `enterprise`, everyone else is their role."""
    audiences: dict[str, str] = {person.phone: person.role for person in registry.people}
    for enterprise in registry.enterprises:
        for contact in enterprise.contacts:
            audiences[contact.phone] = "enterprise"
    return audiences


@dataclass
class FeedEntry:
    """One warning change as the consoles saw it."""

    change: dict[str, Any]  # WarningChange.to_dict()
    sms: str
    routed: tuple[str, ...]  # the audiences the platform addressed (the message's `audience` attribute)
    planned_sms: Counter[str]  # recipients per audience, from the message body
    first_seen: float
    first_round: int
    delivered_to: set[str] = field(default_factory=set)  # the audience queues that received it
    sms_sent: Counter[str] = field(default_factory=Counter)  # SMS actually sent with this text, per audience
    shown: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return entry_key(self.change)

    @property
    def kind(self) -> str:
        return str(self.change.get("kind", ""))

    @property
    def level(self) -> str:
        return str(self.change.get("level", ""))

    @property
    def routing_matches(self) -> bool:
        """Every addressed audience's queue received the change, and no other queue did."""
        return set(self.routed) == self.delivered_to


def entry_key(change: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(change.get("warning_id")), str(change.get("kind")), str(change.get("level"))


WORKFLOW_MESSAGE_TYPES = frozenset({"escalation", "reminder"})


@dataclass
class EscalationEntry:
    """One escalation or reminder the disposal workflow published, as the consoles saw it."""

    body: dict[str, Any]  # the message body (docs/disposal-workflow.md §4.3)
    routed: tuple[str, ...]
    first_seen: float
    first_round: int
    ordinal: int  # the n-th message of this change for this warning (reminders repeat)
    occurrence: int = 0  # earlier escalations of this warning, stage, tier and kind (one per due version)
    delivered_to: set[str] = field(default_factory=set)
    sms_sent: Counter[str] = field(default_factory=Counter)  # from the delivery receipts of its job
    receipts_seen: tuple[tuple[str, str, str], ...] = ()  # (channel, recipient, outcome) of its job's receipts
    last_sms_at: float | None = None  # time.monotonic() when its receipts last changed
    shown: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return escalation_key(self.body)

    @property
    def warning_id(self) -> str:
        return str(self.body.get("warning_id", ""))

    @property
    def change(self) -> str:
        return str(self.body.get("change", ""))

    @property
    def is_reminder(self) -> bool:
        return self.body.get("type") == "reminder"

    @property
    def tier(self) -> int:
        """1..3 for an escalation, 0 for a reminder."""
        try:
            return int(self.body.get("tier") or 0)
        except (TypeError, ValueError):
            return 0

    @property
    def reason(self) -> str:
        return str(self.body.get("reason", ""))

    @property
    def level(self) -> str:
        return str(self.body.get("level", ""))

    @property
    def enterprise_id(self) -> str:
        return str(self.body.get("enterprise_id", ""))

    @property
    def at(self) -> float:
        """When the workflow's state was entered (epoch seconds; first seen when unreadable)."""
        try:
            return datetime.fromisoformat(str(self.body.get("at")).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return time.time()


def escalation_key(body: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(body.get("warning_id")), str(body.get("change")), str(body.get("at"))


def escalation_group(body: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """Escalations that differ only by due version: warning, stage, tier, escalate/retell."""
    kind = "retell" if body.get("retell") else "escalate"
    return str(body.get("warning_id")), str(body.get("stage")), str(body.get("tier")), kind


def escalation_job_ids(body: Mapping[str, Any], receipts: Sequence[Mapping[str, Any]]) -> list[str]:
    """The delivery jobs of the escalations in the body's group, by due version (`domain.delivery.job_id`:
    `escalation:{warning}:v{version}:{escalate|retell}:{stage}:t{tier}`)."""
    warning_id, stage, tier, kind = escalation_group(body)
    prefix, suffix = f"escalation:{warning_id}:v", f":{kind}:{stage}:t{tier}"
    found = {
        str(row["job_id"])
        for row in receipts
        if str(row.get("job_id", "")).startswith(prefix) and str(row["job_id"]).endswith(suffix)
    }
    return sorted(found, key=lambda job_id: int(job_id[len(prefix) :].split(":", 1)[0] or 0))


def escalation_receipts(
    body: Mapping[str, Any], occurrence: int, receipts: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The receipts of this escalation's own delivery job (the `occurrence`-th of its group)."""
    jobs = escalation_job_ids(body, receipts)
    if occurrence >= len(jobs):
        return []
    return [row for row in receipts if row.get("job_id") == jobs[occurrence]]


def escalation_sms(
    body: Mapping[str, Any], occurrence: int, receipts: Sequence[Mapping[str, Any]]
) -> Counter[str]:
    """The escalation's SMS handed to the provider, per audience, from its job's receipts."""
    return sms_by_audience(escalation_receipts(body, occurrence, receipts))


def sms_by_audience(receipts: Sequence[Mapping[str, Any]]) -> Counter[str]:
    return Counter(
        str(row["audience"]) for row in receipts if row.get("channel") == "sms" and row.get("outcome") == "sent"
    )


@dataclass(frozen=True)
class FeedStats:
    """A consistent snapshot of the feed."""

    entries: tuple[FeedEntry, ...]
    escalations: tuple[EscalationEntry, ...]  # escalations and reminders
    deliveries: Counter[str]  # queue messages received per audience
    sms_by_audience: Counter[str]  # every SMS sent since the feed started, per audience
    other_messages: int  # queue messages that were neither warning changes nor escalations/reminders

    @property
    def sms_total(self) -> int:
        return sum(self.sms_by_audience.values())

    @property
    def raised(self) -> int:
        return sum(1 for entry in self.entries if entry.kind == "raise")

    @property
    def escalations_by_tier(self) -> Counter[int]:
        return Counter(entry.tier for entry in self.escalations if not entry.is_reminder)

    @property
    def reminders(self) -> int:
        return sum(1 for entry in self.escalations if entry.is_reminder)


class WarningFeed:
    """Polls the audience queues and the SMS log in a daemon thread; `stop()` joins it with a timeout."""

    def __init__(
        self,
        sqs: Any,
        queue_urls: Mapping[str, str],
        sms_log: Callable[[], Sequence[tuple[str, str]]],
        phone_audience: Mapping[str, str],
        on_entry: Callable[[FeedEntry], None],
        *,
        on_escalation: Callable[[EscalationEntry], None] | None = None,
        receipts: Callable[[str], Sequence[Mapping[str, Any]]] | None = None,
        on_delivered: Callable[[EscalationEntry], None] | None = None,
        delivery_wait_s: float = 120.0,
        poll_interval: float = 0.25,
        sms_wait_s: float = 2.0,
        escalation_wait_s: float = 8.0,
    ) -> None:
        self._sqs = sqs
        self._queue_urls = dict(queue_urls)
        self._sms_log = sms_log
        self._phone_audience = dict(phone_audience)
        self._on_entry = on_entry
        self._on_escalation = on_escalation
        self._receipts = receipts
        self._on_delivered = on_delivered
        self._delivery_wait_s = delivery_wait_s
        self._delivering: list[EscalationEntry] = []  # shown before their receipts came
        self._poll_interval = poll_interval
        self._sms_wait_s = sms_wait_s
        self._escalation_wait_s = escalation_wait_s

        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str], FeedEntry] = {}
        self._escalations: dict[tuple[str, str, str], EscalationEntry] = {}
        self._pending: list[FeedEntry | EscalationEntry] = []
        self._change_texts: set[str] = set()
        self._groups: Counter[tuple[str, str, str, str]] = Counter()
        self._deliveries: Counter[str] = Counter()
        self._sms_by_text: dict[str, Counter[str]] = {}
        self._sms_by_audience: Counter[str] = Counter()
        self._sms_seen = len(self._read_sms_log() or ())  # SMS sent before the feed started are not ours
        self._other = 0
        self._reminder_copies = 0  # reminder messages received (every queue's copy)
        self._idle_round_at: float | None = None  # when the last round that found nothing started
        self._round = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("feed already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="warning-feed", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling; whatever is still pending is shown now (with the SMS seen so far)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("warning feed did not stop within %.1f s", timeout)
            self._thread = None
        try:
            self._read_new_sms()  # the SMS sent since the last round count for the changes they belong to
            self._read_receipts()  # the last word on what the escalations shown early delivered
        except Exception:
            logger.exception("warning feed: reading the SMS log or delivery receipts failed")
        self._show_ready(force=True)

    def __enter__(self) -> WarningFeed:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------------ observing

    def drained_since(self, since: float) -> bool:
        """A round that started at `since` (time.monotonic) or later found no change or escalation (reminders go on
        while warnings stay open: they do not count), and every change and escalation has been shown."""
        with self._lock:
            idle_at = self._idle_round_at
            waiting = any(not (isinstance(e, EscalationEntry) and e.is_reminder) for e in self._pending)
            return idle_at is not None and idle_at >= since and not waiting

    def stats(self) -> FeedStats:
        with self._lock:
            return FeedStats(
                entries=tuple(self._entries.values()),
                escalations=tuple(self._escalations.values()),
                deliveries=Counter(self._deliveries),
                sms_by_audience=Counter(self._sms_by_audience),
                other_messages=self._other,
            )

    # ------------------------------------------------------------------------------------------------ polling

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                logger.exception("warning feed: polling failed")
            self._stop.wait(self._poll_interval)

    def poll_once(self) -> int:
        """One round: every queue until empty, the SMS log, then show what is ready; messages received."""
        started = time.monotonic()
        with self._lock:
            self._round += 1
        with self._lock:
            told_before = self._story_messages()
        received = sum(self._drain_queue(audience, url) for audience, url in self._queue_urls.items())
        self._read_new_sms()
        self._read_receipts()
        with self._lock:
            self._idle_round_at = started if self._story_messages() == told_before else None
        self._show_ready(force=False)
        return received

    def _story_messages(self) -> int:
        """Messages of changes and escalations received so far (every queue's copy; not reminders or others)."""
        return sum(self._deliveries.values()) - self._other - self._reminder_copies

    def _drain_queue(self, audience: str, url: str) -> int:
        received = 0
        while not self._stop.is_set():
            response = self._sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=_MAX_RECEIVE, WaitTimeSeconds=0, MessageAttributeNames=["All"]
            )
            messages = response.get("Messages", [])
            for message in messages:
                self._accept(audience, message)
            if messages:
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
                self._sqs.delete_message_batch(QueueUrl=url, Entries=entries)
            received += len(messages)
            if len(messages) < _MAX_RECEIVE:
                break
        return received

    def _accept(self, audience: str, message: Mapping[str, Any]) -> None:
        try:
            body = json.loads(message.get("Body", ""))
            change = body["change"]
        except (ValueError, KeyError, TypeError):
            change = None
        if isinstance(change, dict):
            self._accept_change(audience, message, body, change)
        elif isinstance(change, str) and body.get("type") in WORKFLOW_MESSAGE_TYPES and body.get("warning_id"):
            self._accept_escalation(audience, message, body)
        else:
            with self._lock:
                self._deliveries[audience] += 1
                self._other += 1

    def _accept_change(
        self, audience: str, message: Mapping[str, Any], body: Mapping[str, Any], change: dict[str, Any]
    ) -> None:
        key = entry_key(change)
        with self._lock:
            self._deliveries[audience] += 1
            entry = self._entries.get(key)
            if entry is None:
                entry = FeedEntry(
                    change=change,
                    sms=str(body.get("sms", "")),
                    routed=_routed_audiences(message),
                    planned_sms=Counter(str(r.get("audience")) for r in body.get("recipients", ())),
                    first_seen=time.monotonic(),
                    first_round=self._round,
                )
                entry.sms_sent = self._sms_by_text.setdefault(entry.sms, Counter())
                self._entries[key] = entry
                self._change_texts.add(entry.sms)
                self._pending.append(entry)
            entry.delivered_to.add(audience)

    def _accept_escalation(self, audience: str, message: Mapping[str, Any], body: dict[str, Any]) -> None:
        key = escalation_key(body)
        with self._lock:
            self._deliveries[audience] += 1
            self._reminder_copies += int(body.get("type") == "reminder")
            entry = self._escalations.get(key)
            if entry is None:
                ordinal = 1 + sum(1 for other in self._escalations if other[:2] == key[:2])
                group = escalation_group(body)
                entry = EscalationEntry(
                    body=body,
                    routed=_routed_audiences(message),
                    first_seen=time.monotonic(),
                    first_round=self._round,
                    ordinal=ordinal,
                    occurrence=self._groups[group],
                )
                self._groups[group] += 1
                self._escalations[key] = entry
                self._pending.append(entry)
            entry.delivered_to.add(audience)

    def _read_sms_log(self) -> Sequence[tuple[str, str]] | None:
        try:
            return self._sms_log()
        except RuntimeError:  # moto's dict changed size while we copied it: read it next round
            return None

    def _read_new_sms(self) -> None:
        log = self._read_sms_log()
        if log is None:
            return
        with self._lock:
            for phone, text in log[self._sms_seen :]:
                audience = self._phone_audience.get(phone, UNKNOWN_AUDIENCE)
                self._sms_by_text.setdefault(text, Counter())[audience] += 1
                self._sms_by_audience[audience] += 1
            self._sms_seen = max(self._sms_seen, len(log))

    def _read_receipts(self) -> None:
        """The delivery receipts of the warnings with an escalation waiting to be shown (read outside the lock)."""
        if self._receipts is None:
            return
        with self._lock:
            waiting = self._waiting_escalations() + self._delivering
        rows = {warning_id: self._receipts(warning_id) for warning_id in {e.warning_id for e in waiting}}
        now = time.monotonic()
        with self._lock:
            for entry in waiting:
                own = escalation_receipts(entry.body, entry.occurrence, rows[entry.warning_id])
                seen = tuple(sorted((str(r["channel"]), str(r["recipient"]), str(r["outcome"])) for r in own))
                if seen != entry.receipts_seen:
                    entry.receipts_seen = seen
                    entry.sms_sent = sms_by_audience(own)
                    entry.last_sms_at = now

    def _show_ready(self, *, force: bool) -> None:
        """Hand ready entries to their callback (outside the lock): changes in arrival order, each escalation as
        soon as it is ready."""
        now = time.monotonic()
        ready: list[FeedEntry | EscalationEntry] = []
        with self._lock:
            change_waiting = False
            for entry in self._pending:
                if isinstance(entry, FeedEntry) and change_waiting:
                    continue
                if force or self._is_ready(entry, now):
                    entry.shown = True
                    ready.append(entry)
                elif isinstance(entry, FeedEntry):
                    change_waiting = True
            self._pending = [entry for entry in self._pending if not entry.shown]
            for entry in ready:
                if isinstance(entry, EscalationEntry) and not entry.is_reminder and not entry.receipts_seen:
                    self._delivering.append(entry)
            delivered = [e for e in self._delivering if force or self._delivered(e, now)]
            self._delivering = [e for e in self._delivering if e not in delivered]
        for entry in ready:
            try:
                if isinstance(entry, FeedEntry):
                    self._on_entry(entry)
                elif self._on_escalation is not None:
                    self._on_escalation(entry)
            except Exception:
                logger.exception("warning feed: showing %s failed", entry.key)
        if self._on_delivered is not None:
            for escalation in delivered:
                try:
                    self._on_delivered(escalation)
                except Exception:
                    logger.exception("warning feed: showing the deliveries of %s failed", escalation.key)

    def _delivered(self, entry: EscalationEntry, now: float) -> bool:
        """Its receipts came and stopped changing, or it waited `delivery_wait_s` (under the lock)."""
        changed = entry.last_sms_at
        settled = bool(entry.receipts_seen) and changed is not None and now - changed >= _SMS_SETTLE_S
        return settled or now - entry.first_seen >= self._delivery_wait_s

    def _is_ready(self, entry: FeedEntry | EscalationEntry, now: float) -> bool:
        """A whole round has passed since it was first seen (every queue's copy is in), and its SMS are in."""
        next_round = self._round > entry.first_round
        if isinstance(entry, EscalationEntry):
            sms_settled = entry.last_sms_at is not None and now - entry.last_sms_at >= _SMS_SETTLE_S
            timed_out = now - entry.first_seen >= self._escalation_wait_s
            return next_round and (entry.is_reminder or sms_settled or timed_out)
        sms_complete = sum(entry.sms_sent.values()) >= sum(entry.planned_sms.values())
        return (next_round and sms_complete) or now - entry.first_seen >= self._sms_wait_s

    def _waiting_escalations(self) -> list[EscalationEntry]:
        """Escalations not shown yet, oldest first (under the lock)."""
        return [e for e in self._pending if isinstance(e, EscalationEntry) and not e.is_reminder]


def _routed_audiences(message: Mapping[str, Any]) -> tuple[str, ...]:
    attribute = message.get("MessageAttributes", {}).get("audience", {})
    try:
        audiences = json.loads(attribute.get("StringValue", "[]"))
    except ValueError:
        return ()
    return tuple(str(audience) for audience in audiences) if isinstance(audiences, list) else ()


# --------------------------------------------------------------------------------------------------- executions


@dataclass(frozen=True)
class ExecutionEnd:
    """A disposal execution that is no longer running."""

    name: str
    warning_id: str
    status: str  # SUCCEEDED / FAILED / TIMED_OUT / ABORTED
    archived: bool  # the archive timer: it woke the app to archive its closed warning (`due_kind` "archive")
    stopped_at: float  # epoch seconds
    transitions: int  # history events whose type ends with "StateEntered"
    level: str
    error: str = ""


def state_transitions(history: Sequence[Mapping[str, Any]]) -> int:
    """State transitions of an execution (what Standard workflows bill): its `...StateEntered` events."""
    return sum(1 for event in history if str(event.get("type", "")).endswith("StateEntered"))


class ExecutionWatcher:
    """Polls the executions of the disposal state machine started since `since` (epoch seconds) in a daemon
    thread and hands each one that ended to `on_end`, once."""

    def __init__(
        self,
        sfn: Any,
        state_machine_arn: str,
        on_end: Callable[[ExecutionEnd], None],
        *,
        since: float,
        poll_interval: float = 1.0,
    ) -> None:
        self._sfn = sfn
        self._arn = state_machine_arn
        self._on_end = on_end
        self._since = since
        self._poll_interval = poll_interval
        self._lock = threading.Lock()
        self._ended: dict[str, ExecutionEnd] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="execution-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def ended(self) -> list[ExecutionEnd]:
        with self._lock:
            return list(self._ended.values())

    def executions(self) -> list[dict[str, Any]]:
        """Every execution of the state machine started since `since` (all statuses)."""
        found: list[dict[str, Any]] = []
        request: dict[str, Any] = {"stateMachineArn": self._arn, "maxResults": 1000}
        while True:
            page = self._sfn.list_executions(**request)
            found += [e for e in page.get("executions", []) if e["startDate"].timestamp() >= self._since]
            token = page.get("nextToken")
            if not token:
                return found
            request["nextToken"] = token

    def poll_once(self) -> list[ExecutionEnd]:
        ended: list[ExecutionEnd] = []
        for execution in self.executions():
            name = str(execution["name"])
            with self._lock:
                if execution["status"] == "RUNNING" or name in self._ended:
                    continue
            end = self._describe(execution)
            with self._lock:
                self._ended[name] = end
            ended.append(end)
        for end in ended:
            try:
                self._on_end(end)
            except Exception:
                logger.exception("execution watcher: showing %s failed", end.name)
        return ended

    def _describe(self, execution: Mapping[str, Any]) -> ExecutionEnd:
        arn = str(execution["executionArn"])
        description = self._sfn.describe_execution(executionArn=arn)
        state = _loads_object(description.get("output")) or _loads_object(description.get("input"))
        stopped = description.get("stopDate") or execution.get("stopDate")
        return ExecutionEnd(
            name=str(execution["name"]),
            warning_id=str(state.get("warning_id") or execution["name"]),
            status=str(description["status"]),
            archived=description["status"] == "SUCCEEDED" and state.get("due_kind") == "archive",
            stopped_at=stopped.timestamp() if stopped is not None else time.time(),
            transitions=state_transitions(execution_history(self._sfn, arn)),
            level=str(state.get("level") or ""),
            error=str(description.get("error") or ""),
        )

    def _loop(self) -> None:
        while not self._stop.wait(self._poll_interval):
            try:
                self.poll_once()
            except Exception:
                logger.exception("execution watcher: polling failed")


def _loads_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "null")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
