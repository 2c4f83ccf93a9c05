"""Replay the device-stream records behind ingest's on-failure messages (docs/operations.md, "Discarded batches").

Run: .venv/bin/python -m scripts.replay_ingest_failures --stage prod [--dry-run] [--max-messages N]
     (AWS credentials and region of the stack; `--endpoint-url` for the local runtime's moto server)

Lambda's on-failure message carries only where the discarded batch was (`KinesisBatchInfo`: shard, first and last
sequence number, batch size), never the data. For each message on `dayingji-<stage>-ingest-failures` this reads the
records back from the stream (`AT_SEQUENCE_NUMBER`, up to the last sequence number) and invokes
`dayingji-<stage>-ingest` synchronously with a Kinesis event of exactly those records: their original sequence
numbers and arrival times, so the handler skips what it stored already and judges clocks against the original
arrival. A message is deleted only when every record was read back and the invocation reported no failure;
otherwise it stays on the queue (and keeps the alarm on). The stream keeps records 24 h from arrival: replay
before then. Exit status 0 when every message was replayed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

Invoke = Callable[[dict[str, Any]], Any]
"""Hand a Kinesis event to the ingest function; its answer (`{"batchItemFailures": [...]}`), raises on error."""

MAX_EVENT_BYTES = 5_000_000  # under Lambda's 6 MB synchronous payload limit
_MAX_EMPTY_READS = 20  # GetRecords may answer empty before the records it has; give up after this many


@dataclass(frozen=True)
class Replay:
    """What one on-failure message came to: records read back and handed over, and whether all went through."""

    shard_id: str
    first_sequence: str
    last_sequence: str
    expected: int
    read: int
    failed: tuple[str, ...] = ()
    error: str = ""

    @property
    def complete(self) -> bool:
        return self.read == self.expected and not self.failed and not self.error


def read_batch(kinesis: Any, stream_name: str, info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The records of one discarded batch, read back from the stream (fewer when the stream expired some)."""
    last = int(info["endSequenceNumber"])
    iterator = kinesis.get_shard_iterator(
        StreamName=stream_name,
        ShardId=info["shardId"],
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=info["startSequenceNumber"],
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    empty_reads = 0
    while iterator and len(records) < int(info["batchSize"]) and empty_reads < _MAX_EMPTY_READS:
        response = kinesis.get_records(ShardIterator=iterator, Limit=int(info["batchSize"]) - len(records))
        page = response["Records"]
        empty_reads = 0 if page else empty_reads + 1
        for record in page:
            if int(record["SequenceNumber"]) > last:
                return records
            records.append(record)
        iterator = response.get("NextShardIterator")
    return records


def kinesis_events(
    records: Sequence[dict[str, Any]], info: Mapping[str, Any], region: str
) -> Iterator[dict[str, Any]]:
    """Kinesis events as Lambda builds them, each under `MAX_EVENT_BYTES`, records in stream order."""
    batch: list[dict[str, Any]] = []
    size = 0
    for record in records:
        arrival = record.get("ApproximateArrivalTimestamp")
        event_record = {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": record["PartitionKey"],
                "sequenceNumber": record["SequenceNumber"],
                "data": base64.b64encode(record["Data"]).decode("ascii"),
                "approximateArrivalTimestamp": arrival.timestamp() if arrival is not None else 0.0,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{info['shardId']}:{record['SequenceNumber']}",
            "eventName": "aws:kinesis:record",
            "awsRegion": region,
            "eventSourceARN": info["streamArn"],
        }
        record_size = len(json.dumps(event_record))
        if batch and size + record_size > MAX_EVENT_BYTES:
            yield {"Records": batch}
            batch, size = [], 0
        batch.append(event_record)
        size += record_size
    if batch:
        yield {"Records": batch}


def replay(document: Mapping[str, Any], kinesis: Any, invoke: Invoke | None, region: str) -> Replay:
    """Read one message's batch back and hand it to the function (`None`: only read it); stop at the first event
    that fails."""
    info = document["KinesisBatchInfo"]
    stream_name = str(info["streamArn"]).rsplit("/", 1)[-1]
    result = Replay(
        info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"], int(info["batchSize"]), 0
    )
    try:
        records = read_batch(kinesis, stream_name, info)
    except Exception as exc:  # e.g. the stream trimmed the start already: reported, the message stays
        return replace(result, error=f"reading the stream: {type(exc).__name__}: {exc}")
    result = replace(result, read=len(records))
    if invoke is None:
        return result
    for event in kinesis_events(records, info, region):
        try:
            answer = invoke(event)
        except Exception as exc:  # reported; the message stays for another try
            return replace(result, error=f"{type(exc).__name__}: {exc}")
        failures = answer.get("batchItemFailures", []) if isinstance(answer, Mapping) else []
        if failures:
            return replace(result, failed=tuple(str(f.get("itemIdentifier")) for f in failures))
    return result


def lambda_invoker(lambda_client: Any, function_name: str) -> Invoke:
    def invoke(event: dict[str, Any]) -> Any:
        response = lambda_client.invoke(
            FunctionName=function_name, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
        )
        answer = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise RuntimeError(f"{function_name} failed: {answer}")
        return answer

    return invoke


def replay_queue(
    sqs: Any,
    queue_url: str,
    kinesis: Any,
    invoke: Invoke | None,
    region: str,
    max_messages: int,
    visibility_timeout_s: int = 300,
) -> list[Replay]:
    """Replay up to `max_messages` messages; delete each one whose batch went through completely (`invoke` None:
    a dry run that only reads the batches back and deletes nothing). A message not deleted is hidden for
    `visibility_timeout_s`, then back on the queue for the next run."""
    results: list[Replay] = []
    while len(results) < max_messages:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, max_messages - len(results)),
            VisibilityTimeout=visibility_timeout_s,
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            result = replay(json.loads(message["Body"]), kinesis, invoke, region)
            results.append(result)
            if invoke is not None and result.complete:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return results


def main(argv: Sequence[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--max-messages", type=int, default=100)
    parser.add_argument(
        "--dry-run", action="store_true", help="read the batches back, invoke nothing, delete nothing"
    )
    parser.add_argument("--endpoint-url", default=None)
    args = parser.parse_args(argv)
    session = boto3.session.Session()
    region = session.region_name or "cn-north-1"

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=args.endpoint_url)

    sqs, kinesis = client("sqs"), client("kinesis")
    queue_url = sqs.get_queue_url(QueueName=f"dayingji-{args.stage}-ingest-failures")["QueueUrl"]
    invoke = None if args.dry_run else lambda_invoker(client("lambda"), f"dayingji-{args.stage}-ingest")
    results = replay_queue(sqs, queue_url, kinesis, invoke, region, args.max_messages)
    for result in results:
        print(json.dumps({**asdict(result), "complete": result.complete}, ensure_ascii=False))
    return 0 if all(result.complete for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
