"""The declarations adapter (`adapters/declarations.py`) against moto's server, on the registry table of
infra/resources.json: version-checked saves chained per declaration, the enterprise and open listings from gsi1,
and the open index kept honest."""

from __future__ import annotations

import pytest

from chalicelib.adapters import audit_store, declarations, dynamo
from chalicelib.adapters.declarations import OPEN, DeclarationItem, DynamoDeclarationStore
from chalicelib.domain import declarations as rules
from chalicelib.domain.audit import verify_chain
from chalicelib.domain.declarations import Declaration, DeclarationReason, DeclarationStatus
from chalicelib.domain.levels import Sector
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.services.ports import AuditStamp, ConcurrentUpdateError
from chalicelib.settings import Settings
from local.aws import Provisioned, provision

T0 = 1_764_000_000.0
H = 3600.0
REG = Actor(user_id="reg-emergency-bureau", role=Role.REGULATOR, sectors=(Sector.HAZCHEM,))


@pytest.fixture(scope="module")
def store(moto_server: str) -> DynamoDeclarationStore:
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
    declarations.bind(settings)
    return DynamoDeclarationStore()


def make(
    declaration_id: str, enterprise_id: str = "E1", created_at: float = T0, ends_at: float = T0 + 4 * H
) -> Declaration:
    return Declaration(
        declaration_id=declaration_id,
        enterprise_id=enterprise_id,
        sector=Sector.HAZCHEM,
        device_ids=("D1",),
        reason=DeclarationReason.EQUIPMENT_DAMAGE,
        starts_at=T0,
        ends_at=ends_at,
        declared_by="ent-e1",
        created_at=created_at,
        updated_at=created_at,
    )


def stamp(actor: str = "ent-e1", role: str = "enterprise") -> AuditStamp:
    return AuditStamp(actor=actor, role=role, at=T0, reason="测试", source_ip="10.0.0.1")


def test_a_declaration_is_saved_versioned_and_every_change_is_chained(store: DynamoDeclarationStore) -> None:
    new = make("DCL-a")
    first = store.save(new, "declaration_declared", stamp())
    stored = store.get("DCL-a")
    assert stored is not None and stored.version == 1 and stored.model_copy(update={"version": 0}) == new

    with pytest.raises(ConcurrentUpdateError):
        store.save(new, "declaration_declared", stamp())  # exists already

    approved = rules.approve(stored, REG, T0 + 60)
    second = store.save(approved, "declaration_approved", stamp(REG.user_id, "regulator"))
    with pytest.raises(ConcurrentUpdateError):
        store.save(rules.reject(stored, REG, T0 + 61, "x"), "declaration_rejected", stamp())  # stale read

    after = store.get("DCL-a")
    assert after is not None and (after.status, after.version) == (DeclarationStatus.APPROVED, 2)
    log = store.log("DCL-a")
    assert [e.seq for e in log.events] == [first.seq, second.seq] == [1, 2]
    assert verify_chain(log.events, head=log.head).ok
    assert (log.events[1].before["status"], log.events[1].after["status"]) == ("pending", "approved")
    assert log.events[0].subject_id == "declaration:DCL-a"
    assert store.get("DCL-nope") is None and store.log("DCL-nope").events == []


def test_listings_by_enterprise_newest_first_and_open_by_end(store: DynamoDeclarationStore) -> None:
    for index, (ends, enterprise) in enumerate([(5 * H, "E7"), (3 * H, "E7"), (4 * H, "E8")]):
        store.save(make(f"DCL-l{index}", enterprise, T0 + index, T0 + ends), "declaration_declared", stamp())
    assert [d.declaration_id for d in store.of_enterprise("E7")] == ["DCL-l1", "DCL-l0"]
    history = list(store.history("E7", None, None, 1))
    assert [d.declaration_id for d, _ in history] == ["DCL-l1", "DCL-l0"]
    assert [d.declaration_id for d, _ in store.history("E7", None, history[0][1], 1)] == ["DCL-l0"]

    closed = store.get("DCL-l2")
    assert closed is not None
    store.save(rules.withdraw(closed, REG, T0 - 1), "declaration_withdrawn", stamp())
    opened = [d.declaration_id for d in store.open() if d.declaration_id.startswith("DCL-l")]
    assert opened == ["DCL-l1", "DCL-l0"]  # by end; the withdrawn one left the open index
    listed = [d.declaration_id for d, _ in store.open_listing(None, 1) if d.declaration_id.startswith("DCL-l")]
    assert listed == opened
    withdrawn, pending = frozenset({DeclarationStatus.WITHDRAWN}), frozenset({DeclarationStatus.PENDING})
    assert [d.declaration_id for d, _ in store.history("E8", withdrawn, None, 5)] == ["DCL-l2"]
    assert list(store.history("E8", pending, None, 5)) == []  # its pending entry deleted after the save
    assert [d.declaration_id for d, _ in store.history("E7", pending | withdrawn, None, 5)] == ["DCL-l1", "DCL-l0"]
    with pytest.raises(DeclarationItem.DoesNotExist):
        DeclarationItem.get("DECL#DCL-l2", OPEN)


def test_a_stale_open_entry_is_dropped_by_the_listing(store: DynamoDeclarationStore) -> None:
    store.save(make("DCL-s"), "declaration_declared", stamp())
    declared = store.get("DCL-s")
    assert declared is not None
    store.save(rules.expire(declared, T0 + 5 * H), "declaration_expired", stamp("declaration-sweep", "system"))
    DeclarationItem("DECL#DCL-s", OPEN, gsi1pk="DECLS#OPEN", gsi1sk="0#DCL-s").save(
        add_version_condition=False
    )  # a writer stopped
    assert "DCL-s" not in [d.declaration_id for d in store.open()]
    with pytest.raises(DeclarationItem.DoesNotExist):
        DeclarationItem.get("DECL#DCL-s", OPEN)
