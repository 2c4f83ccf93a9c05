"""The administrator's registry: enterprises and devices (with their setpoints), every change audited per subject,
and the verified audit trail of either."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Generic, Protocol, TypeVar

from chalicelib.domain.access import require_role
from chalicelib.domain.errors import Conflict, NotFound, ValidationFailed
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.registry import DeviceRegistration, Enterprise, Location, Setpoint, StaticFactors
from chalicelib.services.ports import (
    UNKNOWN_ORIGIN,
    AuditStamp,
    Origin,
    RegistryRepository,
    RegistrySubject,
    SubjectLog,
    registry_subject,
    subject_of,
)

ADMIN = frozenset({Role.ADMIN})
S = TypeVar("S", DeviceRegistration, Enterprise)


class DeviceForm(Protocol):
    """A device as the administrator registers it (the API's `DeviceUpsert`); its enterprise's name, sector and
    areas are copied in from the registry."""

    @property
    def enterprise_id(self) -> str: ...

    @property
    def unit_id(self) -> str: ...

    @property
    def unit_name(self) -> str: ...

    @property
    def point_name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def setpoints(self) -> Mapping[str, Setpoint]: ...

    @property
    def static(self) -> StaticFactors: ...

    @property
    def reason(self) -> str: ...

    @property
    def location(self) -> Location | None: ...


@dataclass(frozen=True)
class RegistryChange(Generic[S]):
    """A subject as registered now; `changed`: this call wrote it; `audit_seq`: the head of its audit chain."""

    subject: S
    changed: bool
    audit_seq: int
    devices_updated: int = 0  # an enterprise's devices whose copies of its name and areas followed


class RegistryAdmin:
    def __init__(self, registry: RegistryRepository, clock: Callable[[], float]) -> None:
        self._registry = registry
        self._clock = clock

    def enterprise(self, actor: Actor, enterprise_id: str) -> Enterprise:
        require_role(actor, ADMIN, "管理企业登记")
        found = self._registry.enterprise(enterprise_id)
        if found is None:
            raise NotFound("enterprise_not_found", "企业不存在")
        return found

    def put_enterprise(
        self, actor: Actor, enterprise: Enterprise, reason: str = "", origin: Origin = UNKNOWN_ORIGIN
    ) -> RegistryChange[Enterprise]:
        """Register or change an enterprise; its devices' copies of its name and areas follow (each audited)."""
        require_role(actor, ADMIN, "管理企业登记")
        current = self._registry.enterprise(enterprise.enterprise_id)
        if current is not None:  # its on-duty persons are named through the roster admin, not the profile
            enterprise = enterprise.model_copy(update={"on_duty": current.on_duty})
        devices = self._registry.devices_of(enterprise.enterprise_id) if current is not None else []
        if current is not None and current.sector != enterprise.sector and devices:
            raise Conflict("sector_locked", "企业已登记设备，不能变更所属行业")
        stamp = self._stamp(actor, reason, origin)
        change = self._put(enterprise, stamp)
        follows = replace(stamp, reason=f"企业信息变更同步: {reason}".rstrip(": "))
        updated = 0
        for device in devices:
            copy = device.model_copy(
                update={"enterprise_name": enterprise.name, "area_codes": enterprise.area_codes}
            )
            if self._registry.put(copy, follows) is not None:
                updated += 1
        return replace(change, devices_updated=updated)

    def device(self, actor: Actor, device_id: str) -> DeviceRegistration:
        require_role(actor, ADMIN, "管理设备登记")
        found = self._registry.device(device_id)
        if found is None:
            raise NotFound("device_not_found", "设备不存在")
        return found

    def put_device(
        self, actor: Actor, device_id: str, form: DeviceForm, origin: Origin = UNKNOWN_ORIGIN
    ) -> RegistryChange[DeviceRegistration]:
        """Register or change a device and its setpoints (名称、单元、设定值); audited as `device:{id}`."""
        require_role(actor, ADMIN, "管理设备登记")
        enterprise = self._registry.enterprise(form.enterprise_id)
        if enterprise is None:
            raise ValidationFailed("unknown_enterprise", "所属企业未登记")
        registration = DeviceRegistration(
            device_id=device_id,
            enterprise_id=enterprise.enterprise_id,
            enterprise_name=enterprise.name,
            sector=enterprise.sector,
            unit_id=form.unit_id,
            unit_name=form.unit_name,
            point_name=form.point_name,
            kind=form.kind,
            area_codes=enterprise.area_codes,
            setpoints=dict(form.setpoints),
            static=form.static,
            location=form.location,
        )
        return self._put(registration, self._stamp(actor, form.reason, origin))

    def subject_audit(self, actor: Actor, kind: str, key: str) -> SubjectLog:
        """The audit trail of a device (`kind` "device") or an enterprise ("enterprise"), for the chain check."""
        require_role(actor, ADMIN, "查看登记变更记录")
        exists: RegistrySubject | None = (
            self._registry.device(key) if kind == "device" else self._registry.enterprise(key)
        )
        log = self._registry.log(registry_subject(kind, key))
        if exists is None and not log.events and log.head.seq == 0:
            if kind == "device":
                raise NotFound("device_not_found", "设备不存在")
            raise NotFound("enterprise_not_found", "企业不存在")
        return log

    def _put(self, subject: S, stamp: AuditStamp) -> RegistryChange[S]:
        """Put a registry subject with its audit event; unchanged, it answers with the chain's current head."""
        event = self._registry.put(subject, stamp)
        seq = event.seq if event is not None else self._registry.log(subject_of(subject)).head.seq
        return RegistryChange(subject=subject, changed=event is not None, audit_seq=seq)

    def _stamp(self, actor: Actor, reason: str, origin: Origin) -> AuditStamp:
        return AuditStamp.of(actor, self._clock(), reason, origin)
