"""The fast decode path against pydantic (chalicelib/domain/fast_messages.py): over a generated corpus — valid
messages of every sector and kind, and their mutations — the mirror accepts only what pydantic accepts, with the
same values field for field, and the engine's `parse` answers exactly what the pydantic-only parse answered (the
same message, or the same rejection: reason, detail, device and time)."""

from __future__ import annotations

import json
import math
import random
import re
import string
from collections.abc import Iterator
from datetime import datetime
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import pytest
from pydantic import AwareDatetime, BaseModel, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo

from chalicelib.domain.catalog import build_engine
from chalicelib.domain.fast_messages import TIME_TEXT, fast_decoder
from chalicelib.domain.rejections import Rejection, RejectReason, rejection_from_validation
from chalicelib.domain.sectors import FAST_DECODE, FAST_SECTORS, MESSAGE_ADAPTER, Sector
from chalicelib.domain.telemetry import Envelope
from local.fleet import Fleet
from local.seed import load_seed

T0 = 1_764_370_800.0  # 2025-11-29 07:00 +08:00
ENGINE = build_engine()
MESSAGES = [sector.spec.message for sector in Sector]


# --- the oracle: today's parse, pydantic only ---------------------------------------------------------------


def pydantic_parse(raw: bytes, now_s: float) -> Envelope | Rejection:
    """`RiskEngine.parse` before the fast path, step for step."""
    try:
        msg: Envelope = MESSAGE_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        return rejection_from_validation(exc, raw)
    except Exception as exc:
        return Rejection(RejectReason.SCHEMA, f"unparseable: {type(exc).__name__}", raw)
    policy = ENGINE.policy
    skew = msg.ts.timestamp() - now_s
    if skew > policy.max_future_skew_s:
        return Rejection(RejectReason.TIMESTAMP_FUTURE, f"ts {skew:.0f}s ahead", raw, msg.device_id, now_s)
    if -skew > policy.max_past_age_s:
        return Rejection(RejectReason.TIMESTAMP_PAST, f"ts {-skew:.0f}s old", raw, msg.device_id, now_s)
    return msg


def same_value(expected: Any, actual: Any, where: str) -> None:
    """`actual` (a mirror's value) equals `expected` (pydantic's) field for field, type for type."""
    if isinstance(expected, BaseModel):
        for name in type(expected).model_fields:
            same_value(getattr(expected, name), getattr(actual, name), f"{where}.{name}")
    elif isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected), where
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            same_value(left, right, f"{where}[{index}]")
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and list(actual) == list(expected), where
        for key in expected:
            same_value(expected[key], actual[key], f"{where}[{key!r}]")
    elif isinstance(expected, datetime):
        assert isinstance(actual, datetime), where
        assert (actual, actual.utcoffset()) == (expected, expected.utcoffset()), where
    else:
        assert type(actual) is type(expected), f"{where}: {actual!r} is not {expected!r}"
        assert repr(actual) == repr(expected), f"{where}: {actual!r} is not {expected!r}"  # -0.0 is not 0.0


# --- the corpus -------------------------------------------------------------------------------------------------

DEVICE_CHARS = string.ascii_letters + string.digits + "_.:-"
METRIC_CHARS = string.ascii_lowercase + string.digits + "_"
NASTY_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 2, 1.0, 1.5, -0.0, 0.5, "", "1", "1.5", "true", "fire", "x" * 65, [], {}, [1],
    {"a": 1}, 2**53, 2**53 + 1, 2**63, 2**64, 10**30, -(10**30), 1e308, -1e308, 1e-320, 5e-324, 3, 220, 220.0001,
    -5, -5.0001, 0.07, 100, 100.0000001,
]  # fmt: skip
RAW_LITERALS = [
    "NaN", "Infinity", "-Infinity", "nan", "inf", "1e400", "-1e400", "1e-400", "-0", "-0.0", "0e0", "1E2", "0.1e1",
    "1.", ".5", "01", "+1", "0x10", "1_000", "9" * 400, "-" + "9" * 30, "1.0000000000000000000001",
    "2.2250738585072014e-308",
    "4.9406564584124654e-324", "0.30000000000000004", "1" + "0" * 20, "true", "null", '"1"', "[]", "{}",
    '"\\ud800"', '"\\udc00x"', '"\\ud83d\\ude00"', '"a\\u0000b"', '"dev\\n"', '"\\u0663"', '"é"', '"\\u00e9"',
]  # fmt: skip
TIMES = [
    "2025-11-29T07:00:00.036+08:00", "2025-11-29T07:00:00Z", "2025-11-29t07:00:00z", "2025-11-29 07:00:00Z",
    "2025-11-29T07:00Z", "2025-11-29T07:00:00.1234567Z", "2025-11-29T07:00:00.123456789Z",
    "2025-11-29T07:00:00.9999995Z", "2025-11-29T07:00:60Z", "2025-11-29T24:00:00Z", "2025-11-29T23:59:59.999999Z",
    "2025-11-29T07:00:00-00:00", "2025-11-29T07:00:00+0800", "2025-11-29T07:00:00+08", "2025-11-29T07:00:00+23:59",
    "2025-11-29T07:00:00+24:00", "2025-11-29T07:00:00+08:60", "2025-11-29T07:00:00-23:59", "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00-01:00", "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59+01:00", "2025-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "2025-04-31T00:00:00Z",
    "2025-13-01T00:00:00Z", "2025-00-10T00:00:00Z", "2025-11-00T00:00:00Z", "2025-11-29T07:00:00.Z",
    "20251129T070000Z", "2025-11-29T07:00:00,5Z", "2025-11-29T07:00:00+08:00:00", "2025-11-29T07:00:00 +08:00",
    "+2025-11-29T07:00:00Z", "2025-11-29T07:00:00", "2025-11-29", "2025-11-29T07:00:00.5+08:00", "1764370800",
    "2025-W48-6T07:00:00Z", "2025-333T07:00:00Z", "２０２５-11-29T07:00:00Z", "2025-11-29T07:00:00Z\n",
    "2025-11-29T07:00:00.000000+08:00", "2025-11-29T07:00:00.1+05:45", "2025-11-29T07:00:00+00:00",
]  # fmt: skip


def random_text(rng: random.Random, chars: str, low: int, high: int) -> str:
    return "".join(rng.choice(chars) for _ in range(rng.randint(low, high)))


def random_time(rng: random.Random, near: float) -> str:
    moment = datetime.fromtimestamp(near + rng.uniform(-400, 400)).astimezone()
    offset = rng.choice(["Z", "+08:00", "-05:00", "+05:45", "+00:00", "-00:00", "+14:00", "-12:00"])
    digits = rng.choice([0, 0, 3, 6, 1, 2, 5, 7, 9])
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + "".join(rng.choice(string.digits) for _ in range(digits))
    return text + offset


class Values:
    """Valid values of an annotation (walking the pydantic model: every field of every sector, with its bounds)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def model(self, model: type[BaseModel], full: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name, field in model.model_fields.items():
            if field.is_required() or full or self.rng.random() < 0.5:
                body[name] = self.value(field.annotation, field.metadata)
        return body

    def value(self, annotation: Any, metadata: list[Any]) -> Any:
        rng = self.rng
        origin, args = get_origin(annotation), get_args(annotation)
        if origin is Annotated:
            inner, *extra = args
            return self.value(inner, [*metadata, *extra])
        limits = bounds(metadata)
        if origin in (Union, UnionType):
            others = [arg for arg in args if arg is not NoneType]
            return None if rng.random() < 0.1 else self.value(others[0], [])
        if origin is Literal:
            return rng.choice(args)
        if origin is tuple:
            return [self.value(args[0], []) for _ in range(rng.choice([0, 0, 1, 2, 3]))]
        if origin is dict:
            return {
                rng.choice(string.ascii_lowercase) + random_text(rng, METRIC_CHARS, 0, 20): self.value(args[1], [])
                for _ in range(rng.choice([0, 1, 2, 16]))
            }
        if annotation is bool:
            return rng.random() < 0.5
        if annotation is int:
            return rng.choice([0, 1, rng.randint(0, 2**53), 2**53])
        if annotation is float:
            low, high = limits.get("ge", limits.get("gt", -1e6)), limits.get("le", limits.get("lt", 1e6))
            picks = [
                low,
                high,
                rng.uniform(low, high),
                round(rng.uniform(low, high), 3),
                int(rng.uniform(low, high)),
            ]
            if "gt" in limits:
                picks[0] = math.nextafter(low, math.inf)
            return rng.choice(picks)
        if annotation is str:
            if "pattern" in limits:
                return random_text(rng, DEVICE_CHARS, 1, 64)
            return random_text(rng, string.printable + "中文éß", 1, limits.get("max_length", 64))
        if annotation is AwareDatetime:
            return random_time(rng, T0)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return self.model(annotation)
        raise AssertionError(f"no generator for {annotation!r}")


def bounds(metadata: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            found.update(bounds(item.metadata))
        for name in ("ge", "gt", "le", "lt", "max_length", "pattern"):
            if hasattr(item, name):
                found[name] = getattr(item, name)
    return found


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document (object keys and list indices)."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key)
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*prefix, index)
            yield from paths(child, (*prefix, index))


def objects(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The places of every object in a JSON document, the document's own first."""
    if isinstance(value, dict):
        yield prefix
        for key, child in value.items():
            yield from objects(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from objects(child, (*prefix, index))


def at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


def encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode()


def with_literal(body: dict[str, Any], path: tuple[Any, ...], literal: str) -> bytes:
    """`body` with the value at `path` replaced by raw JSON text (NaN, 1e400, a lone surrogate...)."""
    marker = "\u0001MARK\u0001"
    copy = json.loads(json.dumps(body))
    at(copy, path[:-1])[path[-1]] = marker
    return encode(copy).replace(json.dumps(marker, ensure_ascii=False).encode(), literal.encode())


def corpus(seed: int = 20251129) -> Iterator[bytes]:
    rng = random.Random(seed)
    values = Values(rng)
    fleet = Fleet(load_seed(), seed=7)
    fleet_messages = [m.payload for m in fleet.run(T0, 12, 10.0)]
    fleet_messages += [m.payload for m in fleet.bad_messages(T0 + 200)]
    yield from fleet_messages
    generated = []
    for message in MESSAGES:
        for index in range(250):
            body = values.model(message, full=index % 5 == 0)
            body["ts"] = random_time(rng, T0) if index % 3 else rng.choice(TIMES)
            generated.append(body)
    rng.shuffle(generated)
    for body in generated:
        yield encode(body)
    bodies = [json.loads(raw) for raw in fleet_messages if raw.startswith(b"{") and _is_object(raw)] + generated
    for _ in range(6000):
        body = json.loads(json.dumps(rng.choice(bodies)))
        where = list(paths(body))
        choice = rng.random()
        if choice < 0.35 and where:
            path = rng.choice(where)
            at(body, path[:-1])[path[-1]] = rng.choice(NASTY_VALUES)
            yield encode(body)
        elif choice < 0.55 and where:
            yield with_literal(body, rng.choice(where), rng.choice(RAW_LITERALS))
        elif choice < 0.65 and where:
            path = rng.choice(where)
            parent = at(body, path[:-1])
            if isinstance(parent, dict):
                del parent[path[-1]]
            yield encode(body)
        elif choice < 0.75:
            parent = at(body, rng.choice(list(objects(body))))
            parent[rng.choice(["extra", "epoch", "ts_text", "sector", "metrics", "code", "h", "Level"])] = 1
            yield encode(body)
        elif choice < 0.82:
            body["ts"] = rng.choice(TIMES)
            yield encode(body)
        else:
            yield mangle(rng, encode(body))
    for depth in (10, 100, 1000, 5000):
        yield (
            b'{"device_id":"D1","enterprise_id":"E1","sector":"fire","ts":"2025-11-29T07:00:00Z","metrics":'
            + (b"[" * depth + b"]" * depth)
            + b"}"
        )
    yield from [b"", b" ", b"null", b"[]", b'"x"', b"1", b"{}", b"\xef\xbb\xbf{}", b"{" * 10_000]


def mangle(rng: random.Random, raw: bytes) -> bytes:
    """A byte-level fault: a byte changed, dropped or doubled, a cut, a duplicated key, bad UTF-8."""
    data = bytearray(raw)
    position = rng.randrange(len(data))
    kind = rng.randrange(6)
    if kind == 0:
        data[position] = rng.randrange(256)
    elif kind == 1:
        del data[position]
    elif kind == 2:
        data.insert(position, data[position])
    elif kind == 3:
        del data[position:]
    elif kind == 4:
        data[position:position] = b"\xff\xfe"
    else:
        return raw[:-1] + b',"device_id":"OTHER-1"}' if raw.endswith(b"}") else raw
    return bytes(data)


def _is_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


CORPUS = list(dict.fromkeys(corpus()))


# --- the properties --------------------------------------------------------------------------------------------


def test_every_registered_sector_has_the_fast_path() -> None:
    assert {sector.value for sector in Sector} == FAST_SECTORS


def test_what_the_mirror_accepts_pydantic_accepts_with_the_same_values() -> None:
    accepted = refused = 0
    for raw in CORPUS:
        fast = FAST_DECODE(raw)
        try:
            expected = MESSAGE_ADAPTER.validate_json(raw)
        except ValidationError:
            assert fast is None, raw
            refused += 1
            continue
        if fast is None:
            continue  # a form pydantic takes and the mirror leaves to it (a lax number, another time format)
        accepted += 1
        same_value(expected, fast, "message")
        assert fast.sector == expected.sector
        assert type(fast.epoch) is float and fast.epoch == expected.ts.timestamp(), raw
    # the corpus exercises both sides (the counts guard the generator, not the speed)
    assert accepted > 2500 and refused > 3000, (accepted, refused)


def test_the_engine_parses_every_message_as_the_pydantic_parse_did() -> None:
    reasons: set[RejectReason] = set()
    for raw in CORPUS:
        for now_s in (T0, T0 + 200):
            expected = pydantic_parse(raw, now_s)
            actual = ENGINE.parse(raw, now_s)
            if isinstance(expected, Rejection):
                assert actual == expected, raw
                reasons.add(expected.reason)
            else:
                assert not isinstance(actual, Rejection), raw
                same_value(expected, actual, "message")
                assert actual.epoch == expected.ts.timestamp()
    assert reasons >= {
        RejectReason.SCHEMA,
        RejectReason.UNKNOWN_SECTOR,
        RejectReason.UNKNOWN_METRIC,
        RejectReason.UNKNOWN_EVENT,
        RejectReason.OUT_OF_RANGE,
        RejectReason.NAN_INF,
        RejectReason.TIMESTAMP_FUTURE,
        RejectReason.TIMESTAMP_PAST,
    }


def test_the_time_forms_the_mirror_takes_are_the_canonical_ones_only() -> None:
    taken = [text for text in TIMES if re.search(TIME_TEXT, text)]
    assert "2025-11-29T07:00:00.036+08:00" in taken and "2025-11-29T07:00:00Z" in taken
    assert not any(
        form in taken for form in ("2025-11-29T07:00:00.1234567Z", "2025-11-29 07:00:00Z", "1764370800")
    )
    assert "2025-11-29T07:00:00Z\n" not in taken  # `\Z`, not `$`


# --- the generator's limits ------------------------------------------------------------------------------------


class Checked(BaseModel):
    model_config = {"extra": "forbid"}
    value: float | None = None

    @field_validator("value")
    @classmethod
    def positive(cls, value: float | None) -> float | None:
        return value


class ToyMetrics(BaseModel):
    model_config = {"extra": "forbid"}
    reading: Annotated[float, annotated_types.Ge(0)] | None = None


class ToyMessage(Envelope):
    sector: Literal["toy"]
    metrics: ToyMetrics = ToyMetrics()


class ValidatedMessage(Envelope):
    sector: Literal["validated"]
    metrics: Checked = Checked()


class DigitMetrics(BaseModel):
    model_config = {"extra": "forbid"}
    code: Annotated[str, Field(pattern=r"^\d+$")] | None = None  # `\d`: Unicode digits in both, but not mirrored


class DigitsMessage(Envelope):
    sector: Literal["digits"]
    metrics: DigitMetrics = DigitMetrics()


class LengthMessage(Envelope):
    sector: Literal["length"]
    metrics: ToyMetrics = ToyMetrics()
    events: tuple[Annotated[str, annotated_types.Len(0, 3)], ...] = ()  # a constraint the generator does not list


@pytest.mark.parametrize("message", [ValidatedMessage, DigitsMessage, LengthMessage])
def test_a_model_the_generator_cannot_mirror_goes_through_pydantic(message: type[Envelope]) -> None:
    decode, codes = fast_decoder([ToyMessage, message])
    assert codes == {"toy"}
    sector = get_args(message.model_fields["sector"].annotation)[0]
    body = {"device_id": "D1", "enterprise_id": "E1", "ts": "2025-11-29T07:00:00Z", "metrics": {}}
    assert decode(encode({**body, "sector": sector})) is None
    toy = decode(encode({**body, "sector": "toy", "metrics": {"reading": 1}}))
    assert toy is not None and toy.metrics.reading == 1.0 and toy.epoch == 1764399600.0
    assert decode(encode({**body, "sector": "toy", "metrics": {"reading": -1}})) is None
