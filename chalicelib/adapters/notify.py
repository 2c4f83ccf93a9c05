"""SNS fan-out: one message per warning change with attributes the audience subscriptions filter on, and one
Chinese SMS per recipient (SNS direct SMS publish)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.domain.levels import Level
from chalicelib.services.ports import Notification


class SnsNotifier:
    def __init__(self, sns: Any, topic_arn: str, sms_enabled: bool = True) -> None:
        self._sns = sns
        self._topic_arn = topic_arn
        self._sms_enabled = sms_enabled

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
        }

    def publish(self, notification: Notification) -> None:
        body = {
            "change": notification.change.to_dict(),
            "sms": notification.sms,
            "app": notification.app,
            "regulators": list(notification.route.regulators),
            "recipients": [
                {"audience": r.audience, "name": r.name, "phone": r.phone} for r in notification.recipients
            ],
        }
        if notification.route.audiences:
            self._sns.publish(
                TopicArn=self._topic_arn,
                Message=json.dumps(body, ensure_ascii=False),
                MessageAttributes=self.attributes(notification),
            )
        if not self._sms_enabled:
            return
        for recipient in notification.recipients:
            self._sns.publish(
                PhoneNumber=recipient.phone,
                Message=notification.sms,
                MessageAttributes={
                    "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
                    "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": "BHYJ"},
                },
            )
