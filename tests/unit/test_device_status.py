"""GET /devices' service (docs/offline-watch.md "Device status") over the fakes: pages in enterprise and device
order whose cursor walks every matching device once, and per-device reads that follow the page, not the fleet (a
2,000-device fleet, 1 % offline)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from chalicelib.domain.declarations import Declaration, DeclarationReason, suppressing
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.presence import DeviceStatus, can_see_device, device_status
from chalicelib.domain.registry import DeviceRegistration, Enterprise
from chalicelib.domain.sectors import Sector
from chalicelib.domain.state import DeviceState
from chalicelib.services.device_status import DeviceStatuses
from chalicelib.services.fakes import FakeStates
from chalicelib.services.ports import OfflineRecord
from chalicelib.services.presence_fakes import FakeDeviceDirectory, FakeOfflineState

NOW = 1_800_000_000.0
ENTERPRISES = 10
PER_ENTERPRISE = 200  # 2,000 devices
ACTORS = {
    "duty": Actor(user_id="duty", role=Role.DUTY),
    "enterprise": Actor(user_id="ent", role=Role.ENTERPRISE, enterprise_id="E-03"),
    "regulator": Actor(user_id="reg", role=Role.REGULATOR, sectors=(Sector.FIRE,)),
    "area": Actor(user_id="area", role=Role.AREA, area_codes=("A1",)),
}


class CountingStates(FakeStates):
    """Device states, counting the ones a call names (a batch read's items)."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded = 0

    def load_devices(self, device_ids: Iterable[str]) -> dict[str, DeviceState]:
        ids = list(dict.fromkeys(device_ids))
        self.loaded += len(ids)
        return super().load_devices(ids)


class Fleet:
    """2,000 devices in 10 enterprises (fire and hazchem, areas A0 and A1, ids out of order in the directory):
    every 100th offline (20), every 3rd never seen, 30 covered by a declaration (5 of them offline too)."""

    def __init__(self) -> None:
        sectors = (Sector.FIRE, Sector.HAZCHEM)
        self.enterprises = [
            Enterprise(
                enterprise_id=f"E-{e:02d}",
                name=f"企业{e}",
                sector=sectors[e % 2],
                area_codes=(f"A{e % 3 % 2}",),
            )
            for e in reversed(range(ENTERPRISES))
        ]
        self.devices = [
            DeviceRegistration(
                device_id=f"D-{e:02d}-{d:03d}",
                enterprise_id=ent.enterprise_id,
                enterprise_name=ent.name,
                sector=ent.sector,
                unit_id=f"U-{e:02d}",
                unit_name="单元",
                kind="gas",
                area_codes=ent.area_codes,
            )
            for e, ent in enumerate(sorted(self.enterprises, key=lambda x: x.enterprise_id))
            for d in reversed(range(PER_ENTERPRISE))
        ]
        self.states = CountingStates()
        self.offline = FakeOfflineState()
        for index, device in enumerate(sorted(d.device_id for d in self.devices)):
            if index % 3:
                self.states.save_device(DeviceState(device, last_seq=1, last_ts=NOW - index), NOW - index)
            if index % 100 == 7:
                self.offline.records[device] = OfflineRecord(device, NOW - 3600 - index)
        declared = sorted(d.device_id for d in self.devices)[1005:1035]
        self.declarations = [
            self._declaration("DCL-1", declared[:10], NOW - 60, NOW + 3600),
            self._declaration("DCL-2", declared[5:], NOW - 60, NOW + 7200),
            self._declaration("DCL-OLD", declared, NOW - 7200, NOW - 3600),  # over: excuses nothing now
        ]
        self.directory = FakeDeviceDirectory(self.enterprises, self.devices)
        self.service = DeviceStatuses(
            self.directory,
            self.states,
            self.offline,
            lambda: self.declarations,
            lambda: NOW,
        )

    def _declaration(self, declaration_id: str, devices: list[str], starts: float, ends: float) -> Declaration:
        enterprise = next(d for d in self.devices if d.device_id == devices[0])
        return Declaration(
            declaration_id=declaration_id,
            enterprise_id=enterprise.enterprise_id,
            sector=enterprise.sector,
            device_ids=tuple(devices),
            reason=DeclarationReason.EQUIPMENT_DAMAGE,
            starts_at=starts,
            ends_at=ends,
            declared_by="someone",
            created_at=starts,
            updated_at=starts,
        )

    def expected(
        self, actor: Actor, status: DeviceStatus | None, enterprise_id: str | None
    ) -> list[tuple[str, DeviceStatus]]:
        """Every device the actor sees, by enterprise and device, its status worked out one by one."""
        found = []
        for reg in sorted(self.devices, key=lambda d: (d.enterprise_id, d.device_id)):
            if not can_see_device(actor, reg) or enterprise_id not in (None, reg.enterprise_id):
                continue
            state = self.states.load_devices([reg.device_id])[reg.device_id]
            excused = suppressing(self.declarations, reg.device_id, NOW) is not None
            current = device_status(
                reg.device_id in self.offline.records, excused, state.last_ts if state.last_ts > 0 else None
            )
            if status is None or current is status:
                found.append((reg.device_id, current))
        return found

    def reset_counts(self) -> None:
        self.states.loaded = 0
        self.offline.reads.clear()
        self.directory.reads.clear()


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return Fleet()


@pytest.mark.parametrize(
    ("role", "enterprise_id"), [*((role, None) for role in sorted(ACTORS)), ("duty", "E-05"), ("area", "E-04")]
)
@pytest.mark.parametrize("status", [None, *DeviceStatus])
@pytest.mark.parametrize("limit", [7, 500])
def test_the_pages_walk_every_matching_device_once_in_order(
    fleet: Fleet, role: str, enterprise_id: str | None, status: DeviceStatus | None, limit: int
) -> None:
    actor = ACTORS[role]
    walked: list[tuple[str, DeviceStatus]] = []
    cursor = None
    while True:
        page = fleet.service.list(actor, status=status, enterprise_id=enterprise_id, limit=limit, cursor=cursor)
        walked += [(s.registration.device_id, s.status) for s in page.items]
        if page.next_cursor is None:
            break
        assert len(page.items) == limit  # only the last page is short, and it says so
        cursor = page.next_cursor
    assert walked == fleet.expected(actor, status, enterprise_id)
    if enterprise_id is None:
        assert walked or status is DeviceStatus.DECLARED  # every status in every role's scope but one


def test_a_standing_carries_its_times_and_its_excuse(fleet: Fleet) -> None:
    page = fleet.service.list(ACTORS["duty"], limit=2000)
    by_id = {s.registration.device_id: s for s in page.items}
    offline = by_id["D-00-007"]
    assert (offline.status, offline.offline_since, offline.declaration_id) == (
        DeviceStatus.OFFLINE,
        NOW - 3600 - 7,
        None,
    )
    declared_and_offline = by_id["D-05-007"]  # the 1,007th device: both declarations cover it; the first names it
    assert (declared_and_offline.status, declared_and_offline.declaration_id) == (DeviceStatus.DECLARED, "DCL-1")
    assert declared_and_offline.offline_since == NOW - 3600 - 1007
    assert (by_id["D-00-001"].status, by_id["D-00-001"].last_seen) == (DeviceStatus.ONLINE, NOW - 1)
    assert (by_id["D-00-000"].status, by_id["D-00-000"].last_seen) == (DeviceStatus.NEVER_SEEN, None)


@pytest.mark.parametrize("limit", [5, 50])
def test_an_offline_page_reads_the_states_of_its_devices_only(fleet: Fleet, limit: int) -> None:
    cursor, pages = None, 0
    while True:
        fleet.reset_counts()
        page = fleet.service.list(ACTORS["duty"], status=DeviceStatus.OFFLINE, limit=limit, cursor=cursor)
        assert fleet.states.loaded == len(page.items) <= limit  # not the fleet's 2,000
        assert fleet.offline.reads == {"all_offline": 1}  # the offline records are the source: one query
        assert fleet.directory.reads == {"enterprises": 1, "device_keys": 19}  # theirs, not every enterprise's
        pages += 1
        if (cursor := page.next_cursor) is None:
            break
    assert pages == -(-19 // limit)  # 20 offline, one of them declared
    print(f"status=offline, limit {limit}: {pages} page(s), at most {limit} states read each")


def test_a_declared_page_reads_its_devices_only(fleet: Fleet) -> None:
    fleet.reset_counts()
    page = fleet.service.list(ACTORS["duty"], status=DeviceStatus.DECLARED, limit=10)
    assert len(page.items) == 10 and page.next_cursor is not None
    assert fleet.states.loaded == 10 and fleet.offline.reads == {"offline_keys": 10}
    assert fleet.directory.reads == {"enterprises": 1, "device_keys": 30}


def test_within_one_enterprise_the_candidates_come_from_its_listing(fleet: Fleet) -> None:
    fleet.reset_counts()
    page = fleet.service.list(ACTORS["enterprise"], status=DeviceStatus.OFFLINE, limit=50)
    assert [s.registration.device_id for s in page.items] == ["D-03-007", "D-03-107"]
    assert fleet.states.loaded == 2 and fleet.directory.reads == {"enterprises": 1, "devices_of": 1}


@pytest.mark.parametrize("status", [None, DeviceStatus.ONLINE, DeviceStatus.NEVER_SEEN])
def test_other_pages_read_in_chunks_of_the_page_size(fleet: Fleet, status: DeviceStatus | None) -> None:
    limit = 50
    fleet.reset_counts()
    page = fleet.service.list(ACTORS["duty"], status=status, limit=limit)
    assert len(page.items) == limit and page.next_cursor is not None
    # a third of the fleet never seen: an `online` page reads ~1.5 pages' states, a `never_seen` one ~3
    density = {None: 1.0, DeviceStatus.ONLINE: 2 / 3, DeviceStatus.NEVER_SEEN: 1 / 3}[status]
    assert fleet.states.loaded <= (limit + 1) / density + limit + 1
    assert fleet.offline.reads["offline_keys"] == fleet.states.loaded
    if status is None:
        assert fleet.states.loaded == limit + 1
    print(f"status={status}, limit {limit}: {fleet.states.loaded} states read (the fleet: 2,000)")
