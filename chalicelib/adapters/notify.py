"""SNS fan-out: one message per warning change with attributes the audience subscriptions filter on (and a dedupe
key), for the consoles' audience queues. The ingest claims each before calling here; people are told by delivery
jobs (docs/delivery.md)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters.errors import not_sent
from chalicelib.domain.levels import Level
from chalicelib.services.ports import DeliveryNotSentError, Notification


class SnsNotifier:
    def __init__(self, sns: Any, topic_arn: str) -> None:
        self._sns = sns
        self._topic_arn = topic_arn

    @staticmethod
    def attributes(notification: Notification) -> dict[str, dict[str, str]]:
        change = notification.change
        level = change.level or change.previous_level
        return {
            "level": {"DataType": "String", "StringValue": Level(level).code},
            "sector": {"DataType": "String", "StringValue": change.sector.value},
            "enterprise_id": {"DataType": "String", "StringValue": change.enterprise_id},
            "area": {"DataType": "String", "StringValue": change.area_codes[0] if change.area_codes else "NONE"},
            "audience": {
                "DataType": "String.Array",
                "StringValue": json.dumps([audience.value for audience in notification.route.audiences]),
            },
            "change": {"DataType": "String", "StringValue": change.kind.value},
            "dedupe_key": {"DataType": "String", "StringValue": change.dedupe_key},
        }

    def publish(self, notification: Notification) -> None:
        body = {
            "dedupe_key": notification.change.dedupe_key,
            "change": notification.change.to_dict(),
            "sms": notification.sms,
            "app": notification.app,
            "regulators": list(notification.route.regulators),
            "recipients": [
                {"audience": r.audience, "name": r.name, "phone": r.phone} for r in notification.recipients
            ],
        }
        try:
            self._sns.publish(
                TopicArn=self._topic_arn,
                Message=json.dumps(body, ensure_ascii=False),
                MessageAttributes=self.attributes(notification),
            )
        except Exception as exc:
            if not_sent(exc):
                raise DeliveryNotSentError("warning topic") from exc
            raise
