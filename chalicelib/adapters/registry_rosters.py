"""`Rosters` answered from the registry's people, until the roster tables land: no shifts, so the duty centre
is every duty officer (the port's rule when no shift covers the moment), an enterprise is its people of role
`enterprise` (empty: the caller falls back to the enterprise's contacts), any other role is everyone of it."""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.domain.registry import Person
from chalicelib.domain.roles import Role
from chalicelib.services.ports import Directory


class RegistryRosters:
    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def on_duty(self, role: Role, at: float, enterprise_id: str | None = None) -> Sequence[Person]:
        people = [person for person in self._directory.people() if person.role == role.value]
        if role is Role.ENTERPRISE:
            return [person for person in people if person.enterprise_id == enterprise_id]
        return people
