"""Step Functions: the disposal timers (one short execution per due version of a warning), and the escalation topic
(the consoles' queues; people are told by delivery jobs)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger

from chalicelib.observability import INHERIT, SERVICE, swallowed

logger = Logger(service=SERVICE, child=True, level=INHERIT)


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of the execution `name` of the state machine (Step Functions derives it the same way)."""
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    if not prefix:
        raise ValueError(f"not a state machine ARN: {state_machine_arn}")
    return f"{prefix}:execution:{machine}:{name}"


class StepFunctionsExecutions:
    def __init__(self, sfn: Any, state_machine_arn: str) -> None:
        self._sfn = sfn
        self._arn = state_machine_arn

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        try:
            self._sfn.start_execution(stateMachineArn=self._arn, name=name, input=json.dumps(payload))
        except self._sfn.exceptions.ExecutionAlreadyExists:
            return False
        return True

    def stop(self, name: str) -> None:
        """Best effort: a timer that has ended or never started is fine (a stale one is ignored when it fires)."""
        try:
            self._sfn.stop_execution(executionArn=execution_arn(self._arn, name), cause="superseded")
        except Exception as exc:
            logger.info("timer not stopped", extra={"timer": name, "error": type(exc).__name__})
            swallowed("sfn.stop_timer")

    def running_names(self) -> set[str]:
        running: set[str] = set()
        paginator = self._sfn.get_paginator("list_executions")
        for page in paginator.paginate(stateMachineArn=self._arn, statusFilter="RUNNING"):
            running.update(str(execution["name"]) for execution in page["executions"])
        return running


class SnsTopic:
    def __init__(self, sns: Any, topic_arn: str) -> None:
        self._sns = sns
        self._topic_arn = topic_arn

    def publish(self, body: dict[str, Any], attributes: dict[str, dict[str, str]]) -> None:
        self._sns.publish(
            TopicArn=self._topic_arn, Message=json.dumps(body, ensure_ascii=False), MessageAttributes=attributes
        )
