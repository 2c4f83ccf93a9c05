"""`make package`: the deployable template is built from the real app and infra/, and cfn-lint passes on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_packaged_template_lints_clean_and_wires_every_event_source(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = tmp_path / "package"
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
    template = json.loads((out / "sam.json").read_text(encoding="utf-8"))
    resources = template["Resources"]
    functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    events = {
        name: event for fn in functions.values() for name, event in fn["Properties"].get("Events", {}).items()
    }
    kinesis = [e for e in events.values() if e["Type"] == "Kinesis"]
    sqs = [e for e in events.values() if e["Type"] == "SQS"]
    assert kinesis and kinesis[0]["Properties"]["Stream"] == {"Fn::GetAtt": ["DeviceStream", "Arn"]}
    assert kinesis[0]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert sqs and sqs[0]["Properties"]["Queue"] == {"Fn::GetAtt": ["WorkflowEventQueue", "Arn"]}
    assert any(e["Type"] == "Schedule" for e in events.values())
    assert isinstance(resources["DisposalStateMachine"]["Properties"]["Definition"], dict)
    assert template["Parameters"]["Stage"]["Default"] == "test"
