"""What the domain does before anything reaches the store: numbers DynamoDB can hold, text any store can hold."""

from __future__ import annotations

import math

import pytest

from chalicelib.domain.changes import is_storable_number, storable_number
from chalicelib.domain.rejections import claimed_identity, safe_text


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (0.0, 0.0),
        (1e-131, 0.0),  # below DynamoDB's smallest magnitude (1e-130): no sensor resolves it
        (-1e-131, 0.0),
        (1e-31, 0.0),
        (1e-30, 1e-30),
        (0.35, 0.35),
        (-12.5, -12.5),
        (1e130, 9.9e125),  # above DynamoDB's largest magnitude
        (-1e130, -9.9e125),
        (math.nan, None),
        (math.inf, None),
    ],
)
def test_numbers_are_clamped_into_what_dynamodb_stores(value: float, stored: float | None) -> None:
    assert storable_number(value) == stored
    if stored is not None:
        assert is_storable_number(stored)


def test_lone_surrogates_and_control_characters_are_escaped_and_text_is_capped() -> None:
    text = safe_text("dev\ud800-\x00-中文", 500)
    text.encode("utf-8")  # would raise on a lone surrogate
    assert "中文" in text and "\\ud800" in text and "\\x00" in text
    assert len(safe_text("x" * 1000, 300)) == 300
    assert safe_text("正常文本") == "正常文本"


@pytest.mark.parametrize(
    ("raw", "device", "at"),
    [
        (b'{"device_id": "D-1", "ts": "2026-11-29T08:00:00+08:00"}', "D-1", 1795910400.0),
        (b'{"device_id": "D\\ud800", "ts": "2026-11-29T08:00:00Z"}', None, 1795939200.0),
        (b'{"device_id": "D-1", "ts": "2026-11-29T08:00:00"}', "D-1", None),  # naive time: not the device's
        (b"[" * 5000 + b"]" * 5000, None, None),
        (b"\xff\xfe", None, None),
    ],
)
def test_the_identity_a_broken_payload_claims_is_read_only_when_well_formed(
    raw: bytes, device: str | None, at: float | None
) -> None:
    assert claimed_identity(raw) == (device, at)
