"""Deliver one job (docs/delivery.md): its targets by the domain's rule (`domain/delivery.py`), each sent once
through its channel (SMS provider, inbox), each outcome recorded as a receipt on the warning.

Once only: every (job, recipient, channel) is claimed in the delivery ledger before it is sent and settled after,
so a redelivered message, a job enqueued twice and two consumers racing never text anyone twice.
- a receipt from the provider: sent;
- `SmsRejected` (and a person without a phone): a recorded failure with its reason, never retried;
- `SmsUnavailable(maybe_sent=True)`: unknown, never sent again (a second text is worse than a missing receipt);
- `SmsUnavailable` otherwise, an inbox write that failed, a delivery another live consumer holds: the job's
  message fails (`DeliveryRetry`), the queue brings it back after its visibility timeout, and the deliveries that
  went out are skipped by the ledger; after `maxReceiveCount` receives it goes to the dead-letter queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from chalicelib.domain.delivery import Channel, DeliveryJob, Target, targets
from chalicelib.domain.lifecycle import Role
from chalicelib.domain.registry import Person
from chalicelib.observability import INHERIT, SERVICE, count, swallowed
from chalicelib.services.ports import (
    ClaimOutcome,
    DeliveryKey,
    DeliveryLedger,
    DeliveryOutcome,
    DeliveryReceipt,
    Directory,
    Inbox,
    InboxItem,
    Receipts,
    Rosters,
    SmsChannel,
    SmsMessage,
    SmsRejected,
    SmsUnavailable,
)

logger = Logger(service=SERVICE, child=True, level=INHERIT)

NO_PHONE = "no_phone"
NO_CHANNEL = "no_channel"


class DeliveryRetryError(Exception):
    """Some of the job's deliveries may go out later: fail the job's message so that the queue retries it."""


class MalformedJobError(ValueError):
    """The message is not a delivery job: it fails until it reaches the dead-letter queue."""


@dataclass
class JobReport:
    job_id: str
    sent: int = 0
    skipped: int = 0  # done before (a retry, a duplicate)
    failed: int = 0  # refused for good, recorded
    unknown: int = 0
    retry: list[str] = field(default_factory=list)  # deliveries (channel:recipient) to try again


def parse_job(body: str) -> DeliveryJob:
    try:
        return DeliveryJob.model_validate_json(body)
    except ValidationError as exc:
        raise MalformedJobError(str(exc.errors(include_input=False, include_url=False)[:1])) from exc


class DeliveryService:
    def __init__(
        self,
        ledger: DeliveryLedger,
        receipts: Receipts,
        rosters: Rosters,
        directory: Directory,
        sms: SmsChannel | None,
        inbox: Inbox | None,
        clock: Callable[[], float],
        lease_s: float = 120.0,
        owner: str | None = None,
    ) -> None:
        self._ledger = ledger
        self._receipts = receipts
        self._rosters = rosters
        self._directory = directory
        self._sms = sms
        self._inbox = inbox
        self._clock = clock
        self._lease_s = lease_s
        self._owner = owner or uuid.uuid4().hex  # this container, as the holder of delivery claims
        self._sent_unsettled: set[DeliveryKey] = set()

    def handle_body(self, body: str) -> JobReport:
        """One queue message; raises MalformedJobError or DeliveryRetryError to fail it."""
        return self.deliver(parse_job(body))

    def deliver(self, job: DeliveryJob) -> JobReport:
        report = JobReport(job.job_id)
        enterprise = self._directory.enterprise(job.enterprise_id) if job.enterprise_id else None

        def on_duty(role: Role, enterprise_id: str | None) -> Sequence[Person]:
            return self._rosters.on_duty(role, job.at, enterprise_id)

        for target in targets(job, on_duty, enterprise):
            self._one(job, target, report)
        count("DeliveryJobs", kind=job.kind.value, outcome="retry" if report.retry else "done")
        logger.info(
            "delivery job handled",
            extra={
                "job_id": job.job_id,
                "subject": job.subject,
                "kind": job.kind.value,
                "sent": report.sent,
                "skipped": report.skipped,
                "failed": report.failed,
                "unknown": report.unknown,
                "retry": len(report.retry),
            },
        )
        if report.retry:
            raise DeliveryRetryError(f"{job.job_id}: {len(report.retry)} deliveries to retry")
        return report

    def _one(self, job: DeliveryJob, target: Target, report: JobReport) -> None:
        key = DeliveryKey.of_job(job.job_id, target.channel.value, target.recipient)
        ledger, owner = self._ledger, self._owner
        if key in self._sent_unsettled:  # sent by this container, its outcome not written: write it now
            ledger.settle(key, owner, DeliveryOutcome.SENT, self._clock())
            self._sent_unsettled.discard(key)
            report.skipped += 1
            return
        claim = ledger.claim(key, owner, self._clock(), self._lease_s)
        if claim is ClaimOutcome.DONE:
            report.skipped += 1
            return
        if claim is ClaimOutcome.BUSY:
            report.retry.append(key.name)
            return
        if target.channel is Channel.INBOX:
            self._to_inbox(job, target, key, report)
        else:
            self._to_phone(job, target, key, report)

    def _settle(
        self,
        job: DeliveryJob,
        target: Target,
        key: DeliveryKey,
        outcome: DeliveryOutcome | None,
        receipt: DeliveryReceipt,
    ) -> None:
        if outcome is not None:
            if outcome is DeliveryOutcome.SENT:
                self._sent_unsettled.add(key)
            self._ledger.settle(key, self._owner, outcome, self._clock())
            self._sent_unsettled.discard(key)
        if receipt.outcome == "sent":
            count("DeliveriesSent", channel=target.channel.value)
        else:
            count("DeliveriesFailed", channel=target.channel.value, outcome=receipt.outcome)
        try:
            self._receipts.record(job.subject, receipt)
        except Exception as exc:  # the ledger holds the truth; the timeline misses one line
            logger.warning("receipt not recorded", extra={"job_id": job.job_id, "error": type(exc).__name__})
            swallowed("delivery.receipt")

    def _receipt(self, job: DeliveryJob, target: Target, outcome: str, **fields: str) -> DeliveryReceipt:
        return DeliveryReceipt(
            job_id=job.job_id,
            kind=job.kind.value,
            channel=target.channel.value,
            audience=target.audience.value,
            recipient=target.recipient,
            name=target.name,
            outcome=outcome,
            at=self._clock(),
            **fields,
        )

    def _to_inbox(self, job: DeliveryJob, target: Target, key: DeliveryKey, report: JobReport) -> None:
        if self._inbox is None:
            self._settle(
                job, target, key, DeliveryOutcome.REJECTED, self._receipt(job, target, "failed", reason=NO_CHANNEL)
            )
            report.failed += 1
            return
        item = InboxItem(
            inbox=target.recipient,
            item_id="",
            job_id=job.job_id,
            kind=job.kind.value,
            warning_id=job.warning_id,
            level=job.level,
            text=job.text.render(),
            detail=job.detail,
            at=job.at,
            declaration_id=job.declaration_id,
        )
        try:
            self._inbox.put(item)
        except Exception as exc:
            logger.warning(
                "inbox write failed: retried", extra={"job_id": job.job_id, "error": type(exc).__name__}
            )
            swallowed("delivery.inbox")
            self._settle(
                job,
                target,
                key,
                DeliveryOutcome.FAILED,
                self._receipt(job, target, "retrying", reason=type(exc).__name__),
            )
            report.retry.append(key.name)
            return
        self._settle(job, target, key, DeliveryOutcome.SENT, self._receipt(job, target, "sent", provider="inbox"))
        report.sent += 1

    def _to_phone(self, job: DeliveryJob, target: Target, key: DeliveryKey, report: JobReport) -> None:
        if self._sms is None or not target.phone:
            reason = NO_CHANNEL if self._sms is None else NO_PHONE
            self._settle(
                job, target, key, DeliveryOutcome.REJECTED, self._receipt(job, target, "failed", reason=reason)
            )
            report.failed += 1
            return
        text = job.text
        message = SmsMessage(
            phone=target.phone,
            template_id=text.template_id,
            params=dict(text.params),
            text=text.render(),
            dedupe_key=f"{job.job_id}:{target.recipient}",
        )
        where = {"job_id": job.job_id, "subject": job.subject, "recipient": target.recipient}
        try:
            receipt = self._sms.send(message)
        except SmsRejected as exc:
            logger.warning("sms rejected", extra={**where, "reason": str(exc.reason), "code": exc.provider_code})
            self._settle(
                job,
                target,
                key,
                DeliveryOutcome.REJECTED,
                self._receipt(job, target, "failed", provider=exc.provider, reason=str(exc.reason)),
            )
            report.failed += 1
            return
        except SmsUnavailable as exc:
            if exc.maybe_sent:
                logger.error("sms outcome unknown: not sent again", extra={**where, "reason": str(exc.reason)})
                self._settle(
                    job,
                    target,
                    key,
                    DeliveryOutcome.UNKNOWN,
                    self._receipt(job, target, "unknown", provider=exc.provider, reason=str(exc.reason)),
                )
                report.unknown += 1
                return
            logger.warning("sms unavailable: retried", extra={**where, "reason": str(exc.reason)})
            self._settle(
                job,
                target,
                key,
                DeliveryOutcome.FAILED,
                self._receipt(job, target, "retrying", provider=exc.provider, reason=str(exc.reason)),
            )
            report.retry.append(key.name)
            return
        except Exception as exc:  # not the provider's answer: whether it went out is unknown
            logger.exception("sms send raised: outcome unknown, not sent again", extra=where)
            swallowed("delivery.sms_unknown")
            self._settle(
                job,
                target,
                key,
                DeliveryOutcome.UNKNOWN,
                self._receipt(job, target, "unknown", reason=type(exc).__name__),
            )
            report.unknown += 1
            return
        self._settle(
            job,
            target,
            key,
            DeliveryOutcome.SENT,
            self._receipt(job, target, "sent", provider=receipt.provider, message_id=receipt.message_id),
        )
        report.sent += 1
