"""Only the deliver function may read the SMS provider's access key, and only the stage's one secret or parameter
(infra/resources.json, docs/sms-channels.md "Configuration"): least privilege, the name from the template."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Any

import pytest

from local.cfn import Pseudo, Resolver, Template

KEY_ACTIONS = {"secretsmanager", "ssm", "kms"}


def statements(role: Any) -> Iterator[dict[str, Any]]:
    for policy in role.properties.get("Policies", []):
        yield from policy["PolicyDocument"]["Statement"]


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load()


def resolved(template: Template, node: Any, stage: str = "prod") -> str:
    parameters = template.parameter_values({"Stage": stage})
    value = Resolver(parameters, Pseudo.for_region("cn-north-1", "123456789012", "dayingji-prod")).resolve(node)
    assert isinstance(value, str)
    return value


def test_no_role_but_the_deliver_functions_reads_secrets_or_parameters(template: Template) -> None:
    readers = {
        logical_id
        for logical_id, resource in template.resources.items()
        if resource.type == "AWS::IAM::Role"
        for statement in statements(resource)
        if {action.split(":")[0] for action in actions(statement)} & KEY_ACTIONS
    }
    assert readers == {"DeliverRole"}


def test_the_deliver_role_reads_the_stages_secret_and_parameter_only(template: Template) -> None:
    role = template.resources["DeliverRole"]
    granted = {
        action: resolved(template, statement["Resource"])
        for statement in statements(role)
        for action in actions(statement)
        if action.split(":")[0] in KEY_ACTIONS
    }

    assert set(granted) == {"secretsmanager:GetSecretValue", "ssm:GetParameter"}
    secret_pattern = granted["secretsmanager:GetSecretValue"]
    # Secrets Manager appends "-" and six random characters to a secret's ARN: IAM's `?` matches one each
    assert fnmatch.fnmatchcase(
        "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:dayingji/prod/aliyun-sms-AbCdEf", secret_pattern
    )
    for other in (
        "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:dayingji/dev/aliyun-sms-AbCdEf",
        "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:dayingji/prod/aliyun-sms-extra-AbCdEf",
        "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:other-AbCdEf",
    ):
        assert not fnmatch.fnmatchcase(other, secret_pattern), other
    assert "*" not in secret_pattern
    parameter = "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/dayingji/prod/aliyun-sms"
    assert granted["ssm:GetParameter"] == parameter


def test_the_template_names_the_secret_a_deployer_creates(template: Template) -> None:
    name = resolved(template, template.outputs["SmsAccessKeySecretName"])
    assert name == "dayingji/prod/aliyun-sms"
    secret_pattern = resolved(
        template,
        next(
            s["Resource"]
            for s in statements(template.resources["DeliverRole"])
            if s["Sid"] == "ReadSmsAccessKeySecret"
        ),
    )
    assert secret_pattern.split(":secret:")[1] == name + "-??????"
