"""The rectification adapter (`adapters/rectification.py`) against moto's server, on the registry table of
infra/resources.json: version-checked saves chained per item, the enterprise, sector and area listings from gsi1,
the overdue read (a deadline range per sector), and one publication record per report version."""

from __future__ import annotations

import pytest

from chalicelib.adapters import audit_store, dynamo, rectification
from chalicelib.adapters.rectification import DynamoRectificationStore
from chalicelib.domain.access import Scope, ScopeKind
from chalicelib.domain.audit import verify_chain
from chalicelib.domain.evaluation.rectification import (
    Problem,
    RectificationItem,
    RectificationStatus,
    answer,
    rectification_id,
)
from chalicelib.domain.levels import Sector
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.services.ports import AuditStamp, ConcurrentUpdateError, Publication
from chalicelib.settings import Settings
from local.aws import Provisioned, provision

T0 = 1_764_000_000.0
DAY = 86400.0
DUTY = AuditStamp("duty-01", "duty", T0)
ENT = Actor(user_id="ent-e1", role=Role.ENTERPRISE, enterprise_id="E1")


@pytest.fixture(scope="module")
def store(moto_server: str) -> DynamoRectificationStore:
    provisioned: Provisioned = provision(moto_server, stage="test")
    settings = Settings(
        stage="test",
        region=provisioned.region,
        aws_endpoint_url=moto_server,
        table_device_state=provisioned.table("DeviceStateTable"),
        table_unit_state=provisioned.table("UnitStateTable"),
        table_registry=provisioned.table("RegistryTable"),
        table_warning=provisioned.table("WarningTable"),
        table_warning_event=provisioned.table("WarningEventTable"),
        table_quarantine=provisioned.table("QuarantineTable"),
    )
    dynamo.bind(settings)
    audit_store.bind(settings)
    rectification.bind(settings)
    return DynamoRectificationStore()


def make(
    enterprise_id: str, problem: Problem, sector: Sector, areas: tuple[str, ...], deadline: float
) -> RectificationItem:
    return RectificationItem(
        rectification_id=rectification_id("month-2025-03", enterprise_id, problem),
        report_id="month-2025-03",
        period_label="2025-03",
        enterprise_id=enterprise_id,
        enterprise_name=f"企业{enterprise_id}",
        sector=sector,
        area_codes=areas,
        problem=problem,
        title="在线率98.50%，低于99.5%",
        requirement="排查设备",
        score=55.0,
        band="red",
        deadline=deadline,
        issued_by="duty-01",
        created_at=T0,
        updated_at=T0,
    )


def test_items_are_saved_once_chained_and_listed_by_scope(store: DynamoRectificationStore) -> None:
    first = make("E1", Problem.LOW_ONLINE, Sector.HAZCHEM, ("Z1", "S1"), T0 + 30 * DAY)
    second = make("E1", Problem.MISSED_DEADLINES, Sector.HAZCHEM, ("Z1", "S1"), T0 + 10 * DAY)
    third = make("E2", Problem.LOW_SCORE, Sector.FIRE, ("S2",), T0 + 20 * DAY)
    for item in (first, second, third):
        store.save(item, "rectification_issued", DUTY)
    with pytest.raises(ConcurrentUpdateError):
        store.save(first, "rectification_issued", DUTY)  # exists: a second publish does not issue it again
    stored = store.get(first.rectification_id)
    assert stored is not None and stored.version == 1 and stored.title == first.title
    store.save(
        answer(stored, ENT, T0 + DAY, "已整改"),
        "rectification_answered",
        AuditStamp("ent-e1", "enterprise", T0 + DAY),
    )
    with pytest.raises(ConcurrentUpdateError):
        store.save(answer(stored, ENT, T0 + DAY, "已整改"), "rectification_answered", DUTY)  # stale version

    def ids(scope: Scope, statuses: set[RectificationStatus] | None = None) -> list[str]:
        found = store.listing(scope, None if statuses is None else frozenset(statuses), None, 10)
        return [item.rectification_id for item, _ in found]

    def enterprise(enterprise_id: str) -> Scope:
        return Scope(kind=ScopeKind.ENTERPRISE, enterprise_id=enterprise_id)

    def sectors(*chosen: Sector) -> Scope:
        return Scope(kind=ScopeKind.SECTORS, sectors=chosen)

    def areas(*codes: str) -> Scope:
        return Scope(kind=ScopeKind.AREAS, area_codes=codes)

    assert set(ids(enterprise("E1"))) == {first.rectification_id, second.rectification_id}
    assert ids(sectors(Sector.HAZCHEM)) == [second.rectification_id, first.rectification_id]  # by deadline
    everything = [
        item.enterprise_id for item, _ in store.listing(sectors(Sector.FIRE, Sector.HAZCHEM), None, None, 2)
    ]
    assert everything == ["E1", "E2", "E1"]
    assert ids(areas("S2")) == [third.rectification_id]
    assert ids(areas("Z1")) == [second.rectification_id, first.rectification_id]
    assert ids(areas("Z1", "S1")) == [second.rectification_id, first.rectification_id]  # each once
    assert ids(areas("NOWHERE")) == [] and ids(enterprise("E9")) == []
    # by stored status: the answered one left the open partitions (its old pointers deleted after the save)
    assert ids(enterprise("E1"), {RectificationStatus.ANSWERED}) == [first.rectification_id]
    assert ids(enterprise("E1"), {RectificationStatus.OPEN}) == [second.rectification_id]
    assert ids(sectors(Sector.HAZCHEM), {RectificationStatus.OPEN}) == [second.rectification_id]
    assert ids(areas("Z1"), {RectificationStatus.ANSWERED, RectificationStatus.ACCEPTED}) == [
        first.rectification_id
    ]
    assert ids(Scope(kind=ScopeKind.ALL), {RectificationStatus.OPEN}) == [
        second.rectification_id,
        third.rectification_id,
    ]
    # a cursor resumes strictly after its position
    (_, position), *_ = store.listing(sectors(Sector.HAZCHEM), None, None, 1)
    assert [item.rectification_id for item, _ in store.listing(sectors(Sector.HAZCHEM), None, position, 1)] == [
        first.rectification_id
    ]
    assert {i.rectification_id for i in store.due_before(T0 + 25 * DAY)} == {
        second.rectification_id,
        third.rectification_id,
    }
    log = store.log(first.rectification_id)
    assert [e.type for e in log.events] == ["rectification_issued", "rectification_answered"]
    assert verify_chain(log.events, log.head).ok


def test_one_publication_record_per_version(store: DynamoRectificationStore) -> None:
    publication = Publication("month-2025-03", "v1", T0, "duty-01", 12, 3, 2, ("v1",))
    assert store.publication("month-2025-03") is None
    assert store.record_publication(publication, DUTY)
    assert not store.record_publication(publication, DUTY)  # the same version again: nothing written
    assert store.publication("month-2025-03") == publication
    second = Publication("month-2025-03", "v2", T0 + DAY, "admin", 12, 3, 2, ("v1", "v2"))
    assert store.record_publication(second, AuditStamp("admin", "admin", T0 + DAY))
    assert store.publication("month-2025-03") == second
    log = store.publication_log("month-2025-03")
    assert [e.type for e in log.events] == ["evaluation_published"] * 2 and verify_chain(log.events, log.head).ok
