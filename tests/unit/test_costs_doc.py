"""docs/costs.md's generated block comes from bench/costs.py (its price table is the code's), and the cost model's
arithmetic: the shard count for 100,000 msg/s, IoT Core's tiers, Basic Ingest removing exactly the messaging."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.costs import (
    DOCS_COSTS,
    DOCS_END,
    DOCS_START,
    PRICE,
    PRICES,
    IngestSizing,
    Measured,
    MessageShape,
    docs_block,
    iot_messaging_usd,
    monthly_lines,
    monthly_messages,
    price_table_markdown,
    records_per_invocation,
    shards_for,
    total,
    write_docs,
)

MEASURED = Measured(
    batch_size=100,
    batches=149,
    messages=14_880,
    cpu_s_per_message=0.000136,
    aws_calls_per_batch=4.9,
    log_bytes_per_batch=426.0,
    wru_per_1000=5.0,
    rru_per_1000=20.0,
    change_wru=23.1,
    change_rru=1.7,
    change_topic_requests=1.0,
    change_sqs_deliveries=2.81,
    change_cpu_s=0.035,
    changes_per_warning=1.66,
    transitions_per_warning=16.6,
)
SHAPE = MessageShape(
    payload_bytes=185, topic_bytes=43, record_bytes=375, iot_units=1, put_units=1, record_kb_rounded=1
)
SIZING = IngestSizing(memory_mb=1769, batch_size=1000, batching_window_s=0)


def generated_block() -> str:
    text = DOCS_COSTS.read_text(encoding="utf-8")
    return text[text.index(DOCS_START) : text.index(DOCS_END) + len(DOCS_END)]


def test_the_generated_block_of_docs_costs_holds_the_price_table_the_code_prices_with() -> None:
    block = generated_block()
    assert price_table_markdown() in block
    assert len({price.key for price in PRICES}) == len(PRICES) and len(PRICE) == len(PRICES)


def test_the_generated_block_is_the_cost_bench_output_with_its_targets() -> None:
    block = generated_block()
    for expected in (
        "Cost model (bench/costs.py)",
        "1,000,000 devices",
        "total with IoT Basic Ingest",
        "platform cost per million messages at 1,000,000 devices <= $0.04",
        "at 100,000 msg/s: records 100,000 / (1,000 x 0.8) = 125 shards",
    ):
        assert expected in block


def test_write_docs_replaces_only_the_generated_block(tmp_path: Path) -> None:
    doc = tmp_path / "costs.md"
    doc.write_text(f"# before\n\n{DOCS_START}\nold\n{DOCS_END}\n\n## after\n", encoding="utf-8")
    write_docs("new output\n", doc)
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# before\n\n") and text.endswith("\n\n## after\n")
    assert docs_block("new output\n") in text and "old" not in text


def test_100000_messages_a_second_need_125_shards_by_records_and_fewer_by_bytes() -> None:
    shards = shards_for(100_000, 375)
    assert (shards.by_records, shards.by_bytes, shards.count) == (125, 45, 125)
    assert shards_for(1, 375).count == 1


def test_iot_core_messaging_is_tiered_by_the_month_volume() -> None:
    assert iot_messaging_usd(1e9) == pytest.approx(1_000.0)
    assert iot_messaging_usd(5e9) == pytest.approx(1_000.0 + 3_200.0)
    assert iot_messaging_usd(6e9) == pytest.approx(4_200.0 + 700.0)


def test_an_invocation_takes_what_a_shard_received_in_a_poll_up_to_the_batch_size() -> None:
    assert records_per_invocation(100_000, 125, SIZING) == pytest.approx(800)
    assert records_per_invocation(100, 1, SIZING) == pytest.approx(100)
    assert records_per_invocation(100_000, 1, SIZING) == 1000


def test_basic_ingest_removes_the_iot_messaging_charge_and_nothing_else() -> None:
    devices = 1_000_000
    plain = monthly_lines(devices, MEASURED, SHAPE, SIZING)
    basic = monthly_lines(devices, MEASURED, SHAPE, SIZING, basic_ingest=True)
    messaging = next(line.usd for line in plain if line.service == "IoT Core messaging")
    assert messaging == pytest.approx(iot_messaging_usd(monthly_messages(devices)))
    assert total(plain, ["iot"]) - total(basic, ["iot"]) == pytest.approx(messaging)
    assert total(plain, ["platform", "sms"]) == pytest.approx(total(basic, ["platform", "sms"]))


def test_at_the_dynamodb_budget_the_platform_meets_four_cents_per_million_at_a_million_devices() -> None:
    devices = 1_000_000
    lines = monthly_lines(devices, MEASURED, SHAPE, SIZING)
    per_million = total(lines, ["platform"]) / monthly_messages(devices) * 1e6
    kinesis = [line for line in lines if line.service.startswith("Kinesis")]
    stream = total(kinesis, ["platform"]) / monthly_messages(devices) * 1e6
    assert 0.018 < stream < 0.02  # shard-hours plus one PUT unit per record
    assert per_million <= 0.04
