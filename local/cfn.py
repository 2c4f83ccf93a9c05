"""A small CloudFormation reader for `infra/resources.json`, the single source of the platform's resources.

The same template is merged into Chalice's SAM output for AWS (`scripts/package.sh`) and read here so that the
local runtime (`local/aws.py`) creates exactly those resources on moto's server. This module does no I/O beyond
reading files: it knows the template's parameters, resources, creation order and the app environment (SAM
`Globals.Function.Environment.Variables`), and resolves the intrinsic functions the template uses:
`Ref`, `Fn::Sub`, `Fn::GetAtt`, `Fn::Join` and the pseudo parameters. Conditions are not used and not supported.

It also holds the few touches `scripts/package.sh` applies to the packaged template (`finalize_package`), so that
the packaging and the local runtime read the template the same way (see infra/README.md):
- the `Stage` parameter defaults to the packaged Chalice stage,
- state machines get their ASL inlined from the file named in `Metadata["dayingji:DefinitionFile"]`,
- Chalice's Kinesis/SQS event sources that name a stream or queue of this template point at it by `Fn::GetAtt`
  (a real dependency, so CloudFormation creates the stream before the event source mapping), and a Kinesis event
  source gets the failure handling its stream declares in `Metadata["dayingji:EventSourceMapping"]` (retries,
  bisection, maximum record age, the on-failure queue); the local poller reads the same metadata
  (`Template.event_source_mapping`), so both honour one set of values,
- each Chalice function runs as the role that names it in `Metadata["dayingji:LambdaFunction"]` (one role per
  function, least privilege) under a fixed name whose log group the template creates; Chalice's shared
  `DefaultRole` is removed.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

INFRA_DIR: Final = Path(__file__).resolve().parent.parent / "infra"
TEMPLATE_PATH: Final = INFRA_DIR / "resources.json"

DEFINITION_FILE_KEY: Final = "dayingji:DefinitionFile"
EVENT_SOURCE_MAPPING_KEY: Final = "dayingji:EventSourceMapping"
LAMBDA_FUNCTION_KEY: Final = "dayingji:LambdaFunction"
WILDCARDS_KEY: Final = "dayingji:Wildcards"
LAMBDA_LOG_GROUP_PREFIX: Final = "/aws/lambda/"

STREAM_FAILURE_PROPERTIES: Final = frozenset(
    {"MaximumRetryAttempts", "BisectBatchOnFunctionError", "MaximumRecordAgeInSeconds", "FunctionResponseTypes"}
)
"""The event source mapping properties a stream's `dayingji:EventSourceMapping` may set (CloudFormation names)."""

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_SERVERLESS_FUNCTION = "AWS::Serverless::Function"


class TemplateError(Exception):
    """The template (or a value handed to the resolver) is not something this reader understands."""


class _NoValue:
    """`Ref: AWS::NoValue`: the enclosing property or list item disappears."""


NO_VALUE: Final = _NoValue()


@dataclass(frozen=True)
class Resource:
    """One entry of the template's `Resources`, unresolved."""

    logical_id: str
    type: str
    properties: Mapping[str, Any]
    metadata: Mapping[str, Any]
    depends_on: tuple[str, ...]


@dataclass(frozen=True)
class ResourceState:
    """What a created resource answers to `Ref` and to `Fn::GetAtt` (attribute name -> value)."""

    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EventSourceMapping:
    """How every Lambda event source mapping reading one stream handles a failing batch.

    `properties` are event source mapping properties by their CloudFormation names (`MaximumRetryAttempts`,
    `BisectBatchOnFunctionError`, `MaximumRecordAgeInSeconds`, `FunctionResponseTypes`); `on_failure_queue` is the
    logical id of the SQS queue that receives the metadata of each discarded batch.
    """

    stream: str
    properties: Mapping[str, Any]
    on_failure_queue: str | None

    def sam_properties(self) -> dict[str, Any]:
        """The properties to merge into a SAM `Kinesis` event, the on-failure destination included."""
        result = copy.deepcopy(dict(self.properties))
        if self.on_failure_queue is not None:
            result["DestinationConfig"] = {
                "OnFailure": {"Type": "SQS", "Destination": {"Fn::GetAtt": [self.on_failure_queue, "Arn"]}}
            }
        return result


@dataclass(frozen=True)
class Pseudo:
    """Values of the pseudo parameters (`AWS::Region`, ...)."""

    region: str
    account_id: str
    stack_name: str
    partition: str = "aws"
    url_suffix: str = "amazonaws.com"

    @classmethod
    def for_region(cls, region: str, account_id: str, stack_name: str) -> Pseudo:
        if region.startswith("cn-"):
            return cls(region, account_id, stack_name, partition="aws-cn", url_suffix="amazonaws.com.cn")
        return cls(region, account_id, stack_name)

    def as_parameters(self) -> dict[str, str]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": self.url_suffix,
        }


class Template:
    """The parsed template with read-only accessors; `body` is the JSON document as loaded."""

    def __init__(self, body: Mapping[str, Any], base_dir: Path = INFRA_DIR) -> None:
        if not isinstance(body.get("Resources"), Mapping):
            raise TemplateError("template has no Resources")
        self.body = body
        self.base_dir = base_dir

    @classmethod
    def load(cls, path: Path = TEMPLATE_PATH) -> Template:
        with path.open(encoding="utf-8") as handle:
            return cls(json.load(handle), base_dir=path.parent)

    @property
    def resources(self) -> dict[str, Resource]:
        result: dict[str, Resource] = {}
        for logical_id, raw in self.body["Resources"].items():
            depends_on = raw.get("DependsOn", ())
            result[logical_id] = Resource(
                logical_id=logical_id,
                type=raw["Type"],
                properties=raw.get("Properties", {}),
                metadata=raw.get("Metadata", {}),
                depends_on=(depends_on,) if isinstance(depends_on, str) else tuple(depends_on),
            )
        return result

    @property
    def environment(self) -> Mapping[str, Any]:
        """The app's environment variables (unresolved), from SAM `Globals.Function.Environment.Variables`."""
        variables: Mapping[str, Any] = (
            self.body.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        )
        return variables

    @property
    def outputs(self) -> dict[str, Any]:
        return {name: output["Value"] for name, output in self.body.get("Outputs", {}).items()}

    def parameter_values(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """Defaults overlaid with `overrides`; checks `AllowedPattern` and that every parameter has a value."""
        overrides = dict(overrides or {})
        declared: Mapping[str, Mapping[str, Any]] = self.body.get("Parameters", {})
        unknown = set(overrides) - set(declared)
        if unknown:
            raise TemplateError(f"unknown parameters: {sorted(unknown)}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            if name in overrides:
                value = overrides[name]
            elif "Default" in spec:
                value = str(spec["Default"])
            else:
                raise TemplateError(f"parameter {name} has no default and no value")
            pattern = spec.get("AllowedPattern")
            if pattern is not None and not re.fullmatch(pattern, value):
                raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")
            values[name] = value
        return values

    def dependencies(self, logical_id: str) -> set[str]:
        """Resources that `logical_id` refers to (Ref, Fn::GetAtt, Fn::Sub) or lists in DependsOn."""
        resources = self.body["Resources"]
        resource = self.resources[logical_id]
        found = set(resource.depends_on)
        found.update(name for name in _referenced_names(resource.properties) if name in resources)
        found.discard(logical_id)
        return found

    def creation_order(self) -> list[str]:
        """Logical ids, each after everything it depends on; otherwise in template order."""
        pending = {logical_id: self.dependencies(logical_id) for logical_id in self.body["Resources"]}
        order: list[str] = []
        while pending:
            ready = [logical_id for logical_id, deps in pending.items() if not deps - set(order)]
            if not ready:
                raise TemplateError(f"dependency cycle among {sorted(pending)}")
            for logical_id in ready:
                order.append(logical_id)
                del pending[logical_id]
        return order

    def event_source_mapping(self, stream: str) -> EventSourceMapping | None:
        """The failure handling a stream declares for the event source mappings that read it (None: none)."""
        resource = self.resources[stream]
        declared = resource.metadata.get(EVENT_SOURCE_MAPPING_KEY)
        if declared is None:
            return None
        if resource.type != "AWS::Kinesis::Stream" or not isinstance(declared, Mapping):
            raise TemplateError(f"{stream}: {EVENT_SOURCE_MAPPING_KEY} must be an object on a Kinesis stream")
        properties = declared.get("Properties", {})
        unknown = set(properties) - STREAM_FAILURE_PROPERTIES
        if unknown:
            raise TemplateError(f"{stream}: {EVENT_SOURCE_MAPPING_KEY} cannot set {sorted(unknown)}")
        queue = declared.get("OnFailureQueue")
        if queue is not None and (queue not in self.resources or self.resources[queue].type != "AWS::SQS::Queue"):
            raise TemplateError(f"{stream}: OnFailureQueue {queue!r} is not an SQS queue of this template")
        return EventSourceMapping(stream, properties, queue)

    def definition_path(self, logical_id: str) -> Path | None:
        """The ASL file a state machine names in `Metadata["dayingji:DefinitionFile"]`, if any."""
        name = self.resources[logical_id].metadata.get(DEFINITION_FILE_KEY)
        return None if name is None else self.base_dir / str(name)


def _referenced_names(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _referenced_names(item)
        return
    if not isinstance(node, Mapping):
        return
    if len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref" and isinstance(value, str):
            yield value
            return
        if key == "Fn::GetAtt":
            yield _split_get_att(value)[0]
            return
        if key == "Fn::Sub":
            text, variables = _split_sub(value)
            for name in _SUB_VARIABLE.findall(text):
                if not name.startswith("!") and name not in variables:
                    yield name.split(".", 1)[0]
            yield from _referenced_names(list(variables.values()))
            return
    for value in node.values():
        yield from _referenced_names(value)


def _split_get_att(value: Any) -> tuple[str, str]:
    if isinstance(value, str) and "." in value:
        logical_id, attribute = value.split(".", 1)
        return logical_id, attribute
    if isinstance(value, list) and len(value) == 2 and all(isinstance(part, str) for part in value):
        return value[0], value[1]
    raise TemplateError(f"malformed Fn::GetAtt: {value!r}")


def _split_sub(value: Any) -> tuple[str, Mapping[str, Any]]:
    if isinstance(value, str):
        return value, {}
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], Mapping):
        return value[0], value[1]
    raise TemplateError(f"malformed Fn::Sub: {value!r}")


class Resolver:
    """Resolves intrinsic functions against parameters, pseudo parameters and the resources created so far.

    `states` is filled by the caller as resources come into existence (in `Template.creation_order()`); a
    reference to a resource that has no state yet is an error, never a guess.
    """

    def __init__(
        self,
        parameters: Mapping[str, str],
        pseudo: Pseudo,
        states: Mapping[str, ResourceState] | None = None,
    ) -> None:
        self.names = {**pseudo.as_parameters(), **parameters}
        self.states = states if states is not None else {}

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, Mapping):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self.ref(value)
            if key.startswith("Fn::"):
                return self._function(key, value)
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def resolve_str(self, node: Any) -> str:
        value = self.resolve(node)
        if not isinstance(value, str):
            raise TemplateError(f"expected a string, got {value!r} from {node!r}")
        return value

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.names:
            return self.names[name]
        return self._state(name).ref

    def get_att(self, logical_id: str, attribute: str) -> str:
        attributes = self._state(logical_id).attributes
        if attribute not in attributes:
            raise TemplateError(f"{logical_id} has no attribute {attribute} here (known: {sorted(attributes)})")
        return attributes[attribute]

    def _state(self, logical_id: str) -> ResourceState:
        if logical_id not in self.states:
            raise TemplateError(f"{logical_id} is not a parameter or a resource created so far")
        return self.states[logical_id]

    def _function(self, key: str, value: Any) -> Any:
        if key == "Fn::GetAtt":
            return self.get_att(*_split_get_att(value))
        if key == "Fn::Sub":
            return self._sub(*_split_sub(value))
        if key == "Fn::Join":
            delimiter, items = value
            return str(delimiter).join(str(item) for item in self.resolve(items))
        raise TemplateError(f"{key} is not supported by local/cfn.py")

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        local = {name: self.resolve(value) for name, value in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return str(local[name])
            if name in self.names or "." not in name:
                return str(self.ref(name))
            logical_id, attribute = name.split(".", 1)
            return self.get_att(logical_id, attribute)

        return _SUB_VARIABLE.sub(substitute, text)


def substitute_definition(definition: str, substitutions: Mapping[str, str]) -> str:
    """Apply `DefinitionSubstitutions` to an ASL text the way Step Functions does (`${name}` -> value)."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        return substitutions[name] if name in substitutions else match.group(0)

    return _SUB_VARIABLE.sub(substitute, definition)


# --- packaging -----------------------------------------------------------------------------------------------


def finalize_package(packaged: Mapping[str, Any], stage: str, infra_dir: Path = INFRA_DIR) -> dict[str, Any]:
    """Return the packaged (Chalice + merged) template with the packaging touches of the module docstring."""
    body = copy.deepcopy(dict(packaged))
    template = Template(body, base_dir=infra_dir)
    stage_parameter = body.get("Parameters", {}).get("Stage")
    if stage_parameter is not None:
        stage_parameter["Default"] = stage
    _inline_definitions(template)
    _wire_event_sources(template, template.parameter_values())
    _assign_execution_roles(template)
    _add_gateway_responses(body)
    return body


GATEWAY_RESPONSES_KEY = "dayingji:GatewayResponses"


def _add_gateway_responses(body: dict[str, Any]) -> None:
    """API Gateway's own answers (unknown route, too large, throttled, 5xx) in the API's JSON error shape, on the
    REST API Chalice emits (`RestAPI`, which only exists once packaged)."""
    metadata = body.get("Metadata", {})
    spec = metadata.pop(GATEWAY_RESPONSES_KEY, None)
    if not metadata:
        body.pop("Metadata", None)
    if spec is None or "RestAPI" not in body["Resources"]:
        return  # an app without routes has no gateway to answer for
    for logical_id, properties in spec["Responses"].items():
        body["Resources"][logical_id] = {
            "Type": "AWS::ApiGateway::GatewayResponse",
            "Properties": {"RestApiId": {"Ref": "RestAPI"}, **properties},
        }


def _inline_definitions(template: Template) -> None:
    for logical_id, resource in template.resources.items():
        path = template.definition_path(logical_id)
        if path is None:
            continue
        if resource.type != "AWS::StepFunctions::StateMachine":
            raise TemplateError(f"{logical_id}: {DEFINITION_FILE_KEY} is only for state machines")
        with path.open(encoding="utf-8") as handle:
            definition = json.load(handle)
        template.body["Resources"][logical_id]["Properties"]["Definition"] = definition


def _static_names(
    template: Template, parameters: Mapping[str, str], resource_type: str, name_key: str
) -> dict[str, str]:
    """Physical name -> logical id for resources of one type whose name depends on parameters only."""
    resolver = Resolver(parameters, Pseudo.for_region("us-east-1", "000000000000", "package"))
    names: dict[str, str] = {}
    for logical_id, resource in template.resources.items():
        if resource.type == resource_type and name_key in resource.properties:
            names[resolver.resolve_str(resource.properties[name_key])] = logical_id
    return names


def _wire_event_sources(template: Template, parameters: Mapping[str, str]) -> None:
    streams = _static_names(template, parameters, "AWS::Kinesis::Stream", "Name")
    queues = _static_names(template, parameters, "AWS::SQS::Queue", "QueueName")
    wiring = {"Kinesis": ("Stream", ":stream/", streams), "SQS": ("Queue", ":", queues)}
    for logical_id, resource in template.body["Resources"].items():
        if resource.get("Type") != _SERVERLESS_FUNCTION:
            continue
        for event_name, event in resource.get("Properties", {}).get("Events", {}).items():
            if event.get("Type") not in wiring:
                continue
            key, separator, known = wiring[event["Type"]]
            source = event["Properties"].get(key)
            arn_text = source.get("Fn::Sub") if isinstance(source, Mapping) else source
            if not isinstance(arn_text, str):
                continue
            name = arn_text.rsplit(separator, 1)[-1]
            if name not in known:
                raise TemplateError(
                    f"{logical_id}.{event_name} reads {name!r}, which infra/resources.json does not create "
                    f"(known: {sorted(known)}); is the handler's name built for this stage?"
                )
            event["Properties"][key] = {"Fn::GetAtt": [known[name], "Arn"]}
            # the handlers return {"batchItemFailures": [...]}: one poison record must not block the rest
            event["Properties"]["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
            mapping = template.event_source_mapping(known[name]) if event["Type"] == "Kinesis" else None
            if mapping is not None:
                event["Properties"].update(mapping.sam_properties())


def _assign_execution_roles(template: Template) -> None:
    """Each function runs as its own role (`Metadata["dayingji:LambdaFunction"]`) under the name its log group
    implies; a function without a role fails the step, and Lambda roles nothing refers to any more (Chalice's
    `DefaultRole`) are removed. Roles of functions this package does not have are left unused."""
    resources = template.body["Resources"]
    bindings = _function_bindings(template)
    functions = [logical_id for logical_id, r in resources.items() if r.get("Type") == _SERVERLESS_FUNCTION]
    missing = [function for function in functions if function not in bindings]
    if missing:
        raise TemplateError(
            f"functions {missing} have no execution role: add an AWS::IAM::Role to infra/resources.json with "
            f'Metadata {{"{LAMBDA_FUNCTION_KEY}": {{"LogicalId": ..., "LogGroup": ...}}}} naming what it may touch'
        )
    for function in functions:
        role, log_group = bindings[function]
        properties = resources[function]["Properties"]
        properties["Role"] = {"Fn::GetAtt": [role, "Arn"]}
        properties["FunctionName"] = _function_name(template, log_group)
    bound_roles = {role for role, _ in bindings.values()}
    referenced = set(_referenced_names([template.body.get("Outputs", {}), resources]))
    for logical_id, resource in template.resources.items():
        if (
            resource.type == "AWS::IAM::Role"
            and _trusts_lambda(resource.properties)
            and logical_id not in bound_roles
            and logical_id not in referenced
        ):
            del resources[logical_id]


def _function_bindings(template: Template) -> dict[str, tuple[str, str]]:
    """Function logical id -> (its role, its log group), from the roles' `dayingji:LambdaFunction`."""
    bindings: dict[str, tuple[str, str]] = {}
    for logical_id, resource in template.resources.items():
        binding = resource.metadata.get(LAMBDA_FUNCTION_KEY)
        if binding is None:
            continue
        if resource.type != "AWS::IAM::Role" or not isinstance(binding, Mapping):
            raise TemplateError(f"{logical_id}: {LAMBDA_FUNCTION_KEY} must be an object on an IAM role")
        function, log_group = binding.get("LogicalId"), binding.get("LogGroup")
        if not isinstance(function, str) or not isinstance(log_group, str):
            raise TemplateError(f"{logical_id}: {LAMBDA_FUNCTION_KEY} needs LogicalId and LogGroup")
        if function in bindings:
            raise TemplateError(f"{function} has two execution roles: {bindings[function][0]} and {logical_id}")
        bindings[function] = (logical_id, log_group)
    return bindings


def _function_name(template: Template, log_group: str) -> Any:
    """`/aws/lambda/<name>` (plain or `Fn::Sub`) of the log group -> the function name `<name>`, same form."""
    resource = template.resources.get(log_group)
    if resource is None or resource.type != "AWS::Logs::LogGroup":
        raise TemplateError(f"{log_group} is not a log group of this template")
    name = resource.properties.get("LogGroupName")
    text = name.get("Fn::Sub") if isinstance(name, Mapping) else name
    if not isinstance(text, str) or not text.startswith(LAMBDA_LOG_GROUP_PREFIX):
        raise TemplateError(f"{log_group}: LogGroupName must be {LAMBDA_LOG_GROUP_PREFIX}<function name>")
    function_name = text.removeprefix(LAMBDA_LOG_GROUP_PREFIX)
    return {"Fn::Sub": function_name} if isinstance(name, Mapping) else function_name


def _trusts_lambda(role_properties: Mapping[str, Any]) -> bool:
    statements = role_properties.get("AssumeRolePolicyDocument", {}).get("Statement", [])
    for statement in statements:
        services = statement.get("Principal", {}).get("Service", [])
        if "lambda.amazonaws.com" in ([services] if isinstance(services, str) else services):
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.cfn", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    finalize = commands.add_parser("finalize", help="apply the packaging touches to a packaged sam.json in place")
    finalize.add_argument("sam_json", type=Path)
    finalize.add_argument("--stage", required=True)
    finalize.add_argument("--infra-dir", type=Path, default=INFRA_DIR)
    args = parser.parse_args(argv)

    packaged = json.loads(args.sam_json.read_text(encoding="utf-8"))
    try:
        result = finalize_package(packaged, args.stage, args.infra_dir)
    except (TemplateError, OSError, ValueError) as exc:
        print(f"local.cfn finalize: {exc}", file=sys.stderr)
        return 1
    args.sam_json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
