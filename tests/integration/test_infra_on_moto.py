"""infra/resources.json is valid CloudFormation, and local/aws.py builds exactly it on moto's server.

Expectations are written out from the brief (keys, indexes, audiences), not read back from the template, so a
change to the template that breaks a contract the app relies on fails here.
"""

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint import api as cfnlint_api

from local.aws import DEFAULT_REGION, Provisioned, UnsupportedResourceError, provision
from local.cfn import (
    TEMPLATE_PATH,
    Pseudo,
    Resolver,
    ResourceState,
    Template,
    TemplateError,
    finalize_package,
)

STAGE = "test"
AUDIENCES = ("enterprise", "duty", "regulator", "area", "emergency")
AUDIENCE_QUEUES = {audience: f"{audience.capitalize()}Queue" for audience in AUDIENCES}

S, N = "S", "N"
TABLES: dict[str, dict[str, Any]] = {
    "DeviceStateTable": {"name": "device-state", "keys": [("device_id", S)], "gsis": {}, "ttl": None},
    "UnitStateTable": {"name": "unit-state", "keys": [("unit_id", S)], "gsis": {}, "ttl": None},
    "RegistryTable": {
        "name": "registry",
        "keys": [("pk", S), ("sk", S)],
        "gsis": {"gsi1": [("gsi1pk", S), ("gsi1sk", S)]},
        "ttl": None,
    },
    "WarningTable": {
        "name": "warnings",
        "keys": [("warning_id", S)],
        "gsis": {
            "by_enterprise": [("enterprise_id", S), ("raised_at", S)],
            "open_by_enterprise": [("open_enterprise", S), ("urgency", S)],
            "by_sector": [("sector", S), ("raised_at", S)],
            "open_by_sector": [("open_sector", S), ("urgency", S)],
            "by_area": [("first_area", S), ("raised_at", S)],
            "by_other_area": [("other_area", S), ("raised_at", S)],
            "open_by_area": [("open_area", S), ("urgency", S)],
            "open_by_other_area": [("open_other_area", S), ("urgency", S)],
            "closed_by_sector": [("sector", S), ("closed_at", S)],  # the evaluation's closed warnings
        },
        "ttl": "expires_at",
    },
    "WarningEventTable": {
        "name": "warning-events",
        "keys": [("warning_id", S), ("seq", N)],
        "gsis": {"ledger_by_day": [("day", N), ("seq", N)]},  # the online ledger's days, the devices offline now
        "ttl": "expires_at",
    },
    "QuarantineTable": {
        "name": "quarantine",
        "keys": [("day", S), ("received_id", S)],
        "gsis": {},
        "ttl": "expires_at",
    },
}
APP_ENV = {
    "DYJ_TABLE_DEVICE_STATE": "DeviceStateTable",
    "DYJ_TABLE_UNIT_STATE": "UnitStateTable",
    "DYJ_TABLE_REGISTRY": "RegistryTable",
    "DYJ_TABLE_WARNING": "WarningTable",
    "DYJ_TABLE_WARNING_EVENT": "WarningEventTable",
    "DYJ_TABLE_QUARANTINE": "QuarantineTable",
}


def client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=DEFAULT_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def infra(moto_server: str) -> Provisioned:
    return provision(moto_server, stage=STAGE)


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def attributes(**values: str | list[str]) -> dict[str, dict[str, str]]:
    return {
        name: {"DataType": "String.Array", "StringValue": json.dumps(value)}
        if isinstance(value, list)
        else {"DataType": "String", "StringValue": value}
        for name, value in values.items()
    }


def warning_attributes(audience: str | list[str]) -> dict[str, dict[str, str]]:
    return attributes(
        level="red", sector="hazchem", enterprise_id="E1", area="tanggu", audience=audience, change="raised"
    )


# --- the template itself ---------------------------------------------------------------------------------------


def test_template_passes_cfn_lint_for_china_and_local_regions() -> None:
    matches = cfnlint_api.lint(
        TEMPLATE_PATH.read_text(encoding="utf-8"), regions=["cn-north-1", "cn-northwest-1", DEFAULT_REGION]
    )
    assert [str(match) for match in matches] == []


def test_template_rejects_a_stage_that_would_break_iot_rule_names() -> None:
    with pytest.raises(TemplateError, match="does not match"):
        Template.load().parameter_values({"Stage": "my-stage"})


def test_resolver_handles_sub_escapes_join_and_both_get_att_forms() -> None:
    resolver = Resolver(
        {"Stage": "prod"},
        Pseudo.for_region("cn-north-1", "111122223333", "dayingji-prod"),
        {"Queue": ResourceState(ref="https://q", attributes={"Arn": "arn:q"})},
    )
    assert resolver.resolve({"Fn::Sub": "arn:${AWS::Partition}:iot:x:topic/${!iot:ClientId}/${Stage}"}) == (
        "arn:aws-cn:iot:x:topic/${iot:ClientId}/prod"
    )
    assert resolver.resolve({"Fn::Sub": ["${Q}/${Queue.Arn}", {"Q": {"Ref": "Queue"}}]}) == "https://q/arn:q"
    assert resolver.resolve({"Fn::Join": ["-", [{"Ref": "Stage"}, {"Fn::GetAtt": "Queue.Arn"}]]}) == "prod-arn:q"
    assert resolver.resolve({"a": {"Ref": "AWS::NoValue"}, "b": [1, {"Ref": "AWS::NoValue"}]}) == {"b": [1]}
    with pytest.raises(TemplateError, match="Missing"):
        resolver.resolve({"Ref": "Missing"})


# --- provisioning on moto ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", sorted(TABLES))
def test_every_table_has_its_keys_indexes_and_ttl(infra: Provisioned, moto_server: str, logical_id: str) -> None:
    expected = TABLES[logical_id]
    dynamodb = client("dynamodb", moto_server)
    name = infra.table(logical_id)
    assert name == f"dayingji-{STAGE}-{expected['name']}"

    table = dynamodb.describe_table(TableName=name)["Table"]
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    key_roles = ["HASH", "RANGE"]
    assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == [
        (attribute, key_roles[i]) for i, (attribute, _) in enumerate(expected["keys"])
    ]
    assert all(types[attribute] == kind for attribute, kind in expected["keys"])
    indexes = {index["IndexName"]: index for index in table.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == set(expected["gsis"])
    for index_name, keys in expected["gsis"].items():
        assert [(k["AttributeName"], k["KeyType"]) for k in indexes[index_name]["KeySchema"]] == [
            (attribute, key_roles[i]) for i, (attribute, _) in enumerate(keys)
        ]
        assert all(types[attribute] == kind for attribute, kind in keys)
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if expected["ttl"] is None:
        assert ttl.get("TimeToLiveStatus") != "ENABLED"
    else:
        assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", expected["ttl"])


def test_device_stream_exists_under_the_stage_name(infra: Provisioned, moto_server: str) -> None:
    summary = client("kinesis", moto_server).describe_stream_summary(StreamName=infra.stream_name)
    assert infra.stream_name == f"dayingji-{STAGE}-devices"
    assert summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
    assert summary["StreamDescriptionSummary"]["StreamModeDetails"]["StreamMode"] == "ON_DEMAND"


@pytest.mark.parametrize("audience", AUDIENCES)
def test_each_audience_queue_has_a_dead_letter_queue_and_lets_the_topics_send(
    infra: Provisioned, moto_server: str, audience: str
) -> None:
    sqs = client("sqs", moto_server)
    logical_id = AUDIENCE_QUEUES[audience]
    queue = sqs.get_queue_attributes(QueueUrl=infra.queue_url(logical_id), AttributeNames=["All"])["Attributes"]
    redrive = json.loads(queue["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == infra.queue_arn(logical_id.replace("Queue", "DeadLetterQueue"))
    assert int(redrive["maxReceiveCount"]) == 5
    statement = json.loads(queue["Policy"])["Statement"][0]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert set(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == {
        infra.topic_arn("WarningTopic"),
        infra.topic_arn("EscalationTopic"),
    }


@pytest.mark.parametrize("topic", ["WarningTopic", "EscalationTopic"])
def test_every_audience_queue_is_subscribed_raw_with_an_audience_filter(
    infra: Provisioned, moto_server: str, topic: str
) -> None:
    sns = client("sns", moto_server)
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=infra.topic_arn(topic))["Subscriptions"]
    by_endpoint = {s["Endpoint"]: s["SubscriptionArn"] for s in subscriptions}
    assert set(by_endpoint) == {infra.queue_arn(q) for q in AUDIENCE_QUEUES.values()}
    for audience, logical_id in AUDIENCE_QUEUES.items():
        attrs = sns.get_subscription_attributes(SubscriptionArn=by_endpoint[infra.queue_arn(logical_id)])
        assert json.loads(attrs["Attributes"]["FilterPolicy"]) == {"audience": [audience]}
        assert attrs["Attributes"]["FilterPolicyScope"] == "MessageAttributes"
        assert attrs["Attributes"]["RawMessageDelivery"] == "true"


def test_a_warning_for_the_duty_centre_lands_only_in_the_duty_queue(infra: Provisioned, moto_server: str) -> None:
    sns, sqs = client("sns", moto_server), client("sqs", moto_server)
    body = json.dumps({"warning_id": "W1", "level": "red"})

    sns.publish(
        TopicArn=infra.topic_arn("WarningTopic"), Message=body, MessageAttributes=warning_attributes("duty")
    )

    received = {audience: drain(sqs, infra.queue_url(q)) for audience, q in AUDIENCE_QUEUES.items()}
    assert {audience: len(messages) for audience, messages in received.items()} == {
        "enterprise": 0,
        "duty": 1,
        "regulator": 0,
        "area": 0,
        "emergency": 0,
    }
    (message,) = received["duty"]
    assert message["Body"] == body
    assert message["MessageAttributes"]["sector"]["StringValue"] == "hazchem"


def test_one_publish_with_an_audience_list_reaches_each_listed_audience(
    infra: Provisioned, moto_server: str
) -> None:
    sns, sqs = client("sns", moto_server), client("sqs", moto_server)

    sns.publish(
        TopicArn=infra.topic_arn("EscalationTopic"),
        Message=json.dumps({"warning_id": "W2", "tier": 2}),
        MessageAttributes=warning_attributes(["regulator", "area"]),
    )

    counts = {audience: len(drain(sqs, infra.queue_url(q))) for audience, q in AUDIENCE_QUEUES.items()}
    assert counts == {"enterprise": 0, "duty": 0, "regulator": 1, "area": 1, "emergency": 0}


def test_iot_rules_route_to_the_stream_keyed_by_device_with_dead_letters(
    infra: Provisioned, moto_server: str
) -> None:
    iot = client("iot", moto_server)
    telemetry = iot.get_topic_rule(ruleName=infra.rules["TelemetryRule"].name)["rule"]
    assert telemetry["sql"] == (
        "SELECT encode(*, 'base64') AS payload, topic(2) AS topic_sector, topic(3) AS topic_enterprise, "
        "topic(4) AS topic_device, timestamp() AS received_at FROM 'dyj/+/+/+/telemetry'"
    )
    assert telemetry["awsIotSqlVersion"] == "2016-03-23"
    assert telemetry["actions"][0]["kinesis"]["streamName"] == infra.stream_name
    assert telemetry["actions"][0]["kinesis"]["partitionKey"] == "${topic(4)}"
    assert telemetry["errorAction"]["sqs"]["queueUrl"] == infra.queue_url("RuleErrorQueue")

    lifecycle = iot.get_topic_rule(ruleName=infra.rules["LifecycleRule"].name)["rule"]
    assert "FROM '$aws/events/presence/+/+'" in lifecycle["sql"]
    assert lifecycle["actions"][0]["kinesis"]["partitionKey"] == "${clientId}"
    assert lifecycle["errorAction"]["sqs"]["queueUrl"] == infra.queue_url("RuleErrorQueue")
    assert infra.rule_sql("TelemetryRule") == telemetry["sql"]


def test_device_policy_binds_each_device_to_its_own_client_id_and_topic(
    infra: Provisioned, moto_server: str
) -> None:
    policy = client("iot", moto_server).get_policy(policyName=infra.resource("DevicePolicy").ref)
    statements = {s["Action"]: s for s in json.loads(policy["policyDocument"])["Statement"]}
    assert set(statements) == {"iot:Connect", "iot:Publish"}
    assert statements["iot:Connect"]["Resource"].endswith(":client/${iot:Connection.Thing.ThingName}")
    topics = f"arn:aws:iot:{DEFAULT_REGION}:{infra.account_id}:topic"
    own = "dyj/*/*/${iot:Connection.Thing.ThingName}/telemetry"
    # the telemetry topic, straight or through IoT Basic Ingest to the telemetry rule: both only for its own thing
    assert statements["iot:Publish"]["Resource"] == [
        f"{topics}/{own}",
        f"{topics}/$aws/rules/{infra.rules['TelemetryRule'].name}/{own}",
    ]


def test_env_names_every_resource_the_app_reads(infra: Provisioned) -> None:
    env = infra.env()
    assert {name: env[name] for name in APP_ENV} == {name: infra.table(t) for name, t in APP_ENV.items()}
    assert env["DYJ_WARNING_TOPIC_ARN"] == infra.topic_arn("WarningTopic")
    assert env["DYJ_ESCALATION_TOPIC_ARN"] == infra.topic_arn("EscalationTopic")
    assert env["DYJ_DEVICE_STREAM"] == infra.stream_name
    assert {f"DYJ_QUEUE_{a.upper()}": env[f"DYJ_QUEUE_{a.upper()}"] for a in AUDIENCES} == {
        f"DYJ_QUEUE_{a.upper()}": infra.queue_url(q) for a, q in AUDIENCE_QUEUES.items()
    }
    assert infra.aws_env()["AWS_ENDPOINT_URL"] == infra.endpoint_url


def test_provisioning_twice_changes_nothing(infra: Provisioned, moto_server: str) -> None:
    again = provision(moto_server, stage=STAGE)
    assert again == infra
    sns = client("sns", moto_server)
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=infra.topic_arn("WarningTopic"))["Subscriptions"]
    assert len(subscriptions) == len(AUDIENCES)


def test_a_resource_type_nobody_provisions_fails_before_anything_is_created(moto_server: str) -> None:
    template = Template({"Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {}}}})
    with pytest.raises(UnsupportedResourceError, match="AWS::Lambda::Function"):
        provision(moto_server, stage="other", template=template)


# --- state machines from their own ASL file --------------------------------------------------------------------

ASL = {
    "StartAt": "Record",
    "States": {
        "Record": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:putItem",
            "Parameters": {"TableName": "${WarningTable}", "Item": {"warning_id": {"S.$": "$.warning_id"}}},
            "End": True,
        }
    },
}


def state_machine_template(tmp_path: Path) -> Template:
    (tmp_path / "disposal.asl.json").write_text(json.dumps(ASL), encoding="utf-8")
    body = json.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))
    body["Resources"]["DisposalRole"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "states.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        },
    }
    body["Resources"]["DisposalStateMachine"] = {
        "Type": "AWS::StepFunctions::StateMachine",
        "Metadata": {"dayingji:DefinitionFile": "disposal.asl.json"},
        "Properties": {
            "StateMachineName": {"Fn::Sub": "dayingji-${Stage}-disposal"},
            "RoleArn": {"Fn::GetAtt": ["DisposalRole", "Arn"]},
            "DefinitionSubstitutions": {"WarningTable": {"Ref": "WarningTable"}},
        },
    }
    return Template(body, base_dir=tmp_path)


def test_a_state_machine_runs_its_asl_file_with_substitutions(moto_server: str, tmp_path: Path) -> None:
    infra = provision(moto_server, stage="sfn", template=state_machine_template(tmp_path))
    sfn, dynamodb = client("stepfunctions", moto_server), client("dynamodb", moto_server)

    execution = sfn.start_execution(
        stateMachineArn=infra.state_machine_arn("DisposalStateMachine"), input=json.dumps({"warning_id": "W9"})
    )["executionArn"]

    deadline = time.monotonic() + 10
    while (status := sfn.describe_execution(executionArn=execution)["status"]) == "RUNNING":
        assert time.monotonic() < deadline, "state machine did not finish"
        time.sleep(0.05)
    assert status == "SUCCEEDED"
    item = dynamodb.get_item(TableName=infra.table("WarningTable"), Key={"warning_id": {"S": "W9"}})
    assert item["Item"]["warning_id"] == {"S": "W9"}


def test_packaging_inlines_the_asl_and_wires_chalice_event_sources(tmp_path: Path) -> None:
    template = state_machine_template(tmp_path)
    packaged = {
        **template.body,
        "Resources": {
            **template.body["Resources"],
            "DefaultRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                },
            },
            "Ingest": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Runtime": "python3.11",
                    "Handler": "app.ingest",
                    "CodeUri": "./deployment.zip",
                    "Role": {"Fn::GetAtt": ["DefaultRole", "Arn"]},
                    "Events": {
                        "IngestKinesisEventSource": {
                            "Type": "Kinesis",
                            "Properties": {
                                "Stream": {
                                    "Fn::Sub": "arn:${AWS::Partition}:kinesis:${AWS::Region}:${AWS::AccountId}:"
                                    "stream/dayingji-prod-devices"
                                }
                            },
                        }
                    },
                },
            },
        },
    }

    result = finalize_package(packaged, "prod", tmp_path)

    resources = result["Resources"]
    assert result["Parameters"]["Stage"]["Default"] == "prod"
    assert resources["DisposalStateMachine"]["Properties"]["Definition"] == ASL
    kinesis = resources["Ingest"]["Properties"]["Events"]["IngestKinesisEventSource"]["Properties"]
    assert kinesis["Stream"] == {"Fn::GetAtt": ["DeviceStream", "Arn"]}
    assert kinesis["BisectBatchOnFunctionError"] is True
    assert kinesis["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["IngestFailureQueue", "Arn"]
    }
    assert resources["Ingest"]["Properties"]["Role"] == {"Fn::GetAtt": ["IngestRole", "Arn"]}
    assert resources["Ingest"]["Properties"]["FunctionName"] == {"Fn::Sub": "dayingji-${Stage}-ingest"}
    assert "DefaultRole" not in resources  # Chalice's shared role, nothing uses it any more
    assert cfnlint_api.lint(json.dumps(result), regions=["cn-north-1"]) == []
    with pytest.raises(TemplateError, match="dayingji-prod-devices"):
        finalize_package(packaged, "dev", tmp_path)


def test_packaging_refuses_a_function_that_has_no_role_of_its_own(tmp_path: Path) -> None:
    template = state_machine_template(tmp_path)
    orphan = {
        "Type": "AWS::Serverless::Function",
        "Properties": {"Handler": "app.orphan", "Runtime": "python3.11"},
    }
    packaged = {**template.body, "Resources": {**template.body["Resources"], "Orphan": orphan}}

    with pytest.raises(TemplateError, match=r"\['Orphan'\] have no execution role"):
        finalize_package(packaged, "prod", tmp_path)


def test_the_stream_declares_its_event_source_failure_handling_in_one_place() -> None:
    mapping = Template.load().event_source_mapping("DeviceStream")

    assert mapping is not None
    assert mapping.on_failure_queue == "IngestFailureQueue"
    assert set(mapping.properties) == {
        "MaximumRetryAttempts",
        "BisectBatchOnFunctionError",
        "MaximumRecordAgeInSeconds",
        "FunctionResponseTypes",
    }
    bad = json.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))
    bad["Resources"]["DeviceStream"]["Metadata"]["dayingji:EventSourceMapping"]["Properties"]["BatchSize"] = 5
    with pytest.raises(TemplateError, match="BatchSize"):
        Template(bad).event_source_mapping("DeviceStream")


def test_the_ingest_failure_queue_keeps_messages_two_weeks(infra: Provisioned, moto_server: str) -> None:
    queue = client("sqs", moto_server).get_queue_attributes(
        QueueUrl=infra.queue_url("IngestFailureQueue"), AttributeNames=["MessageRetentionPeriod"]
    )["Attributes"]
    assert infra.queue_url("IngestFailureQueue").endswith(f"/dayingji-{STAGE}-ingest-failures")
    assert int(queue["MessageRetentionPeriod"]) == 14 * 86400
    assert infra.outputs["IngestFailureQueueArn"] == infra.queue_arn("IngestFailureQueue")
