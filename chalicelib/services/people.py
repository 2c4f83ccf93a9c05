"""The administrator's users: accounts in the user pool, each with one role and the scope that role needs."""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.domain.access import require_role
from chalicelib.domain.errors import NotConfigured, ValidationFailed
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.services.ports import NewUser, RegistryRepository, UserAccount, UserDirectory, UserPage

ADMIN = frozenset({Role.ADMIN})
PERSON_ROLES: tuple[Role, ...] = tuple(role for role in Role if role is not Role.SYSTEM)


class People:
    def __init__(self, users: UserDirectory | None, registry: RegistryRepository) -> None:
        self._users = users
        self._registry = registry

    def create_user(self, actor: Actor, user: NewUser) -> UserAccount:
        """A new account; an enterprise user's enterprise must be registered."""
        require_role(actor, ADMIN, "管理用户")
        if user.enterprise_id and self._registry.enterprise(user.enterprise_id) is None:
            raise ValidationFailed("unknown_enterprise", "所属企业未登记")
        return self._directory().create_user(user)

    def list_users(
        self, actor: Actor, roles: Sequence[str] | None, limit: int, cursor: str | None = None
    ) -> UserPage:
        """A page of accounts with any of `roles` (every person's role when None); `cursor`: the page before's
        `next_token`."""
        require_role(actor, ADMIN, "管理用户")
        wanted = [role for role in PERSON_ROLES if not roles or role.value in roles]
        return self._directory().list_users(limit, cursor, wanted)

    def _directory(self) -> UserDirectory:
        if self._users is None:
            raise NotConfigured("users_unavailable", "用户目录未配置")
        return self._users
