"""The live warning feed of the local demo: what the audience consoles read, and the SMS that went out.

A background thread polls the five audience queues (the SQS queues subscribed to WarningTopic with an `audience`
filter, raw delivery), turns every message into one `FeedEntry` per warning change (deduplicated by warning id,
change kind and level across the queues, remembering which queues received it), and matches the SMS the platform
sent (moto keeps them instead of sending) to the change by their text. An entry is handed to `on_entry` once a
whole round of polling has passed since it was first seen (SNS fans out to every queue in one publish, so by then
every queue's copy is in) and its SMS have all been seen, or after `sms_wait_s` at the latest, in arrival order.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from local.seed import SeedRegistry

__all__ = ["AUDIENCE_QUEUES", "FeedEntry", "FeedStats", "WarningFeed", "phone_audiences"]

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


@dataclass(frozen=True)
class FeedStats:
    """A consistent snapshot of the feed."""

    entries: tuple[FeedEntry, ...]
    deliveries: Counter[str]  # queue messages received per audience
    sms_by_audience: Counter[str]  # every SMS sent since the feed started, per audience
    other_messages: int  # queue messages that were not warning changes (escalations, unreadable)

    @property
    def sms_total(self) -> int:
        return sum(self.sms_by_audience.values())

    @property
    def raised(self) -> int:
        return sum(1 for entry in self.entries if entry.kind == "raise")


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
        poll_interval: float = 0.25,
        sms_wait_s: float = 2.0,
    ) -> None:
        self._sqs = sqs
        self._queue_urls = dict(queue_urls)
        self._sms_log = sms_log
        self._phone_audience = dict(phone_audience)
        self._on_entry = on_entry
        self._poll_interval = poll_interval
        self._sms_wait_s = sms_wait_s

        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str], FeedEntry] = {}
        self._pending: list[FeedEntry] = []
        self._deliveries: Counter[str] = Counter()
        self._sms_by_text: dict[str, Counter[str]] = {}
        self._sms_by_audience: Counter[str] = Counter()
        self._sms_seen = len(self._read_sms_log() or ())  # SMS sent before the feed started are not ours
        self._other = 0
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
        self._show_ready(force=True)

    def __enter__(self) -> WarningFeed:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------------ observing

    def drained_since(self, since: float) -> bool:
        """A round that started at `since` (time.monotonic) or later found every queue empty, and every change
        has been shown."""
        with self._lock:
            idle_at = self._idle_round_at
            return idle_at is not None and idle_at >= since and not self._pending

    def stats(self) -> FeedStats:
        with self._lock:
            return FeedStats(
                entries=tuple(self._entries.values()),
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
        received = sum(self._drain_queue(audience, url) for audience, url in self._queue_urls.items())
        self._read_new_sms()
        with self._lock:
            self._idle_round_at = started if received == 0 else None
        self._show_ready(force=False)
        return received

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
            key = entry_key(change)
        except (ValueError, KeyError, TypeError):
            with self._lock:
                self._deliveries[audience] += 1
                self._other += 1
            return
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

    def _show_ready(self, *, force: bool) -> None:
        """Hand ready entries to `on_entry` in arrival order (outside the lock)."""
        now = time.monotonic()
        ready: list[FeedEntry] = []
        with self._lock:
            while self._pending:
                entry = self._pending[0]
                complete = self._round > entry.first_round and sum(entry.sms_sent.values()) >= sum(
                    entry.planned_sms.values()
                )
                if not (force or complete or now - entry.first_seen >= self._sms_wait_s):
                    break
                entry.shown = True
                ready.append(self._pending.pop(0))
        for entry in ready:
            try:
                self._on_entry(entry)
            except Exception:
                logger.exception("warning feed: showing %s failed", entry.key)


def _routed_audiences(message: Mapping[str, Any]) -> tuple[str, ...]:
    attribute = message.get("MessageAttributes", {}).get("audience", {})
    try:
        audiences = json.loads(attribute.get("StringValue", "[]"))
    except ValueError:
        return ()
    return tuple(str(audience) for audience in audiences) if isinstance(audiences, list) else ()
