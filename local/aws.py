"""Create the resources of infra/resources.json on moto's server (or any AWS-compatible endpoint) with boto3.

The template is the only definition: tables, stream, topics, queues, subscriptions, IoT rules and policy (and state
machines, once the template has one) are created from it in dependency order, with intrinsic functions resolved by
local/cfn.py. Provisioning is idempotent: a second call against the same server updates what can be updated and
returns the same names.

Every resource type the template may contain must be listed in `PROVISIONERS` (created on the endpoint) or in
`NAMED_ONLY` (given a physical name and ARN but not created: IAM, alarms and the functions' log groups, which the
local runtime does not need). An unlisted type fails before anything is created, so a resource added to the
template is never silently missing locally. Not applied locally: point-in-time recovery, server-side encryption,
deletion policies.

Local runtime region: us-east-1 (`DEFAULT_REGION`). Production is cn-north-1, but moto does not serve every
service there; us-east-1 is moto's default backend for all of them. The template uses `${AWS::Partition}`, so
its ARNs are right in both partitions.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from local.cfn import (
    INFRA_DIR,
    Pseudo,
    Resolver,
    Resource,
    ResourceState,
    Template,
    TemplateError,
    substitute_definition,
)

DEFAULT_REGION: Final = "us-east-1"
DEFAULT_STAGE: Final = "local"
FAKE_ACCESS_KEY: Final = "testing"
FAKE_SECRET_KEY: Final = "testing"

_CLIENT_CONFIG: Final = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30)


class UnsupportedResourceError(TemplateError):
    """The template has a resource type that local/aws.py neither creates nor names."""


# --- the result ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProvisionedResource:
    """A template resource as it exists locally: what `Ref` and `Fn::GetAtt` give, and whether it was created."""

    logical_id: str
    type: str
    ref: str
    attributes: Mapping[str, str]
    created: bool


@dataclass(frozen=True)
class TopicRule:
    """An IoT topic rule as the local MQTT bridge applies it: SQL, then the Kinesis action (or the error queue)."""

    logical_id: str
    name: str
    sql: str
    sql_version: str
    kinesis_stream: str | None
    partition_key: str | None
    error_queue_url: str | None


@dataclass(frozen=True)
class Provisioned:
    """Physical names, ARNs and URLs by logical id, plus what the app and the local runtime read from them."""

    endpoint_url: str
    region: str
    stage: str
    account_id: str
    resources: Mapping[str, ProvisionedResource]
    environment: Mapping[str, str]
    outputs: Mapping[str, str]
    rules: Mapping[str, TopicRule] = field(default_factory=dict)

    def resource(self, logical_id: str, resource_type: str | None = None) -> ProvisionedResource:
        if logical_id not in self.resources:
            raise KeyError(f"no resource {logical_id!r} in the template")
        found = self.resources[logical_id]
        if resource_type is not None and found.type != resource_type:
            raise KeyError(f"{logical_id} is a {found.type}, not a {resource_type}")
        return found

    def table(self, logical_id: str) -> str:
        return self.resource(logical_id, "AWS::DynamoDB::Table").ref

    def queue_url(self, logical_id: str) -> str:
        return self.resource(logical_id, "AWS::SQS::Queue").ref

    def queue_arn(self, logical_id: str) -> str:
        return self.resource(logical_id, "AWS::SQS::Queue").attributes["Arn"]

    def topic_arn(self, logical_id: str) -> str:
        return self.resource(logical_id, "AWS::SNS::Topic").ref

    def state_machine_arn(self, logical_id: str) -> str:
        return self.resource(logical_id, "AWS::StepFunctions::StateMachine").ref

    def rule_sql(self, logical_id: str) -> str:
        return self.rules[logical_id].sql

    @property
    def stream_name(self) -> str:
        """The device stream (the template has exactly one Kinesis stream)."""
        streams = [r.ref for r in self.resources.values() if r.type == "AWS::Kinesis::Stream"]
        if len(streams) != 1:
            raise KeyError(f"expected one Kinesis stream, found {streams}")
        return streams[0]

    def env(self) -> dict[str, str]:
        """The app's environment variables (DYJ_TABLE_*, DYJ_*_TOPIC_ARN, DYJ_DEVICE_STREAM, DYJ_QUEUE_*)."""
        return dict(self.environment)

    def aws_env(self) -> dict[str, str]:
        """Fake credentials, region and `AWS_ENDPOINT_URL`: every boto3 client in a process reaches this server;
        and read timeouts for an emulator sharing a developer's or a CI machine's cores (`LOCAL_TIMEOUTS`)."""
        return {**fake_aws_environ(self.region), "AWS_ENDPOINT_URL": self.endpoint_url, **LOCAL_TIMEOUTS}


LOCAL_TIMEOUTS = {"DYJ_AWS_READ_TIMEOUT_S": "60", "DYJ_DYNAMO_READ_TIMEOUT_S": "60"}
"""moto answers in milliseconds on an idle machine and in tens of seconds on a starved one (seen: a query over
10,000 warnings past 5 s with both cores busy, a 500 from the API). AWS's own endpoints keep the production
defaults (5 s, `docs/operations.md` "Retries and timeouts"): the waits are the emulator's, not the product's."""


def fake_aws_environ(region: str = DEFAULT_REGION) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


# --- the moto server -----------------------------------------------------------------------------------------


def start_moto_server(
    port: int = 0, region: str = DEFAULT_REGION, *, quiet: bool = True
) -> tuple[ThreadedMotoServer, str]:
    """Start moto's threaded server on 127.0.0.1 (a free port when `port` is 0) and return it with its URL.

    Sets `MOTO_PORT` (Step Functions service integrations call back to `localhost:$MOTO_PORT`), fake credentials
    and the region in `os.environ`, and switches on real execution of state machines. `quiet` silences the
    per-request access log (werkzeug's logger), which otherwise prints every call.
    """
    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    atomic_dynamodb_writes()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _, bound_port = server.get_host_and_port()
    endpoint_url = f"http://127.0.0.1:{bound_port}"
    os.environ.update(fake_aws_environ(region))
    os.environ["MOTO_PORT"] = str(bound_port)
    _post_json(f"{endpoint_url}/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})
    return server, endpoint_url


_ATOMIC = threading.RLock()
_CONDITIONAL_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


def atomic_dynamodb_writes() -> None:
    """DynamoDB checks a write's condition and applies it in one step; moto's server runs each request on its own
    thread without a lock, so two racing conditional writes can both pass (seen: two concurrent clear requests
    both saved, when a busy machine interleaved their threads). One write at a time restores the service's
    guarantee in this process's moto; reads and other services are untouched. Idempotent."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _CONDITIONAL_WRITES:
        original = getattr(DynamoDBBackend, name)
        if not getattr(original, "_one_at_a_time", False):
            setattr(DynamoDBBackend, name, _one_at_a_time(original))


def _one_at_a_time(write: Callable[..., Any]) -> Callable[..., Any]:
    def atomic(*args: Any, **kwargs: Any) -> Any:
        with _ATOMIC:
            return write(*args, **kwargs)

    atomic._one_at_a_time = True  # type: ignore[attr-defined]
    return atomic


def reset_moto(endpoint_url: str) -> None:
    """Forget every resource on the server (moto keeps state per process, so this resets all its servers)."""
    _post_json(f"{endpoint_url}/moto-api/reset", {})


def _post_json(url: str, payload: Mapping[str, Any]) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


# --- provisioning --------------------------------------------------------------------------------------------


class _Clients:
    """boto3 clients for one endpoint, made on first use, from one session per region kept for the process: a
    session caches the service models it loads, which otherwise takes as long as the calls a provisioning makes
    (the tests provision once per module). Making clients from one session is not thread-safe, hence the lock."""

    _sessions: dict[str, boto3.session.Session] = {}
    _lock = threading.Lock()

    def __init__(self, endpoint_url: str, region: str) -> None:
        self._endpoint_url = endpoint_url
        self._region = region
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            with self._lock:
                session = self._sessions.get(self._region)
                if session is None:
                    session = boto3.session.Session(
                        aws_access_key_id=FAKE_ACCESS_KEY,
                        aws_secret_access_key=FAKE_SECRET_KEY,
                        region_name=self._region,
                    )
                    self._sessions[self._region] = session
                self._clients[service] = session.client(
                    service, endpoint_url=self._endpoint_url, config=_CLIENT_CONFIG
                )
        return self._clients[service]


@dataclass(frozen=True)
class _Context:
    clients: _Clients
    pseudo: Pseudo
    template: Template
    resolver: Resolver

    def default_name(self, logical_id: str) -> str:
        return f"{self.pseudo.stack_name}-{logical_id}"

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.pseudo.region if regional else ""
        return f"arn:{self.pseudo.partition}:{service}:{region}:{self.pseudo.account_id}:{resource}"


_Provisioner = Callable[[_Context, Resource, dict[str, Any]], ResourceState]


def provision(
    endpoint_url: str,
    stage: str = DEFAULT_STAGE,
    region: str = DEFAULT_REGION,
    *,
    template: Template | None = None,
    parameters: Mapping[str, str] | None = None,
) -> Provisioned:
    """Create (or bring up to date) every resource of the template on `endpoint_url`, in dependency order."""
    template = template or Template.load()
    unsupported = {
        r.type for r in template.resources.values() if r.type not in PROVISIONERS and r.type not in NAMED_ONLY
    }
    if unsupported:
        raise UnsupportedResourceError(
            f"local/aws.py cannot provision {sorted(unsupported)}: add them to PROVISIONERS or NAMED_ONLY"
        )
    clients = _Clients(endpoint_url, region)
    account_id = str(clients("sts").get_caller_identity()["Account"])
    pseudo = Pseudo.for_region(region, account_id, f"dayingji-{stage}")
    states: dict[str, ResourceState] = {}
    overrides = {"Stage": stage} if "Stage" in template.body.get("Parameters", {}) else {}
    resolver = Resolver(template.parameter_values({**overrides, **(parameters or {})}), pseudo, states)
    context = _Context(clients, pseudo, template, resolver)

    resources = template.resources
    provisioned: dict[str, ProvisionedResource] = {}
    for logical_id in template.creation_order():
        resource = resources[logical_id]
        properties = resolver.resolve(dict(resource.properties))
        created = resource.type in PROVISIONERS
        handler = PROVISIONERS[resource.type] if created else NAMED_ONLY[resource.type]
        state = handler(context, resource, properties)
        states[logical_id] = state
        provisioned[logical_id] = ProvisionedResource(
            logical_id, resource.type, state.ref, state.attributes, created
        )

    return Provisioned(
        endpoint_url=endpoint_url,
        region=region,
        stage=stage,
        account_id=account_id,
        resources=provisioned,
        environment={name: resolver.resolve_str(value) for name, value in template.environment.items()},
        outputs={name: resolver.resolve_str(value) for name, value in template.outputs.items()},
        rules=_topic_rules(template, resolver),
    )


def _topic_rules(template: Template, resolver: Resolver) -> dict[str, TopicRule]:
    rules: dict[str, TopicRule] = {}
    for logical_id, resource in template.resources.items():
        if resource.type != "AWS::IoT::TopicRule":
            continue
        properties = resolver.resolve(dict(resource.properties))
        payload = properties["TopicRulePayload"]
        kinesis = next((a["Kinesis"] for a in payload.get("Actions", []) if "Kinesis" in a), None)
        error_sqs = payload.get("ErrorAction", {}).get("Sqs")
        rules[logical_id] = TopicRule(
            logical_id=logical_id,
            name=resolver.states[logical_id].ref,
            sql=payload["Sql"],
            sql_version=payload.get("AwsIotSqlVersion", "2015-10-08"),
            kinesis_stream=None if kinesis is None else kinesis["StreamName"],
            partition_key=None if kinesis is None else kinesis["PartitionKey"],
            error_queue_url=None if error_sqs is None else error_sqs["QueueUrl"],
        )
    return rules


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# --- one function per resource type ----------------------------------------------------------------------------

_TABLE_KEYS: Final[tuple[str, ...]] = (
    "TableName",
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "ProvisionedThroughput",
    "LocalSecondaryIndexes",
)
_INDEX_KEYS: Final[tuple[str, ...]] = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")


def _dynamodb_table(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    dynamodb = context.clients("dynamodb")
    name = props.setdefault("TableName", context.default_name(resource.logical_id))
    request: dict[str, Any] = {key: props[key] for key in _TABLE_KEYS if key in props}
    if "GlobalSecondaryIndexes" in props:
        request["GlobalSecondaryIndexes"] = [
            {key: index[key] for key in _INDEX_KEYS if key in index} for index in props["GlobalSecondaryIndexes"]
        ]
    if "StreamSpecification" in props:
        request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    try:
        description = dynamodb.create_table(**request)["TableDescription"]
    except ClientError as exc:
        if _error_code(exc) != "ResourceInUseException":
            raise
        description = dynamodb.describe_table(TableName=name)["Table"]

    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        current = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") != "ENABLED" or current.get("AttributeName") != ttl["AttributeName"]:
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
            )
    attributes = {"Arn": description["TableArn"]}
    if "LatestStreamArn" in description:
        attributes["StreamArn"] = description["LatestStreamArn"]
    return ResourceState(ref=name, attributes=attributes)


def _kinesis_stream(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    kinesis = context.clients("kinesis")
    name = props.get("Name") or context.default_name(resource.logical_id)
    mode = props.get("StreamModeDetails", {"StreamMode": "PROVISIONED"})
    request: dict[str, Any] = {"StreamName": name, "StreamModeDetails": mode}
    if mode["StreamMode"] == "PROVISIONED":
        request["ShardCount"] = int(props.get("ShardCount", 1))
    try:
        kinesis.create_stream(**request)
    except ClientError as exc:
        if _error_code(exc) != "ResourceInUseException":
            raise
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    return ResourceState(ref=name, attributes={"Arn": summary["StreamARN"]})


_QUEUE_ATTRIBUTES: Final[tuple[str, ...]] = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _sqs_queue(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    sqs = context.clients("sqs")
    fifo = bool(props.get("FifoQueue"))
    name = props.get("QueueName") or context.default_name(resource.logical_id) + (".fifo" if fifo else "")
    attributes = {key: _attribute_text(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if _error_code(exc) not in {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}:
            raise
        create_attributes = {**attributes, "FifoQueue": "true"} if fifo else attributes
        url = sqs.create_queue(QueueName=name, Attributes=create_attributes)["QueueUrl"]
    else:
        if attributes:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return ResourceState(ref=url, attributes={"Arn": arn, "QueueUrl": url, "QueueName": name})


def _sqs_queue_policy(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    sqs = context.clients("sqs")
    policy = json.dumps(props["PolicyDocument"], separators=(",", ":"))
    for url in props["Queues"]:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    return ResourceState(ref=context.default_name(resource.logical_id))


_TOPIC_ATTRIBUTES: Final[tuple[str, ...]] = (
    "DisplayName",
    "KmsMasterKeyId",
    "FifoTopic",
    "ContentBasedDeduplication",
    "TracingConfig",
)


def _sns_topic(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    sns = context.clients("sns")
    name = props.get("TopicName") or context.default_name(resource.logical_id)
    attributes = {key: _attribute_text(props[key]) for key in _TOPIC_ATTRIBUTES if key in props}
    arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
    return ResourceState(ref=arn, attributes={"TopicArn": arn, "TopicName": name})


_SUBSCRIPTION_ATTRIBUTES: Final[tuple[str, ...]] = (
    "DeliveryPolicy",
    "FilterPolicy",
    "FilterPolicyScope",
    "RawMessageDelivery",
    "RedrivePolicy",
    "ReplayPolicy",
    "SubscriptionRoleArn",
)


def _sns_subscription(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    sns = context.clients("sns")
    attributes = {key: _attribute_text(props[key]) for key in _SUBSCRIPTION_ATTRIBUTES if key in props}
    arn = sns.subscribe(
        TopicArn=props["TopicArn"],
        Protocol=props["Protocol"],
        Endpoint=props["Endpoint"],
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    # SNS answers a repeated subscribe with the existing subscription and leaves its attributes as they were.
    for name, value in attributes.items():
        sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName=name, AttributeValue=value)
    return ResourceState(ref=arn)


def _camel_keys(node: Any) -> Any:
    """CloudFormation's `TopicRulePayload` is PascalCase; the IoT API wants the same keys in camelCase."""
    if isinstance(node, list):
        return [_camel_keys(item) for item in node]
    if isinstance(node, dict):
        return {key[:1].lower() + key[1:]: _camel_keys(value) for key, value in node.items()}
    return node


def _iot_topic_rule(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    iot = context.clients("iot")
    name = props.get("RuleName") or resource.logical_id
    payload = _camel_keys(props["TopicRulePayload"])
    try:
        iot.get_topic_rule(ruleName=name)
    except ClientError as exc:
        if _error_code(exc) not in {"ResourceNotFoundException", "UnauthorizedException"}:
            raise
        iot.create_topic_rule(ruleName=name, topicRulePayload=payload)
    else:
        iot.replace_topic_rule(ruleName=name, topicRulePayload=payload)
    arn = iot.get_topic_rule(ruleName=name)["ruleArn"]
    return ResourceState(ref=name, attributes={"Arn": arn})


def _iot_policy(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    iot = context.clients("iot")
    name = props.get("PolicyName") or context.default_name(resource.logical_id)
    document = json.dumps(props["PolicyDocument"], separators=(",", ":"))
    try:
        existing = iot.get_policy(policyName=name)
    except ClientError as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise
        arn = iot.create_policy(policyName=name, policyDocument=document)["policyArn"]
    else:
        arn = existing["policyArn"]
        if json.loads(existing["policyDocument"]) != props["PolicyDocument"]:
            for version in iot.list_policy_versions(policyName=name)["policyVersions"]:
                if not version["isDefaultVersion"]:
                    iot.delete_policy_version(policyName=name, policyVersionId=version["versionId"])
            iot.create_policy_version(policyName=name, policyDocument=document, setAsDefault=True)
    return ResourceState(ref=name, attributes={"Arn": arn, "Id": name})


def _state_machine(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    sfn = context.clients("stepfunctions")
    name = props.get("StateMachineName") or context.default_name(resource.logical_id)
    definition = _state_machine_definition(context, resource, props)
    arn = context.arn("states", f"stateMachine:{name}")
    try:
        sfn.describe_state_machine(stateMachineArn=arn)
    except ClientError as exc:
        if _error_code(exc) != "StateMachineDoesNotExist":
            raise
        request = {"name": name, "definition": definition, "roleArn": props["RoleArn"]}
        if "StateMachineType" in props:
            request["type"] = props["StateMachineType"]
        arn = sfn.create_state_machine(**request)["stateMachineArn"]
    else:
        sfn.update_state_machine(stateMachineArn=arn, definition=definition, roleArn=props["RoleArn"])
    return ResourceState(ref=arn, attributes={"Arn": arn, "Name": name})


def _state_machine_definition(context: _Context, resource: Resource, props: dict[str, Any]) -> str:
    """The ASL text: from the file in Metadata, or `Definition`/`DefinitionString`, with substitutions applied."""
    path = context.template.definition_path(resource.logical_id)
    if path is not None:
        text = path.read_text(encoding="utf-8")
    elif "Definition" in props:
        text = json.dumps(props["Definition"])
    elif "DefinitionString" in props:
        text = str(props["DefinitionString"])
    else:
        raise TemplateError(f"{resource.logical_id}: no definition (Metadata file, Definition, DefinitionString)")
    substitutions = {key: str(value) for key, value in props.get("DefinitionSubstitutions", {}).items()}
    return substitute_definition(text, substitutions)


_USER_POOL_KEYS: Final[tuple[str, ...]] = (
    "Policies",
    "Schema",
    "AdminCreateUserConfig",
    "UsernameConfiguration",
    "UsernameAttributes",
    "AliasAttributes",
    "AutoVerifiedAttributes",
    "MfaConfiguration",
    "AccountRecoverySetting",
    "DeletionProtection",
)


def _cognito_user_pool(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    """Found by name (so a second run keeps the pool, its users and its id), else created."""
    cognito = context.clients("cognito-idp")
    name = props.get("UserPoolName") or context.default_name(resource.logical_id)
    pools = cognito.list_user_pools(MaxResults=60)["UserPools"]
    pool_id = next((pool["Id"] for pool in pools if pool["Name"] == name), None)
    if pool_id is None:
        request = {key: props[key] for key in _USER_POOL_KEYS if key in props}
        pool_id = cognito.create_user_pool(PoolName=name, **request)["UserPool"]["Id"]
    arn = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Arn"]
    provider = f"cognito-idp.{context.pseudo.region}.{context.pseudo.url_suffix}/{pool_id}"
    return ResourceState(
        ref=pool_id,
        attributes={
            "Arn": arn,
            "ProviderName": provider,
            "ProviderURL": f"https://{provider}",
            "UserPoolId": pool_id,
        },
    )


_USER_POOL_CLIENT_KEYS: Final[tuple[str, ...]] = (
    "GenerateSecret",
    "ExplicitAuthFlows",
    "PreventUserExistenceErrors",
    "ReadAttributes",
    "WriteAttributes",
    "IdTokenValidity",
    "AccessTokenValidity",
    "RefreshTokenValidity",
    "TokenValidityUnits",
)


def _cognito_user_pool_client(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    cognito = context.clients("cognito-idp")
    pool_id = props["UserPoolId"]
    name = props.get("ClientName") or context.default_name(resource.logical_id)
    clients = cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    client_id = next((client["ClientId"] for client in clients if client["ClientName"] == name), None)
    request = {key: props[key] for key in _USER_POOL_CLIENT_KEYS if key in props}
    if client_id is None:
        client_id = cognito.create_user_pool_client(UserPoolId=pool_id, ClientName=name, **request)[
            "UserPoolClient"
        ]["ClientId"]
    else:
        request.pop("GenerateSecret", None)
        cognito.update_user_pool_client(UserPoolId=pool_id, ClientId=client_id, ClientName=name, **request)
    return ResourceState(ref=client_id, attributes={"ClientId": client_id, "Name": name})


def _cognito_user_pool_group(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    cognito = context.clients("cognito-idp")
    request = {key: props[key] for key in ("Description", "Precedence", "RoleArn") if key in props}
    name = props["GroupName"]
    try:
        cognito.create_group(UserPoolId=props["UserPoolId"], GroupName=name, **request)
    except ClientError as exc:
        if _error_code(exc) != "GroupExistsException":
            raise
        cognito.update_group(UserPoolId=props["UserPoolId"], GroupName=name, **request)
    return ResourceState(ref=name)


def _s3_bucket(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    """The bucket with public access blocked and its versioning (encryption and lifecycle are not applied
    locally)."""
    s3 = context.clients("s3")
    name = props.get("BucketName") or context.default_name(resource.logical_id).lower()
    try:
        if context.pseudo.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": context.pseudo.region})
    except ClientError as exc:
        if _error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
    suffix = context.pseudo.url_suffix
    return ResourceState(
        ref=name,
        attributes={
            "Arn": f"arn:{context.pseudo.partition}:s3:::{name}",
            "DomainName": f"{name}.s3.{suffix}",
            "RegionalDomainName": f"{name}.s3.{context.pseudo.region}.{suffix}",
        },
    )


PROVISIONERS: Final[dict[str, _Provisioner]] = {
    "AWS::DynamoDB::Table": _dynamodb_table,
    "AWS::Kinesis::Stream": _kinesis_stream,
    "AWS::SQS::Queue": _sqs_queue,
    "AWS::SQS::QueuePolicy": _sqs_queue_policy,
    "AWS::SNS::Topic": _sns_topic,
    "AWS::SNS::Subscription": _sns_subscription,
    "AWS::IoT::TopicRule": _iot_topic_rule,
    "AWS::IoT::Policy": _iot_policy,
    "AWS::StepFunctions::StateMachine": _state_machine,
    "AWS::Cognito::UserPool": _cognito_user_pool,
    "AWS::Cognito::UserPoolClient": _cognito_user_pool_client,
    "AWS::Cognito::UserPoolGroup": _cognito_user_pool_group,
    "AWS::S3::Bucket": _s3_bucket,
}
"""Resource types created on the endpoint."""


def _iam_role(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    name = props.get("RoleName") or context.default_name(resource.logical_id)
    return ResourceState(ref=name, attributes={"Arn": context.arn("iam", f"role/{name}", regional=False)})


def _iam_managed_policy(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    name = props.get("ManagedPolicyName") or context.default_name(resource.logical_id)
    arn = context.arn("iam", f"policy/{name}", regional=False)
    return ResourceState(ref=arn, attributes={"PolicyArn": arn})


def _cloudwatch_alarm(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    name = props.get("AlarmName") or context.default_name(resource.logical_id)
    return ResourceState(ref=name, attributes={"Arn": context.arn("cloudwatch", f"alarm:{name}")})


def _log_group(context: _Context, resource: Resource, props: dict[str, Any]) -> ResourceState:
    name = props.get("LogGroupName") or context.default_name(resource.logical_id)
    return ResourceState(ref=name, attributes={"Arn": context.arn("logs", f"log-group:{name}:*")})


NAMED_ONLY: Final[dict[str, _Provisioner]] = {
    "AWS::IAM::Role": _iam_role,
    "AWS::IAM::ManagedPolicy": _iam_managed_policy,
    "AWS::CloudWatch::Alarm": _cloudwatch_alarm,
    "AWS::Logs::LogGroup": _log_group,
}
"""Resource types given names and ARNs for references but not created (moto does not enforce IAM; the local
functions log to the console, not to CloudWatch Logs)."""


# --- identity (infra/identity.json) ----------------------------------------------------------------------------

IDENTITY_TEMPLATE_PATH: Final = INFRA_DIR / "identity.json"


def provision_identity(endpoint_url: str, stage: str = DEFAULT_STAGE, region: str = DEFAULT_REGION) -> Provisioned:
    """The user pool, app client and role groups of infra/identity.json (a template of its own: Cognito user
    pools are not offered in the China regions, so resources.json takes the identity provider as parameters)."""
    return provision(endpoint_url, stage, region, template=Template.load(IDENTITY_TEMPLATE_PATH))


def identity_parameters(identity: Provisioned) -> dict[str, str]:
    """resources.json's `Identity*` parameters from a provisioned identity template; the JWKS URL is the one
    moto's server serves (`{endpoint}/{pool id}/.well-known/jwks.json`), the issuer stays the AWS form that
    moto writes into its tokens."""
    pool_id = identity.outputs["UserPoolId"]
    return {
        "IdentityUserPoolId": pool_id,
        "IdentityClientId": identity.outputs["UserPoolClientId"],
        "IdentityIssuer": identity.outputs["UserPoolProviderUrl"],
        "IdentityJwksUrl": f"{identity.endpoint_url}/{pool_id}/.well-known/jwks.json",
    }


def provision_with_identity(
    endpoint_url: str, stage: str = DEFAULT_STAGE, region: str = DEFAULT_REGION
) -> Provisioned:
    """Both templates: the identity one first, its outputs passed to resources.json (what the local runtime and
    the API tests use)."""
    identity = provision_identity(endpoint_url, stage, region)
    return provision(endpoint_url, stage, region, parameters=identity_parameters(identity))
