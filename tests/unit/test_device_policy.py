"""The device policy of infra/resources.json: a device publishes telemetry only as itself, straight to the broker
or through IoT Basic Ingest (`$aws/rules/<telemetry rule>/…`, docs/device-protocol.md "Basic Ingest")."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "resources.json"
TOPIC_ARN = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:topic/"
OWN_TOPIC = "dyj/*/*/${!iot:Connection.Thing.ThingName}/telemetry"


def publish_topics() -> list[str]:
    resources = json.loads(TEMPLATE.read_text(encoding="utf-8"))["Resources"]
    statements = resources["DevicePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    publish: list[dict[str, Any]] = [s for s in statements if s["Action"] == "iot:Publish"]
    assert len(publish) == 1 and publish[0]["Effect"] == "Allow" and "Condition" not in publish[0]
    arns = [resource["Fn::Sub"] for resource in publish[0]["Resource"]]
    assert all(arn.startswith(TOPIC_ARN) for arn in arns)
    return [arn.removeprefix(TOPIC_ARN) for arn in arns]


def test_a_device_may_publish_its_own_telemetry_straight_or_through_basic_ingest_and_nothing_else() -> None:
    assert publish_topics() == [OWN_TOPIC, f"$aws/rules/${{TelemetryRule}}/{OWN_TOPIC}"]


def test_the_basic_ingest_topic_names_the_telemetry_rule_whose_sql_reads_the_same_levels() -> None:
    resources = json.loads(TEMPLATE.read_text(encoding="utf-8"))["Resources"]
    sql = resources["TelemetryRule"]["Properties"]["TopicRulePayload"]["Sql"]
    topic_filter = re.search(r"FROM '([^']+)'", sql)
    assert topic_filter is not None
    # Basic Ingest hides its `$aws/rules/<rule>` prefix from topic(n): topic(2..4) stay sector, enterprise, device
    assert topic_filter.group(1) == "dyj/+/+/+/telemetry"
    assert "topic(2) AS topic_sector" in sql and "topic(4) AS topic_device" in sql
    basic = [topic for topic in publish_topics() if topic.startswith("$aws/rules/")]
    assert basic == [f"$aws/rules/${{TelemetryRule}}/{OWN_TOPIC}"]  # one rule, never `$aws/rules/*`
    levels = basic[0].split("/")[3:]
    assert (
        len(levels) == len(topic_filter.group(1).split("/")) and levels[3] == "${!iot:Connection.Thing.ThingName}"
    )
