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


def test_dyj_variables_win_over_the_aws_ones_and_lambdas_region_is_taken_when_no_dyj_region() -> None:
    assert Settings.from_env({"AWS_REGION": "cn-north-1"}).region == "cn-north-1"
    both = Settings.from_env(
        {
            "AWS_REGION": "cn-north-1",
            "DYJ_REGION": "cn-northwest-1",
            "AWS_ENDPOINT_URL": "http://a",
            "DYJ_AWS_ENDPOINT_URL": "http://b",
        }
    )
    assert (both.region, both.aws_endpoint_url) == ("cn-northwest-1", "http://b")


def test_variables_are_read_whatever_their_case_and_typed() -> None:
    settings = Settings.from_env(
        {"dyj_sms_enabled": "false", "DYJ_STATE_FLUSH_S": "12.5", "DYJ_AWS_MAX_ATTEMPTS": "5"}
    )
    assert (settings.sms_enabled, settings.state_flush_s, settings.aws_max_attempts) == (False, 12.5, 5)


def test_from_env_reads_only_the_mapping_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYJ_TABLE_WARNING", "from-the-process")
    assert Settings.from_env({}).table_warning == "dayingji-dev-warning"
    assert Settings.from_env().table_warning == "from-the-process"


@pytest.mark.parametrize(
    ("environ", "field", "says"),
    [
        ({"DYJ_STAGE": "staging"}, "stage", "'dev', 'test', 'prod' or 'local'"),
        ({"DYJ_SMS_ENABLED": "maybe"}, "sms_enabled", "valid boolean"),
        ({"DYJ_STATE_FLUSH_S": "-1"}, "state_flush_s", "greater than or equal to 0"),
        ({"DYJ_QUARANTINE_TTL_DAYS": "ninety"}, "quarantine_ttl_days", "valid integer"),
        ({"DYJ_AWS_READ_TIMEOUT_S": "0"}, "aws_read_timeout_s", "greater than 0"),
        ({"DYJ_AWS_MAX_ATTEMPTS": "0"}, "aws_max_attempts", "greater than or equal to 1"),
        ({"DYJ_DYNAMO_MAX_RETRY_ATTEMPTS": "99"}, "dynamo_max_retry_attempts", "less than or equal to 10"),
        ({"DYJ_POLICY_JSON": "{not json"}, "DYJ_POLICY_JSON", "DYJ_POLICY_JSON is not JSON"),
        ({"DYJ_POLICY_JSON": "[1, 2]"}, "DYJ_POLICY_JSON", "valid dictionary"),
        ({"DYJ_POLICY_FILE": "/nonexistent/policy.json"}, "DYJ_POLICY_FILE", "FileNotFoundError"),
    ],
)
def test_an_invalid_value_stops_the_container_with_an_error_naming_the_setting_and_the_rule(
    environ: dict[str, str], field: str, says: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings.from_env(environ)
    message = str(raised.value)
    assert field in message and says in message


def test_a_policy_file_that_is_not_a_json_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text("[1]", encoding="utf-8")
    with pytest.raises(ValidationError, match="valid dictionary"):
        Settings.from_env({"DYJ_POLICY_FILE": str(path)})


def test_the_policy_file_wins_over_the_inline_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"grading": {"frequent_count": 4}}), encoding="utf-8")
    settings = Settings.from_env(
        {"DYJ_POLICY_FILE": str(path), "DYJ_POLICY_JSON": json.dumps({"grading": {"frequent_count": 7}})}
    )
    assert settings.policy == {"grading": {"frequent_count": 4}}


def test_an_unknown_argument_is_refused_and_settings_are_frozen() -> None:
    with pytest.raises(ValidationError, match="table_warnings"):
        Settings(table_warnings="typo")  # type: ignore[call-arg]
    settings = Settings.from_env({})
    with pytest.raises(ValidationError):
        settings.stage = "prod"  # type: ignore[misc]


def test_arguments_by_field_name_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "cn-north-1")
    monkeypatch.setenv("DYJ_TABLE_WARNING", "env")
    settings = Settings(region="ap-east-1", table_warning="arg", aws_endpoint_url="http://moto")
    assert (settings.region, settings.table_warning, settings.aws_endpoint_url) == (
        "ap-east-1",
        "arg",
        "http://moto",
    )
