"""The subset of AWS IoT SQL (version 2016-03-23) that our topic rules use, in pure Python.

Grammar::

    rule       := SELECT item ("," item)* FROM string [WHERE expr]
    item       := "*" | expr [AS identifier]
    expr       := or_expr
    or_expr    := and_expr (OR and_expr)*
    and_expr   := not_expr (AND not_expr)*
    not_expr   := NOT not_expr | comparison
    comparison := operand [(= | <> | != | < | <= | > | >=) operand | IS [NOT] (NULL | UNDEFINED)]
    operand    := literal | function "(" [expr ("," expr)*] ")" | path | "(" expr ")" | "-" operand
    path       := identifier ("." identifier | "[" integer "]")*

Functions: topic() / topic(n) (1-based), timestamp() (ms), clientid(), newuuid(), encode(*, 'base64').

Semantics kept from AWS IoT:
- a missing attribute or an out-of-range topic(n) is *Undefined*; Undefined fields are left out of the output,
  comparisons with Undefined are Undefined, and a WHERE clause passes only when it is exactly true;
- an item without alias is named after the last path segment, or after the function;
- select items are applied left to right, so a later item overwrites an earlier key (`*` included);
- substitution templates (`${...}`) are evaluated against the original message, not the SELECT output.

A payload that is not a JSON object, when the statement needs the payload, raises `RuleError` (AWS IoT fails the
rule and runs its error action).
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

__all__ = [
    "UNDEFINED",
    "RuleError",
    "RuleSql",
    "RuleSqlSyntaxError",
    "substitute",
    "topic_matches",
    "validate_topic_filter",
]


class RuleSqlSyntaxError(ValueError):
    """The SQL statement or topic filter is outside the supported subset or malformed."""


class RuleError(Exception):
    """The rule could not be evaluated for one message; AWS IoT would run the rule's error action."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Undefined:
    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Final = _Undefined()
"""AWS IoT SQL's Undefined: the value of a missing attribute."""


# --------------------------------------------------------------------------------------------------- topic filters


def validate_topic_filter(topic_filter: str) -> None:
    """Raise `RuleSqlSyntaxError` unless `topic_filter` is a valid MQTT filter (`+` and `#` on whole levels)."""
    if not topic_filter:
        raise RuleSqlSyntaxError("empty topic filter")
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise RuleSqlSyntaxError(f"'#' must be the whole last level in {topic_filter!r}")
        if "+" in level and level != "+":
            raise RuleSqlSyntaxError(f"'+' must be a whole level in {topic_filter!r}")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching: `+` is one level (possibly empty), `#` is any number of trailing levels including none."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, wanted in enumerate(filter_levels):
        if wanted == "#":
            return True
        if index >= len(topic_levels):
            return False
        if wanted not in ("+", topic_levels[index]):
            return False
    return len(filter_levels) == len(topic_levels)


# ---------------------------------------------------------------------------------------------------- tokenizer

_KEYWORDS: Final = frozenset({"SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "IS", "NULL", "UNDEFINED"})
_LITERAL_WORDS: Final[dict[str, Any]] = {"TRUE": True, "FALSE": False}

_TOKEN_RE: Final = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)
  | (?P<op><>|!=|<=|>=|=|<|>|\(|\)|,|\.|\*|\[|\]|-)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "string", "ident", "keyword", "op", "end"
    value: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise RuleSqlSyntaxError(f"unexpected character {text[pos]!r} at {pos}")
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "ident":
            if value.startswith("`"):
                value = value[1:-1]
            elif value.upper() in _KEYWORDS:
                kind, value = "keyword", value.upper()
        elif kind == "string":
            value = _unquote(value)
        if kind != "ws":
            tokens.append(_Token(kind, value, pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    if literal.startswith("'"):
        return body.replace("''", "'")
    return str(json.loads(literal))


# ------------------------------------------------------------------------------------------------------ AST


@dataclass
class _Context:
    topic: str
    payload: bytes
    now_ms: int
    client_id: str | None
    _document: Any = field(default=UNDEFINED)

    def document(self) -> dict[str, Any]:
        if self._document is UNDEFINED:
            self._document = _decode_json_object(self.payload)
        return self._document  # type: ignore[no-any-return]


def _decode_json_object(payload: bytes) -> dict[str, Any]:
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RuleError(f"payload is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise RuleError(f"payload is JSON but not an object (got {type(document).__name__})")
    return document


class _Expr:
    def evaluate(self, ctx: _Context) -> Any:
        raise NotImplementedError

    def default_name(self) -> str | None:
        return None

    def needs_payload(self) -> bool:
        return False


@dataclass(frozen=True)
class _Literal(_Expr):
    value: Any

    def evaluate(self, ctx: _Context) -> Any:
        return self.value


@dataclass(frozen=True)
class _Path(_Expr):
    steps: tuple[str | int, ...]

    def evaluate(self, ctx: _Context) -> Any:
        current: Any = ctx.document()
        for step in self.steps:
            if isinstance(step, int):
                if not isinstance(current, list) or step >= len(current):
                    return UNDEFINED
                current = current[step]
            elif isinstance(current, dict) and step in current:
                current = current[step]
            else:
                return UNDEFINED
        return current

    def default_name(self) -> str | None:
        names = [step for step in self.steps if isinstance(step, str)]
        return names[-1] if names else None

    def needs_payload(self) -> bool:
        return True


def _fn_topic(ctx: _Context, args: list[Any]) -> Any:
    if not args:
        return ctx.topic
    index = args[0]
    if isinstance(index, bool) or not isinstance(index, int):
        return UNDEFINED
    levels = ctx.topic.split("/")
    return levels[index - 1] if 1 <= index <= len(levels) else UNDEFINED


def _fn_encode(_ctx: _Context, args: list[Any]) -> Any:
    """encode(value, 'base64'): with `*` the raw payload bytes, JSON or not (AWS IoT SQL)."""
    value, scheme = args
    if scheme != "base64":
        raise RuleError(f"encode(): unsupported encoding scheme {scheme!r}")
    if value is UNDEFINED:
        return UNDEFINED
    raw = value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
    return base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class _WholePayload(_Expr):
    """`*` as a function argument: the payload as received, not parsed."""

    def evaluate(self, ctx: _Context) -> Any:
        return ctx.payload


_FUNCTIONS: Final[dict[str, tuple[int, int, Callable[[_Context, list[Any]], Any]]]] = {
    "topic": (0, 1, _fn_topic),
    "encode": (2, 2, _fn_encode),
    "timestamp": (0, 0, lambda ctx, _args: ctx.now_ms),
    "clientid": (0, 0, lambda ctx, _args: ctx.client_id if ctx.client_id is not None else "n/a"),
    "newuuid": (0, 0, lambda _ctx, _args: str(uuid.uuid4())),
}


@dataclass(frozen=True)
class _Call(_Expr):
    name: str
    args: tuple[_Expr, ...]

    def evaluate(self, ctx: _Context) -> Any:
        _low, _high, impl = _FUNCTIONS[self.name]
        return impl(ctx, [arg.evaluate(ctx) for arg in self.args])

    def default_name(self) -> str | None:
        return self.name

    def needs_payload(self) -> bool:
        return any(arg.needs_payload() for arg in self.args)


@dataclass(frozen=True)
class _Negate(_Expr):
    operand: _Expr

    def evaluate(self, ctx: _Context) -> Any:
        value = self.operand.evaluate(ctx)
        return -value if _is_number(value) else UNDEFINED

    def needs_payload(self) -> bool:
        return self.operand.needs_payload()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(left: Any, right: Any) -> bool:
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    return type(left) is type(right) and bool(left == right)


def _compare(op: str, left: Any, right: Any) -> Any:
    if left is UNDEFINED or right is UNDEFINED:
        return UNDEFINED
    if op in ("=", "<>", "!="):
        equal = _equal(left, right)
        return equal if op == "=" else not equal
    orderable = (_is_number(left) and _is_number(right)) or (isinstance(left, str) and isinstance(right, str))
    if not orderable:
        return UNDEFINED
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right


@dataclass(frozen=True)
class _Comparison(_Expr):
    op: str
    left: _Expr
    right: _Expr

    def evaluate(self, ctx: _Context) -> Any:
        return _compare(self.op, self.left.evaluate(ctx), self.right.evaluate(ctx))

    def needs_payload(self) -> bool:
        return self.left.needs_payload() or self.right.needs_payload()


@dataclass(frozen=True)
class _IsCheck(_Expr):
    operand: _Expr
    target: Any  # None for NULL, UNDEFINED for UNDEFINED
    negated: bool

    def evaluate(self, ctx: _Context) -> Any:
        result = self.operand.evaluate(ctx) is self.target
        return not result if self.negated else result

    def needs_payload(self) -> bool:
        return self.operand.needs_payload()


def _truth(value: Any) -> Any:
    """AWS IoT SQL logic is three-valued: True, False, or Undefined for non-boolean values."""
    return value if isinstance(value, bool) else UNDEFINED


@dataclass(frozen=True)
class _Not(_Expr):
    operand: _Expr

    def evaluate(self, ctx: _Context) -> Any:
        value = _truth(self.operand.evaluate(ctx))
        return UNDEFINED if value is UNDEFINED else not value

    def needs_payload(self) -> bool:
        return self.operand.needs_payload()


@dataclass(frozen=True)
class _Logical(_Expr):
    op: str  # "AND" or "OR"
    operands: tuple[_Expr, ...]

    def evaluate(self, ctx: _Context) -> Any:
        decisive = self.op == "OR"  # OR is decided by a True, AND by a False
        undefined_seen = False
        for operand in self.operands:
            value = _truth(operand.evaluate(ctx))
            if value is UNDEFINED:
                undefined_seen = True
            elif value is decisive:
                return decisive
        return UNDEFINED if undefined_seen else not decisive

    def needs_payload(self) -> bool:
        return any(operand.needs_payload() for operand in self.operands)


@dataclass(frozen=True)
class _SelectItem:
    expr: _Expr | None  # None means "*"
    alias: str | None

    @property
    def is_star(self) -> bool:
        return self.expr is None


# ------------------------------------------------------------------------------------------------------ parser


class _Parser:
    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = _tokenize(text)
        self._index = 0

    @property
    def _current(self) -> _Token:
        return self._tokens[self._index]

    def _advance(self) -> _Token:
        token = self._current
        self._index += 1
        return token

    def _accept(self, kind: str, value: str | None = None) -> _Token | None:
        token = self._current
        if token.kind == kind and (value is None or token.value == value):
            return self._advance()
        return None

    def _expect(self, kind: str, value: str | None = None) -> _Token:
        token = self._accept(kind, value)
        if token is None:
            wanted = value or kind
            found = self._current.value or self._current.kind
            raise RuleSqlSyntaxError(
                f"expected {wanted!r} at {self._current.pos}, found {found!r} in {self._text!r}"
            )
        return token

    def parse_rule(self) -> tuple[tuple[_SelectItem, ...], str, _Expr | None]:
        self._expect("keyword", "SELECT")
        items = [self._select_item()]
        while self._accept("op", ","):
            items.append(self._select_item())
        self._expect("keyword", "FROM")
        topic_filter = self._expect("string").value
        validate_topic_filter(topic_filter)
        where = self.parse_expression() if self._accept("keyword", "WHERE") else None
        self._expect("end")
        return tuple(items), topic_filter, where

    def parse_standalone_expression(self) -> _Expr:
        expr = self.parse_expression()
        self._expect("end")
        return expr

    def _select_item(self) -> _SelectItem:
        if self._accept("op", "*"):
            return _SelectItem(None, None)
        expr = self.parse_expression()
        alias = self._expect("ident").value if self._accept("keyword", "AS") else expr.default_name()
        if alias is None:
            raise RuleSqlSyntaxError(f"select item at {self._current.pos} needs an alias (AS name)")
        return _SelectItem(expr, alias)

    def parse_expression(self) -> _Expr:
        return self._logical("OR", self._and_expr)

    def _and_expr(self) -> _Expr:
        return self._logical("AND", self._not_expr)

    def _logical(self, op: str, operand: Callable[[], _Expr]) -> _Expr:
        operands = [operand()]
        while self._accept("keyword", op):
            operands.append(operand())
        return operands[0] if len(operands) == 1 else _Logical(op, tuple(operands))

    def _not_expr(self) -> _Expr:
        if self._accept("keyword", "NOT"):
            return _Not(self._not_expr())
        return self._comparison()

    def _comparison(self) -> _Expr:
        left = self._operand()
        if self._accept("keyword", "IS"):
            negated = self._accept("keyword", "NOT") is not None
            if self._accept("keyword", "NULL"):
                return _IsCheck(left, None, negated)
            self._expect("keyword", "UNDEFINED")
            return _IsCheck(left, UNDEFINED, negated)
        token = self._current
        if token.kind == "op" and token.value in ("=", "<>", "!=", "<", "<=", ">", ">="):
            self._advance()
            return _Comparison(token.value, left, self._operand())
        return left

    def _operand(self) -> _Expr:
        token = self._current
        if self._accept("op", "("):
            inner = self.parse_expression()
            self._expect("op", ")")
            return inner
        if self._accept("op", "-"):
            return _Negate(self._operand())
        if token.kind == "number":
            self._advance()
            return _Literal(_number(token.value))
        if token.kind == "string":
            self._advance()
            return _Literal(token.value)
        if token.kind == "keyword" and token.value == "NULL":
            self._advance()
            return _Literal(None)
        if token.kind == "ident":
            return self._identifier_operand()
        raise RuleSqlSyntaxError(f"unexpected {token.value or token.kind!r} at {token.pos} in {self._text!r}")

    def _identifier_operand(self) -> _Expr:
        name = self._advance().value
        if name.upper() in _LITERAL_WORDS:
            return _Literal(_LITERAL_WORDS[name.upper()])
        if self._accept("op", "("):
            return self._call(name.lower())
        steps: list[str | int] = [name]
        while True:
            if self._accept("op", "."):
                steps.append(self._expect("ident").value)
            elif self._accept("op", "["):
                steps.append(int(self._expect("number").value))
                self._expect("op", "]")
            else:
                return _Path(tuple(steps))

    def _call(self, name: str) -> _Expr:
        if name not in _FUNCTIONS:
            raise RuleSqlSyntaxError(f"unsupported function {name}() in {self._text!r}")
        args: list[_Expr] = []
        if not self._accept("op", ")"):
            args.append(_WholePayload() if self._accept("op", "*") else self.parse_expression())
            while self._accept("op", ","):
                args.append(self.parse_expression())
            self._expect("op", ")")
        low, high, _impl = _FUNCTIONS[name]
        if not low <= len(args) <= high:
            raise RuleSqlSyntaxError(f"{name}() takes {low}..{high} arguments, got {len(args)}")
        return _Call(name, tuple(args))


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


# ------------------------------------------------------------------------------------------------------ public API


@dataclass(frozen=True)
class RuleSql:
    """A parsed topic-rule statement. Build it with `RuleSql.parse`."""

    sql: str
    topic_filter: str
    items: tuple[_SelectItem, ...]
    where: _Expr | None

    @classmethod
    def parse(cls, sql: str) -> RuleSql:
        items, topic_filter, where = _Parser(sql).parse_rule()
        return cls(sql=sql, topic_filter=topic_filter, items=items, where=where)

    @property
    def selects_star(self) -> bool:
        return any(item.is_star for item in self.items)

    @property
    def needs_payload(self) -> bool:
        """Whether evaluating this rule reads the payload (so a non-JSON payload is an error)."""
        exprs = [item.expr for item in self.items if item.expr is not None]
        if self.where is not None:
            exprs.append(self.where)
        return self.selects_star or any(expr.needs_payload() for expr in exprs)

    def matches(self, topic: str) -> bool:
        return topic_matches(self.topic_filter, topic)

    def apply(
        self, topic: str, payload: bytes, now_ms: int | None = None, client_id: str | None = None
    ) -> dict[str, Any] | None:
        """The rule's output for one message, or None when the topic does not match or WHERE is not true.

        Raises `RuleError` when the payload is needed but is not a JSON object.
        """
        if not self.matches(topic):
            return None
        ctx = _Context(topic, payload, _now_ms() if now_ms is None else now_ms, client_id)
        if self.needs_payload:
            ctx.document()
        if self.where is not None and self.where.evaluate(ctx) is not True:
            return None
        return self._select(ctx)

    def _select(self, ctx: _Context) -> dict[str, Any]:
        output: dict[str, Any] = {}
        for item in self.items:
            if item.expr is None:
                output.update(ctx.document())
                continue
            value = item.expr.evaluate(ctx)
            if value is not UNDEFINED and item.alias is not None:
                output[item.alias] = value
        return output


_TEMPLATE_RE: Final = re.compile(r"\$\{([^}]*)\}")


def substitute(
    template: str, topic: str, payload: bytes, now_ms: int | None = None, client_id: str | None = None
) -> str:
    """Expand `${expr}` substitution templates (e.g. `${topic(4)}`) against the original message.

    Undefined values expand to the empty string; objects and arrays to compact JSON.
    Raises `RuleSqlSyntaxError` for a malformed expression and `RuleError` when an expression needs a payload that
    is not a JSON object.
    """
    ctx = _Context(topic, payload, _now_ms() if now_ms is None else now_ms, client_id)

    def expand(match: re.Match[str]) -> str:
        return _render(_parse_template_expression(match.group(1)).evaluate(ctx))

    return _TEMPLATE_RE.sub(expand, template)


@lru_cache(maxsize=256)
def _parse_template_expression(text: str) -> _Expr:
    return _Parser(text).parse_standalone_expression()


def _render(value: Any) -> str:
    if value is UNDEFINED or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
