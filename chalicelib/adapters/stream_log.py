"""The device stream read back from Kinesis (`StreamLog`): a cold container's catch-up (docs/decisions.md "What a
container restart loses").

One shard iterator `AFTER_SEQUENCE_NUMBER` (the shard's checkpoint), then `GetRecords` pages in order until the
first record at or past the sequence the reader stops before, or until the shard has nothing newer. Reads go
through the function's own role, which the event source mapping needs anyway (`kinesis:GetShardIterator`,
`kinesis:GetRecords` on the stream).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from chalicelib.services.ports import StreamEntry

PAGE_LIMIT = 10_000  # GetRecords' own maximum


class KinesisStreamLog:
    def __init__(self, client: Any, stream_name: str, max_pages: int = 500) -> None:
        self._client = client
        self._stream = stream_name
        self._max_pages = max_pages  # a bound on one catch-up's reads: 500 pages of up to 10,000 records

    def read(self, shard_id: str, after_sequence: str, before_sequence: str) -> Iterator[StreamEntry]:
        stop = int(before_sequence)
        iterator: str | None = self._client.get_shard_iterator(
            StreamName=self._stream,
            ShardId=shard_id,
            ShardIteratorType="AFTER_SEQUENCE_NUMBER",
            StartingSequenceNumber=after_sequence,
        )["ShardIterator"]
        for _ in range(self._max_pages):
            if iterator is None:
                return
            page = self._client.get_records(ShardIterator=iterator, Limit=PAGE_LIMIT)
            for record in page["Records"]:
                if int(record["SequenceNumber"]) >= stop:
                    return
                arrival = record.get("ApproximateArrivalTimestamp")
                yield StreamEntry(
                    sequence=record["SequenceNumber"],
                    partition_key=record["PartitionKey"],
                    data=record["Data"],
                    arrival_s=arrival.timestamp() if isinstance(arrival, datetime) else float(arrival or 0.0),
                )
            if not page["Records"] and not page.get("MillisBehindLatest"):
                return  # caught up with the shard's end: nothing older than the stop is left
            iterator = page.get("NextShardIterator")
