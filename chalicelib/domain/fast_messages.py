"""The fast decode path (`bench/engine.py`): msgspec mirrors of the device message models, generated from them.

The pydantic models (telemetry.py, sectors/*.py) stay the schema: docs/device-message.schema.json, the reject
reasons, and the judge of every message a mirror refuses. A mirror is as strict as its model or stricter — what it
accepts, the model accepts with the same values — so `RiskEngine.parse` decodes with the mirror first and asks
pydantic only when the mirror refuses: a valid message costs one msgspec decode, an invalid one a second decode
that names the reason exactly as before (tests/unit/test_fast_messages.py runs a generated corpus through both).

Where msgspec and pydantic (lax JSON mode) part, the mirror is the stricter one:
- numbers: a JSON string, a bool or an integral float for an int or float refused (pydantic coerces them);
- `bool`: only `true` / `false`; a `Literal` only its exact values;
- string patterns end at the end of the text (`$` becomes `\\Z`: Python's `$` also matches before a final newline);
- the message time (`ts`, an `AwareDatetime`) only as `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|±HH:MM)` (`TIME_TEXT`),
  read by `datetime.fromisoformat` and turned into epoch seconds once, the message's `epoch`. The other forms
  pydantic takes (a space or `t` separator, no seconds, more than six fractional digits, which msgspec would
  round where pydantic truncates, a number of seconds) go to pydantic.

A model with anything the generator does not reproduce (a validator, an alias, a constraint or a type
`_mirror_type` does not list) raises `UnmirroredError`; its sector is left out of the fast union and its messages
go through pydantic (`sectors.FAST_SECTORS` says which sectors have the fast path; a unit test expects all).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, cast, get_args, get_origin

import annotated_types
import msgspec
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from chalicelib.domain.telemetry import AnyMessage, Envelope


class UnmirroredError(TypeError):
    """A model feature the mirror does not reproduce (its messages are validated by pydantic only)."""


TIME_TEXT = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])\Z"
)
"""The message time forms the mirror takes: RFC 3339 with `T`, seconds, at most microseconds and an offset."""

_from_iso = datetime.fromisoformat


# --- the generator -------------------------------------------------------------------------------------------

_SAFE_PATTERN = re.compile(r"\^[A-Za-z0-9_.:\-\[\]+*?{},]*\$")  # anchored, character classes and quantifiers only
_BOUNDS = {annotated_types.Ge: "ge", annotated_types.Gt: "gt", annotated_types.Le: "le", annotated_types.Lt: "lt"}
_LENGTHS = {annotated_types.MinLen: "min_length", annotated_types.MaxLen: "max_length"}
_CONFIG_KEYS = frozenset({"extra", "allow_inf_nan", "frozen", "title", "json_schema_extra"})
_DOC_ONLY = ("description", "title", "examples", "json_schema_extra")


def _constraints(metadata: Sequence[Any]) -> dict[str, Any]:
    """msgspec.Meta keywords for pydantic's constraint metadata (Ge, MaxLen, a pattern...)."""
    found: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            _plain_field(item)
            found.update(_constraints(item.metadata))
        elif type(item) in _BOUNDS:
            found[_BOUNDS[type(item)]] = getattr(item, _BOUNDS[type(item)])
        elif type(item) in _LENGTHS:
            found[_LENGTHS[type(item)]] = getattr(item, _LENGTHS[type(item)])
        elif type(item).__name__ == "_PydanticGeneralMetadata" and set(vars(item)) == {"pattern"}:
            pattern = vars(item)["pattern"]
            if not (isinstance(pattern, str) and _SAFE_PATTERN.fullmatch(pattern)):
                raise UnmirroredError(f"pattern {pattern!r}: only anchored character-class patterns are mirrored")
            found["pattern"] = pattern[:-1] + r"\Z"
        else:
            raise UnmirroredError(f"constraint {item!r}")
    return found


def _plain_field(field: FieldInfo) -> None:
    """No alias, discriminator or other behaviour that changes what a field reads."""
    if field.alias is not None or field.validation_alias is not None or field.discriminator is not None:
        raise UnmirroredError("an alias or a discriminator")


class _Generator:
    def __init__(self) -> None:
        self._mirrors: dict[type[BaseModel], type[msgspec.Struct]] = {}

    def message(self, model: type[Envelope]) -> type[msgspec.Struct]:
        """The mirror of a sector's message: tagged by its `sector` literal, its time read by the decoder."""
        (code,) = get_args(model.model_fields["sector"].annotation)
        ts = model.model_fields["ts"]
        if ts.annotation is not AwareDatetime or ts.metadata or not ts.is_required():
            raise UnmirroredError("ts is a required AwareDatetime")
        fields = [("ts_text", Annotated[str, msgspec.Meta(pattern=TIME_TEXT)], msgspec.field(name="ts"))]
        namespace: dict[str, Any] = {"sector": code, "ts": property(_message_time)}
        return self._struct(
            model,
            fields,
            skip=("sector", "ts"),
            namespace=namespace,
            tag_field="sector",
            tag=code,
            dict=True,  # for `epoch`, set by the decoder
        )

    def model(self, model: type[BaseModel]) -> type[msgspec.Struct]:
        mirror = self._mirrors.get(model)
        if mirror is None:
            mirror = self._mirrors[model] = self._struct(model, [], skip=(), namespace={})
        return mirror

    def _struct(
        self,
        model: type[BaseModel],
        fields: list[tuple[str, Any, Any]],
        skip: Sequence[str],
        namespace: dict[str, Any],
        **options: Any,
    ) -> type[msgspec.Struct]:
        _check_model(model)
        for name, field in model.model_fields.items():
            if name in skip:
                continue
            if name in namespace or name.endswith("_text"):
                raise UnmirroredError(f"{model.__name__}.{name} clashes with the mirror's own names")
            _plain_field(field)
            annotation = self._mirror_type(field.annotation, field.metadata)
            if field.is_required():
                fields.append((name, annotation, msgspec.field()))
            else:
                fields.append((name, annotation, self._default(field, annotation)))
        try:
            return msgspec.defstruct(
                f"{model.__name__}Mirror",
                fields,
                namespace=namespace,
                module=__name__,
                frozen=True,
                kw_only=True,
                forbid_unknown_fields=model.model_config.get("extra") == "forbid",
                **options,
            )
        except (TypeError, ValueError) as exc:
            raise UnmirroredError(f"{model.__name__}: {exc}") from exc

    def _default(self, field: FieldInfo, annotation: Any) -> Any:
        factory = field.default_factory
        if factory is not None:
            if factory in (dict, list):
                return msgspec.field(default_factory=factory)
            raise UnmirroredError(f"default factory {factory!r}")
        default = field.default
        if isinstance(default, BaseModel):
            return msgspec.convert(default.model_dump(), annotation)
        if default is None or isinstance(default, str | int | float) or default == ():
            return default
        raise UnmirroredError(f"default {default!r}")

    def _mirror_type(self, annotation: Any, metadata: Sequence[Any]) -> Any:
        origin = get_origin(annotation)
        if origin is Annotated:
            inner, *extra = get_args(annotation)
            return self._mirror_type(inner, [*metadata, *extra])
        meta = _constraints(metadata)
        args = get_args(annotation)
        if origin in (Union, UnionType):
            others = [arg for arg in args if arg is not NoneType]
            if len(others) != 1 or len(args) != 2 or meta:
                raise UnmirroredError(f"{annotation!r}: only `X | None` unions are mirrored")
            return self._mirror_type(others[0], ()) | None
        if origin is Literal:
            if meta or not all(type(arg) in (str, int) for arg in args):
                raise UnmirroredError(f"{annotation!r}: literals of str or int only")
            return annotation
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return _annotated(tuple[self._mirror_type(args[0], ()), ...], meta)  # type: ignore[misc]
        if origin is dict and len(args) == 2:
            key, value = self._mirror_type(args[0], ()), self._mirror_type(args[1], ())
            return _annotated(dict[key, value], meta)  # type: ignore[valid-type]
        if annotation is bool and not meta:
            return bool
        if annotation in (str, int, float):
            return _annotated(annotation, meta)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and not meta:
            return self.model(annotation)
        raise UnmirroredError(f"type {annotation!r}")


def _annotated(annotation: Any, meta: Mapping[str, Any]) -> Any:
    return Annotated[annotation, msgspec.Meta(**meta)] if meta else annotation


def _check_model(model: type[BaseModel]) -> None:
    config = set(model.model_config) - _CONFIG_KEYS
    if config or model.model_config.get("extra") == "allow":
        raise UnmirroredError(f"{model.__name__}: configuration {sorted(config) or 'extra=allow'}")
    decorators = model.__pydantic_decorators__
    if decorators.validators or decorators.field_validators or decorators.root_validators:
        raise UnmirroredError(f"{model.__name__}: validators")
    if decorators.model_validators:
        raise UnmirroredError(f"{model.__name__}: model validators")
    if any("model_post_init" in vars(cls) for cls in model.__mro__ if cls is not BaseModel):
        raise UnmirroredError(f"{model.__name__}: model_post_init")


def _message_time(message: Any) -> datetime:
    return _from_iso(message.ts_text)


# --- the decoder ---------------------------------------------------------------------------------------------


def fast_decoder(
    messages: Sequence[type[Envelope]],
) -> tuple[Callable[[bytes], AnyMessage | None], frozenset[str]]:
    """A decode function over the mirrors of `messages` (None where the mirror refuses or cannot say) and the
    sector codes it covers."""
    generator = _Generator()
    mirrors: list[type[msgspec.Struct]] = []
    for message in messages:
        try:
            mirrors.append(generator.message(message))
        except UnmirroredError:
            continue
    if not mirrors:
        return _refuse, frozenset()
    codes = frozenset(str(mirror.sector) for mirror in mirrors)  # type: ignore[attr-defined]
    decode = msgspec.json.Decoder(Union[tuple(mirrors)]).decode
    from_iso = _from_iso

    def fast_decode(raw: bytes) -> AnyMessage | None:
        try:
            message = decode(raw)
            # the time read once (an out-of-range field refuses the message here), kept as the message's `epoch`
            vars(message)["epoch"] = from_iso(message.ts_text).timestamp()
        except Exception:  # anything the mirror does not take, pydantic judges
            return None
        return cast(AnyMessage, message)

    return fast_decode, codes


def _refuse(raw: bytes) -> AnyMessage | None:
    return None
