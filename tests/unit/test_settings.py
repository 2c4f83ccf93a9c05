"""One settings model from the environment; the policy a stage sets is merged over the defaults and validated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from chalicelib.domain.catalog import build_policy
from chalicelib.settings import Settings

CONFIG = json.loads((Path(__file__).resolve().parents[2] / ".chalice" / "config.json").read_text())


def test_settings_come_from_dyj_variables_and_the_aws_endpoint() -> None:
    settings = Settings.from_env(
        {"DYJ_STAGE": "test", "DYJ_TABLE_WARNING": "w", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}
    )
    assert (settings.stage, settings.table_warning, settings.aws_endpoint_url) == (
        "test",
        "w",
        "http://127.0.0.1:5000",
    )


def test_an_unknown_stage_is_refused_at_start() -> None:
    with pytest.raises(ValidationError):
        Settings.from_env({"DYJ_STAGE": "staging"})


def test_a_stage_policy_overrides_one_number_and_keeps_the_other_defaults() -> None:
    settings = Settings.from_env({"DYJ_POLICY_JSON": json.dumps({"deadlines": {"red": {"acknowledge_s": 60}}})})
    policy = build_policy(settings.policy)
    assert policy.deadlines.red.acknowledge_s == 60
    assert policy.deadlines.red.verify_s == 900 and policy.deadlines.orange.acknowledge_s == 600


def test_a_misspelt_policy_key_is_an_error_not_a_silent_default() -> None:
    with pytest.raises(ValidationError):
        build_policy({"deadlines": {"red": {"acknowledge": 60}}})


def test_the_policy_can_come_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"grading": {"frequent_count": 4}}), encoding="utf-8")
    assert build_policy(Settings.from_env({"DYJ_POLICY_FILE": str(path)}).policy).grading.frequent_count == 4


def test_the_test_stage_runs_seconds_scale_deadlines_and_the_prod_stage_the_measures() -> None:
    test = build_policy(Settings.from_env(CONFIG["stages"]["test"]["environment_variables"]).policy)
    prod = build_policy(Settings.from_env(CONFIG["stages"]["prod"]["environment_variables"]).policy)
    assert (
        test.deadlines.red.acknowledge_s <= 60
        and test.workflow.sweep_grace_s <= 10
        and test.deadlines.red.confirm_s == 10
    )
    assert (prod.deadlines.red.acknowledge_s, prod.deadlines.red.verify_s, prod.deadlines.red.clear_s) == (
        300,
        900,
        7200,
    )
