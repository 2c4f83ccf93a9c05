"""Step Functions: start and look up the disposal executions (one per warning, named after it)."""

from __future__ import annotations

import json
from typing import Any


class StepFunctionsExecutions:
    def __init__(self, sfn: Any, state_machine_arn: str) -> None:
        self._sfn = sfn
        self._arn = state_machine_arn

    def _execution_arn(self, name: str) -> str:
        return self._arn.replace(":stateMachine:", ":execution:") + f":{name}"

    def start(self, name: str, payload: dict[str, Any], state_machine_arn: str | None = None) -> bool:
        try:
            self._sfn.start_execution(
                stateMachineArn=state_machine_arn or self._arn, name=name, input=json.dumps(payload)
            )
        except self._sfn.exceptions.ExecutionAlreadyExists:
            return False
        return True

    def status(self, name: str) -> str | None:
        try:
            found = self._sfn.describe_execution(executionArn=self._execution_arn(name))
        except self._sfn.exceptions.ExecutionDoesNotExist:
            return None
        return str(found["status"])


class SnsSms:
    def __init__(self, sns: Any, enabled: bool = True) -> None:
        self._sns = sns
        self._enabled = enabled

    def sms(self, phone: str, text: str) -> None:
        if self._enabled:
            self._sns.publish(
                PhoneNumber=phone,
                Message=text,
                MessageAttributes={"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}},
            )
