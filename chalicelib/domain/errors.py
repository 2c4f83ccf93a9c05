"""Domain errors: an English `code` for programs, a Chinese `message_zh` for people, an HTTP status for the API.

The API layer maps any `DomainError` to its `http_status` with `{"code": ..., "message": message_zh}`; nothing
branches on the message text. Raise the subclasses, not the base.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    http_status: ClassVar[int] = 400

    def __init__(self, code: str, message_zh: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message_zh}")
        self.code = code
        self.message_zh = message_zh
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message_zh}
        if self.details:
            body["details"] = self.details
        return body


class InvalidTransition(DomainError):  # noqa: N818 - names fixed by the API contract
    """The warning's current status (or level, or reading) does not allow the action."""

    http_status: ClassVar[int] = 409


class Forbidden(DomainError):  # noqa: N818 - names fixed by the API contract
    """The caller's role may not take this action (independent of whether the record exists)."""

    http_status: ClassVar[int] = 403


class NotFound(DomainError):  # noqa: N818 - names fixed by the API contract
    """The record does not exist, or lies outside the caller's scope (existence is not leaked)."""

    http_status: ClassVar[int] = 404


class ValidationFailed(DomainError):  # noqa: N818 - names fixed by the API contract
    """The request is well-formed JSON but its content breaks a rule (missing text, deadline in the past...)."""

    http_status: ClassVar[int] = 422


class Conflict(DomainError):  # noqa: N818 - names fixed by the API contract
    """A concurrent change won (version mismatch) or the resource already exists."""

    http_status: ClassVar[int] = 409


class NotConfigured(DomainError):  # noqa: N818 - names fixed by the API contract
    """A feature whose backing resource this stage does not have (no evidence bucket, no user directory)."""

    http_status: ClassVar[int] = 503
