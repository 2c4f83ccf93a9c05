"""The local topic-rule SQL behaves like AWS IoT SQL for the subset our rules use."""

import json

import pytest

from local.rule_sql import (
    RuleError,
    RuleSql,
    RuleSqlSyntaxError,
    substitute,
    topic_matches,
    validate_topic_filter,
)

TELEMETRY_RULE = (
    "SELECT *, topic(2) AS topic_sector, topic(3) AS topic_enterprise, topic(4) AS topic_device, "
    "timestamp() AS received_at FROM 'dyj/+/+/+/telemetry'"
)
TOPIC = "dyj/hazchem/ent-001/dev-42/telemetry"
NOW_MS = 1_700_000_000_123


def payload(**fields: object) -> bytes:
    return json.dumps(fields).encode()


# --------------------------------------------------------------------------------------------- topic filters


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("dyj/+/+/+/telemetry", TOPIC, True),
        ("dyj/+/+/+/telemetry", "dyj/hazchem/ent-001/dev-42/status", False),
        ("dyj/+/+/+/telemetry", "dyj/hazchem/ent-001/telemetry", False),
        ("dyj/+/+/+/telemetry", "dyj/hazchem/ent-001/dev-42/extra/telemetry", False),
        ("dyj/+/+/+/telemetry", "dyj//ent-001/dev-42/telemetry", True),  # '+' matches an empty level
        ("dyj/#", TOPIC, True),
        ("dyj/#", "dyj", True),  # '#' includes the parent level
        ("dyj/hazchem/#", "dyj/mining/x", False),
        ("#", "anything/at/all", True),
        ("#", "$aws/things/x/shadow", False),  # wildcards never match '$' topics at the first level
        ("+/x", "$SYS/x", False),
        ("dyj/hazchem/ent-001/dev-42/telemetry", TOPIC, True),
        ("dyj/hazchem/ent-001/dev-42/telemetry", TOPIC + "/", False),
        ("Dyj/#", TOPIC, False),  # case-sensitive
    ],
)
def test_topic_filter_matching_follows_mqtt_wildcards(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


@pytest.mark.parametrize("bad_filter", ["", "dyj/#/telemetry", "dyj/a#", "dyj/+x/telemetry", "dyj/x+"])
def test_malformed_topic_filters_are_rejected(bad_filter: str) -> None:
    with pytest.raises(RuleSqlSyntaxError):
        validate_topic_filter(bad_filter)


def test_rule_with_malformed_filter_does_not_parse() -> None:
    with pytest.raises(RuleSqlSyntaxError):
        RuleSql.parse("SELECT * FROM 'dyj/#/telemetry'")


# --------------------------------------------------------------------------------------------- the telemetry rule


def test_telemetry_rule_adds_topic_levels_and_receive_time_to_the_payload() -> None:
    rule = RuleSql.parse(TELEMETRY_RULE)

    output = rule.apply(TOPIC, payload(ts=1, gas=12.5, nested={"a": 1}), now_ms=NOW_MS)

    assert output == {
        "ts": 1,
        "gas": 12.5,
        "nested": {"a": 1},
        "topic_sector": "hazchem",
        "topic_enterprise": "ent-001",
        "topic_device": "dev-42",
        "received_at": NOW_MS,
    }


def test_rule_exposes_its_topic_filter_and_matches() -> None:
    rule = RuleSql.parse(TELEMETRY_RULE)

    assert rule.topic_filter == "dyj/+/+/+/telemetry"
    assert rule.matches(TOPIC)
    assert not rule.matches("dyj/hazchem/ent-001/dev-42/status")


def test_topic_that_does_not_match_gives_none() -> None:
    rule = RuleSql.parse(TELEMETRY_RULE)

    assert rule.apply("dyj/hazchem/ent-001/dev-42/status", payload(ts=1), now_ms=NOW_MS) is None


def test_timestamp_defaults_to_the_current_time() -> None:
    rule = RuleSql.parse("SELECT timestamp() AS t FROM 'a/#'")

    output = rule.apply("a/b", b"{}")

    assert output is not None
    assert output["t"] > NOW_MS


# --------------------------------------------------------------------------------------------- topic(n)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("topic(1)", "dyj"),
        ("topic(2)", "hazchem"),
        ("topic(4)", "dev-42"),
        ("topic(5)", "telemetry"),
        ("topic()", TOPIC),
    ],
)
def test_topic_function_is_one_based(expression: str, expected: str) -> None:
    rule = RuleSql.parse(f"SELECT {expression} AS value FROM 'dyj/#'")

    assert rule.apply(TOPIC, b"{}", now_ms=NOW_MS) == {"value": expected}


@pytest.mark.parametrize("index", ["0", "6", "-1"])
def test_topic_index_out_of_range_is_undefined_and_left_out(index: str) -> None:
    rule = RuleSql.parse(f"SELECT topic({index}) AS value, 1 AS one FROM 'dyj/#'")

    assert rule.apply(TOPIC, b"{}", now_ms=NOW_MS) == {"one": 1}


def test_topic_only_rule_accepts_a_binary_payload() -> None:
    rule = RuleSql.parse("SELECT topic(4) AS device FROM 'dyj/#'")

    assert rule.apply(TOPIC, b"\x00\xff binary", now_ms=NOW_MS) == {"device": "dev-42"}


# --------------------------------------------------------------------------------------------- select items


def test_attribute_paths_and_default_names() -> None:
    rule = RuleSql.parse("SELECT state.reported.gas, readings[1] AS second, topic(2) FROM 'dyj/#'")

    output = rule.apply(TOPIC, payload(state={"reported": {"gas": 3}}, readings=[10, 20, 30]), now_ms=NOW_MS)

    assert output == {"gas": 3, "second": 20, "topic": "hazchem"}


def test_missing_attribute_is_left_out_of_the_output() -> None:
    rule = RuleSql.parse("SELECT a.b AS ab, c FROM 'dyj/#'")

    assert rule.apply(TOPIC, payload(a=1, c=None), now_ms=NOW_MS) == {"c": None}


def test_later_items_overwrite_earlier_keys() -> None:
    rule = RuleSql.parse("SELECT *, topic(4) AS device FROM 'dyj/#'")

    output = rule.apply(TOPIC, payload(device="spoofed", gas=1), now_ms=NOW_MS)

    assert output == {"device": "dev-42", "gas": 1}


def test_star_after_alias_lets_the_payload_win() -> None:
    rule = RuleSql.parse("SELECT topic(4) AS device, * FROM 'dyj/#'")

    assert rule.apply(TOPIC, payload(device="from-payload"), now_ms=NOW_MS) == {"device": "from-payload"}


def test_literals_and_clientid() -> None:
    rule = RuleSql.parse("SELECT 'x''y' AS s, 2.5 AS f, -3 AS n, true AS b, clientid() AS c FROM 'dyj/#'")

    assert rule.apply(TOPIC, b"{}", now_ms=NOW_MS, client_id="dev-42") == {
        "s": "x'y",
        "f": 2.5,
        "n": -3,
        "b": True,
        "c": "dev-42",
    }
    assert rule.apply(TOPIC, b"{}", now_ms=NOW_MS) == {"s": "x'y", "f": 2.5, "n": -3, "b": True, "c": "n/a"}


def test_keywords_are_case_insensitive() -> None:
    rule = RuleSql.parse("select *, TOPIC(4) as device from 'dyj/#' where gas > 1")

    assert rule.apply(TOPIC, payload(gas=2), now_ms=NOW_MS) == {"gas": 2, "device": "dev-42"}


# --------------------------------------------------------------------------------------------- non-JSON payloads


@pytest.mark.parametrize(
    ("raw", "reason_part"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "not an object"),
        (b"42", "not an object"),
    ],
)
def test_select_star_on_a_non_json_object_payload_is_a_rule_error(raw: bytes, reason_part: str) -> None:
    rule = RuleSql.parse(TELEMETRY_RULE)

    with pytest.raises(RuleError) as caught:
        rule.apply(TOPIC, raw, now_ms=NOW_MS)

    assert reason_part in caught.value.reason


def test_where_on_a_binary_payload_is_a_rule_error() -> None:
    rule = RuleSql.parse("SELECT topic(4) AS d FROM 'dyj/#' WHERE gas > 1")

    with pytest.raises(RuleError):
        rule.apply(TOPIC, b"\x01\x02", now_ms=NOW_MS)


def test_non_json_on_a_non_matching_topic_is_not_an_error() -> None:
    rule = RuleSql.parse(TELEMETRY_RULE)

    assert rule.apply("other/topic", b"not json", now_ms=NOW_MS) is None


# --------------------------------------------------------------------------------------------- WHERE


@pytest.mark.parametrize(
    ("where", "passes"),
    [
        ("gas > 10", True),
        ("gas >= 12.5", True),
        ("gas < 10", False),
        ("gas <= 12.5", True),
        ("gas = 12.5", True),
        ("gas <> 12.5", False),
        ("gas != 1", True),
        ("kind = 'methane'", True),
        ("kind = 'co'", False),
        ("kind > 'a'", True),
        ("gas > 10 AND kind = 'methane'", True),
        ("gas > 10 AND kind = 'co'", False),
        ("gas > 100 OR kind = 'methane'", True),
        ("NOT gas > 100", True),
        ("NOT (gas > 10 AND alarm)", True),
        ("alarm = false", True),
        ("alarm", False),
        ("ok", True),
        ("gas", False),  # a number is not a boolean
        ("topic(2) = 'hazchem'", True),
        ("topic(2) = 'mining'", False),
        ("state.level = 2", True),
        ("missing > 1", False),  # Undefined is not true
        ("NOT missing > 1", False),  # NOT Undefined is Undefined
        ("missing > 1 OR gas > 1", True),
        ("missing > 1 AND gas > 1", False),
        ("missing IS UNDEFINED", True),
        ("gas IS NOT UNDEFINED", True),
        ("nothing IS NULL", True),
        ("gas IS NULL", False),
        ("gas IS NOT NULL", True),
        ("gas = '12.5'", False),  # no implicit string/number conversion for equality
        ("gas > '1'", False),  # ordering across types is Undefined
        ("-gas < 0", True),
        ("(gas > 1) = true", True),
    ],
)
def test_where_clause(where: str, passes: bool) -> None:
    rule = RuleSql.parse(f"SELECT topic(4) AS d FROM 'dyj/#' WHERE {where}")
    message = payload(gas=12.5, kind="methane", alarm=False, ok=True, nothing=None, state={"level": 2})

    output = rule.apply(TOPIC, message, now_ms=NOW_MS)

    assert (output == {"d": "dev-42"}) is passes


def test_and_binds_tighter_than_or() -> None:
    rule = RuleSql.parse("SELECT * FROM 'dyj/#' WHERE a = 1 OR a = 2 AND b = 3")

    assert rule.apply(TOPIC, payload(a=1, b=0), now_ms=NOW_MS) is not None
    assert rule.apply(TOPIC, payload(a=2, b=0), now_ms=NOW_MS) is None
    assert rule.apply(TOPIC, payload(a=2, b=3), now_ms=NOW_MS) is not None


# --------------------------------------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    "sql",
    [
        "",
        "SELECT FROM 'a'",
        "SELECT * FROM a",  # the filter must be a string literal
        "SELECT * 'a'",
        "SELECT *, FROM 'a'",
        "SELECT * FROM 'a' WHERE",
        "SELECT * FROM 'a' WHERE x >",
        "SELECT * FROM 'a' extra",
        "SELECT nosuch() AS x FROM 'a'",
        "SELECT topic(1, 2) AS x FROM 'a'",
        "SELECT timestamp(1) AS x FROM 'a'",
        "SELECT 1 FROM 'a'",  # a literal needs an alias
        "SELECT * FROM 'a' WHERE x = 'unterminated",
        "SELECT * FROM 'a' WHERE x ~ 1",
    ],
)
def test_unsupported_or_malformed_sql_is_rejected(sql: str) -> None:
    with pytest.raises(RuleSqlSyntaxError):
        RuleSql.parse(sql)


# --------------------------------------------------------------------------------------------- substitution


def test_partition_key_template_takes_the_device_from_the_topic() -> None:
    assert substitute("${topic(4)}", TOPIC, b"{}") == "dev-42"


def test_partition_key_template_works_with_a_binary_payload() -> None:
    assert substitute("${topic(4)}", TOPIC, b"\x00\xff") == "dev-42"


def test_substitution_mixes_text_functions_and_payload_fields() -> None:
    message = payload(device={"id": 7}, flag=True, obj=[1])

    result = substitute("${topic(2)}/${device.id}-${timestamp()}-${flag}-${obj}", TOPIC, message, now_ms=NOW_MS)

    assert result == f"hazchem/7-{NOW_MS}-true-[1]"


def test_substitution_reads_the_original_payload_not_aliases() -> None:
    assert substitute("${topic_device}", TOPIC, payload(gas=1)) == ""


def test_undefined_substitution_is_empty() -> None:
    assert substitute("k-${topic(9)}", TOPIC, b"{}") == "k-"


def test_template_without_expressions_is_unchanged() -> None:
    assert substitute("fixed-key", TOPIC, b"not json") == "fixed-key"


def test_substitution_of_a_payload_field_on_non_json_is_a_rule_error() -> None:
    with pytest.raises(RuleError):
        substitute("${device}", TOPIC, b"not json")


def test_newuuid_gives_a_fresh_value_each_time() -> None:
    first = substitute("${newuuid()}", TOPIC, b"{}")
    second = substitute("${newuuid()}", TOPIC, b"{}")

    assert len(first) == 36
    assert first != second


def test_malformed_substitution_expression_is_rejected() -> None:
    with pytest.raises(RuleSqlSyntaxError):
        substitute("${topic(}", TOPIC, b"{}")
