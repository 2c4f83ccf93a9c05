"""`make package`: the deployable template is built from the real app and infra/, and cfn-lint passes on it.

The checks read the packaged `sam.json` the way a reviewer would: every event source is wired to this template's
stream or queue, the stream's event source mapping cannot be held by a poison batch, and each function runs as a
role of its own that names only what that function touches. Expectations are written out here (which function
reaches which resource, which wildcards are allowed and why), so a template change that widens a role fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.cfn import LAMBDA_FUNCTION_KEY, WILDCARDS_KEY, Template

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR: list[Path] = []  # where the module's package was built (the deployment zip is beside sam.json)

# Function (Chalice's logical id) -> the template resources its role names, and the AWS services it may call.
ROLE_REACH: dict[str, set[str]] = {
    "Ingest": {
        "IngestLogGroup",
        "DeviceStream",
        "IngestFailureQueue",
        "DeviceStateTable",
        "UnitStateTable",
        "WarningTable",
        "WarningEventTable",
        "QuarantineTable",
        "RegistryTable",
        "EvidenceBucket",  # quarantine/* only: payloads too large for their quarantine row
        "WarningTopic",
        "DisposalStateMachine",
        "DeliveryQueue",  # delivery jobs for people (sqs:SendMessage)
    },
    "WorkflowEvents": {
        "WorkflowEventsLogGroup",
        "WorkflowEventQueue",
        "WarningTable",
        "WarningEventTable",
        "RegistryTable",
        "DisposalStateMachine",
        "EscalationTopic",
        "DeliveryQueue",
    },
    "Deliver": {"DeliverLogGroup", "DeliveryQueue", "WarningEventTable", "RegistryTable"},
    "Sweep": {"SweepLogGroup", "WarningTable", "DisposalStateMachine"},
    "DeclarationSweep": {"DeclarationSweepLogGroup", "RegistryTable", "WarningEventTable", "DeliveryQueue"},
    **{
        f"Evaluate{kind}": {
            f"Evaluate{kind}LogGroup",
            "WarningTable",
            "WarningEventTable",
            "RegistryTable",
            "EvaluationBucket",
        }
        for kind in ("Month", "Quarter", "Year")
    },
    "EvaluateRequested": {  # POST /evaluations' runs, from their queue
        "EvaluateRequestedLogGroup",
        "EvaluationQueue",
        "WarningTable",
        "WarningEventTable",
        "RegistryTable",
        "EvaluationBucket",
    },
    "OfflineWatch": {  # presence summaries and offline devices; offline warnings through the warning path
        "OfflineWatchLogGroup",
        "WarningEventTable",
        "WarningTable",
        "DeviceStateTable",  # a hazardous-goods vehicle's last report (its offline level)
        "RegistryTable",
        "WarningTopic",
        "DisposalStateMachine",
        "DeliveryQueue",
    },
    "APIHandler": {
        "APIHandlerLogGroup",
        "WarningTable",
        "WarningEventTable",
        "RegistryTable",
        "EvidenceBucket",
        "EvaluationBucket",  # on-demand evaluation runs, report reads and presigned downloads
        "DisposalStateMachine",  # a person's action arms the warning's next timer
        "DeliveryQueue",  # a declaration's approval or rejection is told to the enterprise
        "DeviceStateTable",  # GET /devices: last seen times (read only)
        "EvaluationQueue",  # on-demand runs handed to the evaluate_requested function
    },
}
ROLE_SERVICES: dict[str, set[str]] = {
    "Ingest": {"logs", "kinesis", "sqs", "dynamodb", "s3", "sns", "states", "xray"},
    "WorkflowEvents": {"logs", "sqs", "dynamodb", "sns", "states", "xray"},
    "Deliver": {"logs", "sqs", "dynamodb", "sns", "secretsmanager", "ssm", "xray"},  # the SMS access key
    "Sweep": {"logs", "dynamodb", "states", "xray"},
    "DeclarationSweep": {"logs", "dynamodb", "sqs", "xray"},
    "OfflineWatch": {"logs", "dynamodb", "sns", "states", "sqs", "xray"},
    "APIHandler": {"logs", "dynamodb", "s3", "cognito-idp", "states", "sqs", "xray"},
    **{f"Evaluate{kind}": {"logs", "dynamodb", "s3", "xray"} for kind in ("Month", "Quarter", "Year")},
    "EvaluateRequested": {"logs", "sqs", "dynamodb", "s3", "xray"},
}
READ_ONLY_TABLES: dict[str, set[str]] = {
    "Ingest": {"RegistryTable"},
    "WorkflowEvents": {"RegistryTable"},
    "Deliver": {"RegistryTable"},
    "Sweep": {"WarningTable"},
    "DeclarationSweep": set(),
    "OfflineWatch": {"RegistryTable", "DeviceStateTable"},
    "APIHandler": {"DeviceStateTable"},
    **{
        f"Evaluate{kind}": {"WarningTable", "WarningEventTable"}
        for kind in ("Month", "Quarter", "Year", "Requested")
    },
}
TABLE_WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}

# `Resource: "*"`, allowed only for these (role, action) pairs: the API has no resource to name.
SMS_HAS_NO_RESOURCE = "SNS direct SMS (Publish with PhoneNumber) has no resource ARN"
XRAY_HAS_NO_RESOURCE = "X-Ray has no resource-level permissions (active tracing writes the function's segments)"
WILDCARD_ALLOW_LIST: dict[tuple[str, str], str] = {
    ("DeliverRole", "sns:Publish"): SMS_HAS_NO_RESOURCE,  # the one function that texts people
    **{
        (f"{function}Role", action): XRAY_HAS_NO_RESOURCE
        for function in ROLE_REACH
        for action in ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
    },
}
# A `*` inside an ARN, allowed only as these suffixes of a resource the role already names.
ARN_SUFFIX_ALLOW_LIST: dict[str, str] = {
    r"\$\{\w+Table\.Arn\}/index/\*": "the indexes of a table the role may use (its ARN does not cover them)",
    r"\$\{EvidenceBucket\.Arn\}/evidence/\*": "evidence photos: one object per upload, keys made per warning",
    r"\$\{EvidenceBucket\.Arn\}/quarantine/\*": "oversized quarantined payloads: one object per record",
    r"\$\{EvaluationBucket\.Arn\}/evaluations/\*": "evaluation reports: three objects per period evaluated",
    r"arn:\$\{AWS::Partition\}:states:\$\{AWS::Region\}:\$\{AWS::AccountId\}:execution:"
    r"\$\{DisposalStateMachine\.Name\}:\*": "the disposal timers (executions, one per due version) to stop",
}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = tmp_path_factory.mktemp("package")
    PACKAGE_DIR[:] = [out]
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "package.sh"), "test", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    template: dict[str, Any] = json.loads((out / "sam.json").read_text(encoding="utf-8"))
    return template


def functions_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def events_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: event
        for fn in functions_of(template).values()
        for name, event in fn["Properties"].get("Events", {}).items()
    }


def role_of(function: dict[str, Any]) -> str:
    role = function["Properties"]["Role"]
    assert set(role) == {"Fn::GetAtt"} and role["Fn::GetAtt"][1] == "Arn", role
    return str(role["Fn::GetAtt"][0])


def statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in role["Properties"].get("Policies", []):
        yield from policy["PolicyDocument"]["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def referenced(node: Any) -> set[str]:
    """Logical ids a policy names (Ref, Fn::GetAtt, `${X}` / `${X.Arn}` in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= referenced(item)
    elif isinstance(node, dict):
        if set(node) == {"Ref"}:
            found.add(node["Ref"])
        elif set(node) == {"Fn::GetAtt"}:
            found.add(node["Fn::GetAtt"][0])
        elif set(node) == {"Fn::Sub"}:
            text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
            found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]*)\}", text)}
        else:
            for value in node.values():
                found |= referenced(value)
    return found


# --- the package ------------------------------------------------------------------------------------------------


def test_the_packaged_template_lints_clean_and_wires_every_event_source(packaged: dict[str, Any]) -> None:
    events = events_of(packaged)
    kinesis = [e for e in events.values() if e["Type"] == "Kinesis"]
    sqs = [e for e in events.values() if e["Type"] == "SQS"]
    assert kinesis and kinesis[0]["Properties"]["Stream"] == {"Fn::GetAtt": ["DeviceStream", "Arn"]}
    assert sorted(e["Properties"]["Queue"]["Fn::GetAtt"][0] for e in sqs) == [
        "DeliveryQueue",
        "EvaluationQueue",
        "WorkflowEventQueue",
    ]
    assert all(e["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for e in sqs)
    assert any(e["Type"] == "Schedule" for e in events.values())
    assert isinstance(packaged["Resources"]["DisposalStateMachine"]["Properties"]["Definition"], dict)
    assert packaged["Parameters"]["Stage"]["Default"] == "test"


# --- item 2: a poison batch cannot hold a shard -----------------------------------------------------------------


def test_the_stream_event_source_mapping_retries_bisects_ages_out_and_keeps_what_it_discards(
    packaged: dict[str, Any],
) -> None:
    [ingest] = [e for e in events_of(packaged).values() if e["Type"] == "Kinesis"]
    properties = ingest["Properties"]

    assert 5 <= properties["MaximumRetryAttempts"] <= 10
    assert properties["BisectBatchOnFunctionError"] is True
    assert 60 <= properties["MaximumRecordAgeInSeconds"] <= 6 * 3600  # a bad shard is never blinded for a day
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["DestinationConfig"] == {
        "OnFailure": {"Type": "SQS", "Destination": {"Fn::GetAtt": ["IngestFailureQueue", "Arn"]}}
    }
    # one source: the values are the stream's, which the local poller reads too
    mapping = Template.load().event_source_mapping("DeviceStream")
    assert mapping is not None
    assert {key: properties[key] for key in mapping.sam_properties()} == mapping.sam_properties()


def test_discarded_batches_are_kept_two_weeks_and_raise_an_alarm_to_the_operators(
    packaged: dict[str, Any],
) -> None:
    resources = packaged["Resources"]
    queue = resources["IngestFailureQueue"]["Properties"]
    assert queue["MessageRetentionPeriod"] == 14 * 86400
    alarms = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and {"Name": "QueueName", "Value": {"Fn::GetAtt": ["IngestFailureQueue", "QueueName"]}}
        in r["Properties"].get("Dimensions", [])
    ]
    [alarm] = alarms
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == [{"Ref": "OpsTopic"}]


# --- item 11: least privilege for the functions -----------------------------------------------------------------


def test_each_function_runs_as_a_role_of_its_own_that_only_lambda_can_assume(packaged: dict[str, Any]) -> None:
    functions = functions_of(packaged)
    resources = packaged["Resources"]
    assert set(functions) == set(ROLE_REACH)
    roles = {name: role_of(function) for name, function in functions.items()}
    assert len(set(roles.values())) == len(roles), roles
    assert "DefaultRole" not in resources
    for name, role_id in roles.items():
        role = resources[role_id]
        assert role["Metadata"][LAMBDA_FUNCTION_KEY]["LogicalId"] == name
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
        assert "ManagedPolicyArns" not in role["Properties"]
    assert not [r for r in resources.values() if r["Type"] == "AWS::IAM::ManagedPolicy"]


@pytest.mark.parametrize("function", sorted(ROLE_REACH))
def test_each_role_names_only_what_its_function_touches(packaged: dict[str, Any], function: str) -> None:
    resources = packaged["Resources"]
    role = resources[role_of(functions_of(packaged)[function])]
    names = referenced(list(statements(role)))

    assert {name for name in names if name in resources} == ROLE_REACH[function]
    actions = {action for s in statements(role) for action in as_list(s["Action"])}
    assert {action.split(":")[0] for action in actions} == ROLE_SERVICES[function]
    assert all(s["Effect"] == "Allow" for s in statements(role))
    for statement in statements(role):
        writes = TABLE_WRITES.intersection(as_list(statement["Action"]))
        assert not writes or not referenced(statement["Resource"]) & READ_ONLY_TABLES[function], statement["Sid"]


@pytest.mark.parametrize("function", sorted(ROLE_REACH))
def test_each_function_logs_to_its_own_log_group_under_its_own_name(
    packaged: dict[str, Any], function: str
) -> None:
    resources = packaged["Resources"]
    properties = functions_of(packaged)[function]["Properties"]
    role = resources[role_of(functions_of(packaged)[function])]
    log_group = role["Metadata"][LAMBDA_FUNCTION_KEY]["LogGroup"]

    assert resources[log_group]["Properties"]["LogGroupName"] == {
        "Fn::Sub": "/aws/lambda/" + properties["FunctionName"]["Fn::Sub"]
    }
    assert resources[log_group]["Properties"]["RetentionInDays"] >= 180
    [logs] = [s for s in statements(role) if any(a.startswith("logs:") for a in as_list(s["Action"]))]
    assert logs["Resource"] == {"Fn::GetAtt": [log_group, "Arn"]}
    assert "logs:CreateLogGroup" not in as_list(logs["Action"])


def test_no_iam_policy_has_a_wildcard_that_is_not_on_the_allow_list(packaged: dict[str, Any]) -> None:
    unlisted: list[str] = []
    for role_id, role in packaged["Resources"].items():
        if role["Type"] not in {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            continue
        documented = role.get("Metadata", {}).get(WILDCARDS_KEY, {})
        policy_statements = (
            list(statements(role))
            if role["Type"] == "AWS::IAM::Role"
            else role["Properties"]["PolicyDocument"]["Statement"]
        )
        for statement in policy_statements:
            actions = as_list(statement.get("Action", []))
            unlisted += [f"{role_id}: action {a}" for a in actions if "*" in a]
            assert "NotAction" not in statement and "NotResource" not in statement, role_id
            for resource in as_list(statement["Resource"]):
                if resource == "*" or (isinstance(resource, str) and "*" in resource):
                    listed = all((role_id, action) in WILDCARD_ALLOW_LIST for action in actions)
                    if not listed or statement.get("Sid") not in documented:
                        unlisted.append(f"{role_id}: {actions} on {resource!r}")
                elif isinstance(resource, dict) and "*" in str(resource.get("Fn::Sub", "")):
                    text = str(resource["Fn::Sub"])
                    if not any(re.fullmatch(pattern, text) for pattern in ARN_SUFFIX_ALLOW_LIST):
                        unlisted.append(f"{role_id}: {actions} on {text}")
    assert unlisted == []


def test_every_function_is_traced_actively_and_may_write_nothing_else_to_xray(packaged: dict[str, Any]) -> None:
    resources = packaged["Resources"]
    for name, function in functions_of(packaged).items():
        assert function["Properties"]["Tracing"] == "Active", name
        role = resources[role_of(function)]
        xray = [s for s in statements(role) if any(a.startswith("xray:") for a in as_list(s["Action"]))]
        assert [(s["Sid"], sorted(as_list(s["Action"])), s["Resource"]) for s in xray] == [
            ("WriteTraces", ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "*")
        ]


def test_the_deployment_package_carries_the_settings_tracing_and_report_libs(packaged: dict[str, Any]) -> None:
    import zipfile

    [code_uri] = {function["Properties"]["CodeUri"] for function in functions_of(packaged).values()}
    names = zipfile.ZipFile(PACKAGE_DIR[0] / code_uri).namelist()
    libraries = ("pydantic_settings/", "dotenv/", "aws_xray_sdk/", "wrapt/", "aws_lambda_powertools/")
    for package in (*libraries, "xlsxwriter/", "pygal/", "importlib_metadata/"):  # + the evaluation reports
        assert any(name.startswith(package) for name in names), package


def test_every_module_in_the_deployment_package_has_bytecode_for_the_runtime(packaged: dict[str, Any]) -> None:
    """scripts/bytecode.py: /var/task is read-only: without .pyc a cold start compiles every module it imports."""
    import importlib.util
    import zipfile

    [runtime] = {function["Properties"]["Runtime"] for function in functions_of(packaged).values()}
    assert runtime == f"python{sys.version_info.major}.{sys.version_info.minor}"
    with zipfile.ZipFile(PACKAGE_DIR[0] / "deployment.zip") as package:
        names = set(package.namelist())
        modules = [name for name in names if name.endswith(".py")]
        missing = [m for m in modules if importlib.util.cache_from_source(m) not in names]
        assert len(modules) > 1000 and len(missing) < len(modules) // 100, missing[:10]
        header = package.read(importlib.util.cache_from_source("app.py"))[:8]
    assert header[:4] == importlib.util.MAGIC_NUMBER and int.from_bytes(header[4:8], "little") == 0b01  # unchecked


def test_the_api_serves_the_console_from_the_files_packaged_with_it(packaged: dict[str, Any]) -> None:
    """docs/console.md "Deployment": the page comes from the API's origin, its files from the deployment zip."""
    import zipfile

    from chalicelib.api.console import CONSOLE_DIR, CONTENT_TYPES

    paths = packaged["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    for path in ("/console", "/console/{name}"):
        assert set(paths[path]) == {"get"}, path
        assert "security" not in paths[path]["get"], path  # the page signs in itself
    [code_uri] = {function["Properties"]["CodeUri"] for function in functions_of(packaged).values()}
    names = set(zipfile.ZipFile(PACKAGE_DIR[0] / code_uri).namelist())
    files = {f"chalicelib/console/{path.name}" for path in CONSOLE_DIR.iterdir() if path.suffix in CONTENT_TYPES}
    assert "chalicelib/console/index.html" in files and files <= names


def test_api_gateway_answers_in_the_api_error_shape_with_the_catalogued_codes(packaged: dict[str, Any]) -> None:
    from chalicelib.api.errors import CODES

    responses = {
        resource["Properties"]["ResponseType"]: resource["Properties"]
        for resource in packaged["Resources"].values()
        if resource["Type"] == "AWS::ApiGateway::GatewayResponse"
    }
    assert set(responses) == {"MISSING_AUTHENTICATION_TOKEN", "REQUEST_TOO_LARGE", "THROTTLED", "DEFAULT_5XX"}
    for properties in responses.values():
        assert properties["RestApiId"] == {"Ref": "RestAPI"}
        body = json.loads(properties["ResponseTemplates"]["application/json"])
        assert set(body) == {"code", "message"} and body["code"] in CODES
        assert int(properties["StatusCode"]) == CODES[body["code"]].status
    assert "Metadata" not in packaged  # the packaging step consumed its instructions


def test_the_evaluation_schedules_run_after_each_local_period_ends(packaged: dict[str, Any]) -> None:
    """EventBridge cron is UTC: 17:00 UTC on a period's last day is 01:00 +08:00 on the day after it."""
    functions = functions_of(packaged)
    schedules = {
        name: [event["Properties"]["Schedule"] for event in fn["Properties"].get("Events", {}).values()]
        for name, fn in functions.items()
        if name.startswith("Evaluate") and name != "EvaluateRequested"  # the on-demand runs' function: a queue
    }
    assert schedules == {
        "EvaluateMonth": ["cron(0 17 L * ? *)"],
        "EvaluateQuarter": ["cron(15 17 L 3,6,9,12 ? *)"],
        "EvaluateYear": ["cron(30 17 31 12 ? *)"],
    }
    versioning = packaged["Resources"]["EvaluationBucket"]["Properties"]["VersioningConfiguration"]
    assert versioning == {"Status": "Enabled"}
    # a full-size run: Lambda's longest timeout, and the memory that buys one whole vCPU (the bench's figure)
    sizes = {
        name: (functions[name]["Properties"]["Timeout"], functions[name]["Properties"]["MemorySize"])
        for name in [*schedules, "EvaluateRequested"]
    }
    assert set(sizes.values()) == {(900, 1769)}
    requests = functions["EvaluateRequested"]["Properties"]["Events"]
    assert [(e["Type"], e["Properties"]["BatchSize"]) for e in requests.values()] == [("SQS", 1)]
    queue = packaged["Resources"]["EvaluationQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 900 and queue["RedrivePolicy"]["maxReceiveCount"] == 2


def test_each_function_is_sized_deliberately_and_the_ingest_reads_whole_seconds_of_a_shard(
    packaged: dict[str, Any],
) -> None:
    """docs/costs.md "Lambda sizing": no function left at Chalice's 128 MB (≈ 6 s of CPU to import the app)."""
    memory = {name: fn["Properties"].get("MemorySize") for name, fn in functions_of(packaged).items()}
    assert memory["Ingest"] == 1769  # one vCPU: CPU-bound, same GB-s at any smaller size, shortest cold start
    assert memory["Deliver"] == memory["WorkflowEvents"] == memory["APIHandler"] == 1024
    assert all(size is not None and size >= 512 for size in memory.values()), memory
    [ingest] = [e for e in events_of(packaged).values() if e["Type"] == "Kinesis"]
    assert ingest["Properties"]["BatchSize"] == 1000
    assert ingest["Properties"].get("MaximumBatchingWindowInSeconds", 0) == 0  # no wait added to an alarm
