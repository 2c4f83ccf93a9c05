"""bench/moto_speed.py's patch answers every Query, Scan and projection exactly as unpatched moto does, before
and after writes (its caches are kept per write generation)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bench import moto_speed

TABLE = "speed"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        keys = ("pk", "sk", "g1", "g1s", "g2")
        dynamodb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "N" if name == "g1s" else "S"} for name in keys
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_g1",
                    "KeySchema": [
                        {"AttributeName": "g1", "KeyType": "HASH"},
                        {"AttributeName": "g1s", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
                {
                    "IndexName": "by_g2",  # sparse, no range key, keys only
                    "KeySchema": [{"AttributeName": "g2", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                },
            ],
        )
        for n in range(240):
            item = {
                "pk": {"S": f"P{n % 12:02d}"},
                "sk": {"S": f"S{(n * 7) % 240:03d}"},
                "g1": {"S": f"G{n % 5}"},
                "g1s": {"N": str((n * 13) % 50)},  # ties: the table's keys order them
                "v": {"N": str(n)},
                "m": {"M": {"a": {"S": "x"}, "b": {"L": [{"N": "1"}, {"N": "2"}]}}},
            }
            if n % 3 == 0:
                item["g2"] = {"S": f"H{n % 2}"}
            dynamodb.put_item(TableName=TABLE, Item=item)
        yield dynamodb


QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "P03"}}},
    {
        "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
        "ExpressionAttributeValues": {":p": {"S": "P05"}, ":a": {"S": "S020"}, ":b": {"S": "S200"}},
        "ScanIndexForward": False,
        "Limit": 4,
    },
    {
        "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
        "ExpressionAttributeValues": {":p": {"S": "P07"}, ":s": {"S": "S1"}},
    },
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "nobody"}}},
    {
        "IndexName": "by_g1",
        "KeyConditionExpression": "g1 = :g AND g1s >= :s",
        "ExpressionAttributeValues": {":g": {"S": "G2"}, ":s": {"N": "10"}, ":v": {"N": "100"}},
        "FilterExpression": "v > :v",
        "Limit": 7,
    },
    {
        "IndexName": "by_g1",
        "KeyConditionExpression": "g1 = :g",
        "ExpressionAttributeValues": {":g": {"S": "G4"}},
        "ScanIndexForward": False,
        "Limit": 9,
        "ProjectionExpression": "pk, sk, v, m.b[1], m.a",
    },
    {
        "IndexName": "by_g1",
        "KeyConditionExpression": "g1 = :g",
        "ExpressionAttributeValues": {":g": {"S": "G1"}},
        "ProjectionExpression": "#v, pk, g1s, nothing",
        "ExpressionAttributeNames": {"#v": "v"},
    },
    {
        "IndexName": "by_g2",
        "KeyConditionExpression": "g2 = :g",
        "ExpressionAttributeValues": {":g": {"S": "H1"}},
        "Limit": 5,
    },
    {"IndexName": "by_g1", "KeyConditionExpression": "g1 = :g", "ExpressionAttributeValues": {":g": {"S": "G0"}}},
]
SCANS: list[dict[str, Any]] = [
    {"Limit": 17},
    {"Segment": 1, "TotalSegments": 3, "Limit": 11, "ProjectionExpression": "pk, sk, v"},
    {"IndexName": "by_g2", "Limit": 13},
]


def pages(client: Any, operation: str, request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of the request (following LastEvaluatedKey), without the response metadata."""
    answers, request = [], {"TableName": TABLE, **request}
    while True:
        page = getattr(client, operation)(**request)
        page.pop("ResponseMetadata")
        answers.append(page)
        if "LastEvaluatedKey" not in page:
            return answers
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def answers(client: Any) -> list[list[dict[str, Any]]]:
    return [pages(client, "query", q) for q in QUERIES] + [pages(client, "scan", s) for s in SCANS]


def patched(client: Any, write: Any = None) -> list[list[dict[str, Any]]]:
    """The answers with the patch installed, its caches warm before `write` runs."""
    moto_speed.install()
    try:
        before = answers(client)
        if write is None:
            return before
        write()
        return answers(client)
    finally:
        moto_speed.uninstall()


def test_the_patch_answers_as_moto_does_before_and_after_writes(client: Any) -> None:
    plain = answers(client)
    assert sum(len(p) > 1 for p in plain) >= 5  # several requests page
    assert patched(client) == plain

    def update() -> None:  # moto changes the stored item in place: moves it to another partition of both indexes
        client.update_item(
            TableName=TABLE,
            Key={"pk": {"S": "P03"}, "sk": {"S": "S021"}},
            UpdateExpression="SET g1 = :g, g2 = :h",
            ExpressionAttributeValues={":g": {"S": "G4"}, ":h": {"S": "H1"}},
        )

    after_update = patched(client, update)
    assert after_update != plain
    assert after_update == answers(client)

    def put_and_delete() -> None:
        client.delete_item(TableName=TABLE, Key={"pk": {"S": "P05"}, "sk": {"S": "S035"}})
        client.put_item(
            TableName=TABLE,
            Item={"pk": {"S": "P07"}, "sk": {"S": "S150"}, "g1": {"S": "G0"}, "g1s": {"N": "3"}, "v": {"N": "9"}},
        )

    after_writes = patched(client, put_and_delete)
    assert after_writes != after_update
    assert after_writes == answers(client)
