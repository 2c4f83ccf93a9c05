"""Step Functions: start and look up the disposal executions (one per warning, named after it)."""

from __future__ import annotations

import json
from typing import Any


class StepFunctionsExecutions:
    def __init__(self, sfn: Any, state_machine_arn: str) -> None:
        self._sfn = sfn
        self._arn = state_machine_arn

    def start(self, name: str, payload: dict[str, Any], state_machine_arn: str | None = None) -> bool:
        try:
            self._sfn.start_execution(
                stateMachineArn=state_machine_arn or self._arn, name=name, input=json.dumps(payload)
            )
        except self._sfn.exceptions.ExecutionAlreadyExists:
            return False
        return True

    def running_warnings(self) -> set[str]:
        """Execution names are the warning id, `<id>-<n>` after a hand-over, `<id>-r<time>` after a repair."""
        running: set[str] = set()
        paginator = self._sfn.get_paginator("list_executions")
        for page in paginator.paginate(stateMachineArn=self._arn, statusFilter="RUNNING"):
            running.update(execution["name"].split("-", 1)[0] for execution in page["executions"])
        return running


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
