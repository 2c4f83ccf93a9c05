"""People's rosters in the registry table, and the `Rosters` port over them (who a message for a role reaches now).

Items (registry table):
- a shift: `SHIFT#{shift id}` / `PROFILE` (read by id, consistently) and its roster copy
  `ROSTER#{role}` / `SHIFT#{starts_at:012d}#{shift id}`: "who is on shift at t" is one Query of the roster's
  partition for the sort keys of shifts starting in `[t - MAX_SHIFT_S, t]`, never a scan;
- a person: `PERSON#{id}` / `PROFILE`, listed from the `gsi1` partition `PEOPLE` (`dynamo._person_item`);
- an enterprise's on-duty persons: the `on_duty` field of its profile `ENT#{id}` / `PROFILE`.
Writes go through `audit_store.AuditedRegistry` (each change chained); this module reads and lays out items.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from pynamodb.exceptions import DoesNotExist

from chalicelib.adapters.dynamo import DynamoRegistry, RegistryItem
from chalicelib.domain.lifecycle import Role
from chalicelib.domain.registry import Person
from chalicelib.domain.rosters import MAX_SHIFT_S, RosterRole, Shift, on_duty, starts_window

PREFETCH_S = 3600
"""A cached roster query reaches this far either side of the moment asked for, so that the calls of the cache's
life (a batch of deliveries, retries) hit it."""


def roster_key(role: str) -> str:
    return f"ROSTER#{role}"


def shift_sort_key(starts_at: int, shift_id: str = "") -> str:
    return f"SHIFT#{starts_at:012d}#{shift_id}"


def shift_items(shift: Shift) -> tuple[RegistryItem, RegistryItem]:
    """The shift's own item and its copy in its roster's partition."""
    data = shift.model_dump(mode="json")
    return (
        RegistryItem(f"SHIFT#{shift.shift_id}", "PROFILE", data=data),
        RegistryItem(roster_key(shift.role), shift_sort_key(shift.starts_at, shift.shift_id), data=data),
    )


def read_shift(shift_id: str) -> Shift | None:
    try:
        return Shift.model_validate(RegistryItem.get(f"SHIFT#{shift_id}", "PROFILE", consistent_read=True).data)
    except DoesNotExist:
        return None


def query_shifts(role: str, start: int, end: int) -> list[Shift]:
    """The role's shifts starting in `[start, end]`: one Query of `ROSTER#{role}` by sort key range."""
    condition = RegistryItem.sk.between(shift_sort_key(max(start, 0)), shift_sort_key(max(end, 0), "\uffff"))
    return [Shift.model_validate(item.data) for item in RegistryItem.query(roster_key(role), condition)]


def write_shift(shift: Shift, before: Shift | None) -> None:
    profile, copy = shift_items(shift)
    copy.save()
    profile.save()
    if before is not None and before.starts_at != shift.starts_at:
        shift_items(before)[1].delete()


def remove_shift(shift: Shift) -> None:
    profile, copy = shift_items(shift)
    copy.delete()
    profile.delete()


class DynamoRosters:
    """The `Rosters` port: people and enterprises from a `DynamoRegistry` (cached `ttl_s`), shifts from one
    bounded Query per roster, cached `ttl_s` per container (a shift change shows within that)."""

    def __init__(
        self,
        registry: DynamoRegistry | None = None,
        ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry or DynamoRegistry(ttl_s=ttl_s, clock=clock)
        self._ttl_s = ttl_s
        self._clock = clock
        self._shifts: dict[str, tuple[float, int, int, tuple[Shift, ...]]] = {}  # role: (loaded, start, end, ..)

    def on_duty(self, role: Role, at: float, enterprise_id: str | None = None) -> Sequence[Person]:
        people = [person for person in self._registry.people() if person.role == role.value]
        if role is Role.ENTERPRISE:
            enterprise = self._registry.enterprise(enterprise_id) if enterprise_id else None
            if enterprise is None:
                return ()
            named = {p.person_id: p for p in people if p.enterprise_id == enterprise.enterprise_id}
            return tuple(named[person_id] for person_id in enterprise.on_duty if person_id in named)
        if role.value in RosterRole.__members__.values():
            return on_duty(people, self._shifts_around(role.value, at), at)
        return tuple(people)

    def _shifts_around(self, role: str, at: float) -> tuple[Shift, ...]:
        """The shifts that may cover `at`, from the cache when it is fresh and its window holds `at`'s."""
        now = self._clock()
        start, end = starts_window(at)
        cached = self._shifts.get(role)
        if cached is not None and now - cached[0] <= self._ttl_s and cached[1] <= start and end <= cached[2]:
            return cached[3]
        start, end = start - PREFETCH_S, end + PREFETCH_S
        found = tuple(query_shifts(role, start, end))
        self._shifts[role] = (now, start, end, found)
        return found


__all__ = ["MAX_SHIFT_S", "DynamoRosters"]
