"""Reading a request: its body (size, UTF-8, strict JSON), its query string (each parameter once) and its
`If-None-Match` (conditional GETs).

Whatever the bytes, these functions answer a value or raise a `DomainError` (400 / 413): never another exception.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from chalicelib.api.errors import MAX_BODY_BYTES, MAX_FIELD_ERRORS, BadRequest, PayloadTooLarge, field_name


def _bytes(raw: str | bytes | None) -> bytes:
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogatepass")
    return raw or b""


def require_size(raw: str | bytes | None) -> None:
    """413 `payload_too_large` above `MAX_BODY_BYTES` (checked before anything else reads the body)."""
    if len(_bytes(raw)) > MAX_BODY_BYTES:
        raise PayloadTooLarge("payload_too_large", "请求体过大", details={"limit_bytes": MAX_BODY_BYTES})


def _not_json(what: str) -> BadRequest:
    return BadRequest("invalid_json", "请求体不是有效的JSON", details={"reason": what})


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    body = dict(pairs)
    if len(body) != len(pairs):
        raise ValueError("a key given twice")
    return body


def json_body(raw: str | bytes | None) -> Any:
    """The body as JSON (None when empty), or 400 `invalid_json` with `details.reason` (one of `utf8`, `syntax`,
    `nesting`, `unicode`): not UTF-8, not one strict JSON document (NaN, Infinity, numbers out of range and keys
    given twice refused), nested deeper than the parser takes, or holding a lone surrogate (`"\\ud800"`), which no
    store or encoder takes."""
    data = _bytes(raw)
    require_size(data)
    if not data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_json("utf8") from exc
    try:
        body = json.loads(text, parse_float=_finite, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except RecursionError as exc:
        raise _not_json("nesting") from exc
    except ValueError as exc:  # JSONDecodeError, the hooks' refusals, integers beyond Python's digit limit
        raise _not_json("syntax") from exc
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _not_json("unicode") from exc
    except RecursionError as exc:
        raise _not_json("nesting") from exc
    return body


def single_values(values_of: Mapping[str, list[str]]) -> dict[str, str]:
    """Query parameters as one value each; 400 `repeated_parameter` naming those given more than once (Chalice
    would silently keep the last)."""
    repeated = [name for name, values in values_of.items() if len(values) > 1]
    if repeated:
        errors = [{"field": field_name([name]), "code": "repeated"} for name in repeated[:MAX_FIELD_ERRORS]]
        raise BadRequest("repeated_parameter", "查询参数重复", details={"errors": errors, "total": len(repeated)})
    return {name: values[-1] for name, values in values_of.items() if values}


def strong_etag(text: str) -> str:
    """A strong `ETag` of the UTF-8 bytes of `text`."""
    return '"' + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, tag: str) -> bool:
    """`If-None-Match` names `tag`, weakened or not (a proxy that compressed the answer may have weakened it)."""
    return tag in {value.strip().removeprefix("W/") for value in (if_none_match or "").split(",")}
