"""Offline warnings through the real warning path (docs/offline-watch.md): the offline watch's transitions become
`offline` warning changes, stored, chained, timed, published and delivered exactly as the engine's changes are in
the ingest (`IngestService._record`): routing, deadlines, delivery, escalation and closure apply unchanged.

A raise is `WarningRecord.raised` (level by `domain.presence.offline_level`: a hazardous-goods vehicle by the
road-transport silence rule, every other device blue); a recovery is the engine's `recover` change (the reading is
marked normal, latched; people close the warning as they close a data-quality one). Both are idempotent: the
warning id comes from the device and its last sign of life, the event from the change's time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from aws_lambda_powertools import Logger

from chalicelib.domain.catalog import Policy
from chalicelib.domain.changes import ChangeKind, WarningChange
from chalicelib.domain.declarations import declared
from chalicelib.domain.delivery import change_job
from chalicelib.domain.levels import Level
from chalicelib.domain.presence import offline_change, offline_level, offline_warning_id
from chalicelib.domain.registry import DeviceRegistration
from chalicelib.domain.sectors.road_transport import RoadTransportModel
from chalicelib.domain.warnings import WarningRecord
from chalicelib.observability import INHERIT, SERVICE, count
from chalicelib.services.fanout import notification_for
from chalicelib.services.ports import (
    ClaimOutcome,
    DeliveryJobs,
    DeliveryKey,
    DeliveryLedger,
    DeliveryOutcome,
    Notifier,
    OfflineTransition,
    Registry,
    StateStore,
    WarningStore,
    Workflow,
)

logger = Logger(service=SERVICE, child=True, level=INHERIT)


class OfflineWarnings:
    """`OfflineSink` over the ingest's own ports (registry, states, warning store, timers, topic, delivery)."""

    def __init__(
        self,
        policy: Policy,
        registry: Registry,
        states: StateStore,
        warnings: WarningStore,
        notifier: Notifier,
        deliveries: DeliveryLedger,
        workflow: Workflow | None,
        jobs: DeliveryJobs | None,
        clock: Callable[[], float],
        road: RoadTransportModel | None = None,
        claim_lease_s: float = 120.0,
    ) -> None:
        self._policy = policy
        self._registry = registry
        self._states = states
        self._warnings = warnings
        self._notifier = notifier
        self._deliveries = deliveries
        self._workflow = workflow
        self._jobs = jobs
        self._clock = clock
        self._road = road
        self._lease_s = claim_lease_s
        self._owner = uuid.uuid4().hex

    def offline(self, transition: OfflineTransition) -> bool:
        reg = self._registry.devices([transition.device_id]).get(transition.device_id)
        if reg is None:
            logger.warning("offline device is no longer registered", extra={"device_id": transition.device_id})
            return False
        level = self._level(reg, transition.at)
        change = offline_change(
            reg, ChangeKind.RAISE, level, Level.NONE, transition.at, transition.at, transition.since
        )
        record = WarningRecord.raised(change)
        self._warnings.create(record)  # completes a half-written raise when it exists
        if self._workflow is not None:
            self._workflow.track(record.warning_id)
        self._record(change)
        count("OfflineWarnings", change="raise", sector=reg.sector.value)
        return self._may_rise(reg, level)

    def regrade(self, transition: OfflineTransition) -> bool:
        """A silent vehicle's level by its silence rule now (DOMAIN.md §2.1): raised through the engine's
        `level_up` change (its deadlines re-armed at the new level, told like any level change)."""
        if transition.offline_since is None:
            return False
        reg = self._registry.devices([transition.device_id]).get(transition.device_id)
        current = self._warnings.get(offline_warning_id(transition.device_id, transition.offline_since))
        if reg is None or current is None or not current.is_open:
            return False
        level = self._level(reg, transition.at)
        if level > current.level:
            change = offline_change(
                reg,
                ChangeKind.LEVEL_UP,
                level,
                current.level,
                transition.at,
                current.raised_at,
                transition.offline_since,
            )
            if self._warnings.apply_change(change) and self._workflow is not None:
                self._workflow.track(change.warning_id)  # the new level's deadlines
            self._record(change)
            count("OfflineWarnings", change="level_up", sector=reg.sector.value)
        return self._may_rise(reg, max(level, current.level))

    def _level(self, reg: DeviceRegistration, at: float) -> Level:
        scratch: dict[str, object] = {}
        if self._road is not None and reg.sector.value == "road_transport":  # the vehicle's last report
            state = self._states.load_devices([reg.device_id]).get(reg.device_id)
            scratch = dict(state.scratch) if state is not None else {}
        return offline_level(reg, scratch, at, self._road)

    def _may_rise(self, reg: DeviceRegistration, level: int) -> bool:
        """Only a hazardous-goods vehicle's offline level rises with its silence, up to red."""
        return self._road is not None and reg.static.vehicle_class == "hazmat" and level < Level.RED

    def online(self, transition: OfflineTransition) -> None:
        if transition.offline_since is None:
            return
        warning_id = offline_warning_id(transition.device_id, transition.offline_since)
        current = self._warnings.get(warning_id)
        reg = self._registry.devices([transition.device_id]).get(transition.device_id)
        if current is None or reg is None:
            return  # never raised (suppressed, or the raise failed before its write): nothing to recover
        change = offline_change(
            reg,
            ChangeKind.RECOVER,
            Level.NONE,
            current.level,
            max(transition.since, current.raised_at),
            current.raised_at,
            transition.offline_since,
        )
        self._warnings.apply_change(change)  # False when closed meanwhile: the log still records the change
        self._record(change)
        count("OfflineWarnings", change="recover", sector=reg.sector.value)

    def suppressed(self, transition: OfflineTransition, declaration_id: str) -> None:
        reg = self._registry.devices([transition.device_id]).get(transition.device_id)
        if reg is None:
            return
        level = self._level(reg, transition.at)
        change = offline_change(
            reg, ChangeKind.RAISE, level, Level.NONE, transition.at, transition.at, transition.since
        )
        self._warnings.append_engine_event(declared(change, declaration_id))
        count("OfflineWarnings", change="suppressed", sector=reg.sector.value)

    def _record(self, change: WarningChange) -> None:
        """The engine log, the warning topic (claimed once) and one delivery job, as the ingest tells a change."""
        self._warnings.append_engine_event(change)
        logger.info(
            "offline warning change recorded",
            extra={"warning_id": change.warning_id, "device_id": change.device_id, "change": change.kind.value},
        )
        enterprise = self._registry.enterprise(change.enterprise_id)
        notification = notification_for(self._policy, change, enterprise, self._registry.people())
        if notification.route.audiences:
            key = DeliveryKey(change.warning_id, change.event_seq, "topic", "-")
            claim = self._deliveries.claim(key, self._owner, self._clock(), self._lease_s)
            if claim is ClaimOutcome.MINE:
                self._notifier.publish(notification)
                self._deliveries.settle(key, self._owner, DeliveryOutcome.SENT, self._clock())
        if self._jobs is not None and notification.text is not None:
            self._jobs.enqueue([change_job(change, notification.route, notification.text, notification.app)])
