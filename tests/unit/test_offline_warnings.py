"""Offline warnings through the warning path (docs/offline-watch.md "Offline warnings"), over the ingest's fakes: a
raise is a stored `offline` warning with its timer, its topic publication and one delivery job; a repeated raise is
the same warning told once; the recovery marks the reading normal (latched) and is told; a device never raised
recovers nothing."""

from __future__ import annotations

from chalicelib.domain.changes import OFFLINE
from chalicelib.domain.levels import Level
from chalicelib.domain.presence import offline_warning_id
from chalicelib.domain.warnings import WarningStatus
from chalicelib.services.delivery_fakes import MemoryJobs
from chalicelib.services.offline_warnings import OfflineWarnings
from chalicelib.services.ports import OfflineTransition
from tests.unit.test_ingest_service import GT1, POLICY, T0, World


def sink(world: World, jobs: MemoryJobs) -> OfflineWarnings:
    return OfflineWarnings(
        POLICY,
        world.registry,
        world.states,
        world.warnings,
        world.notifier,
        world.ledger,
        world.workflow,
        jobs,
        lambda: world.now,
    )


def test_an_outage_raises_an_offline_warning_told_once_and_its_recovery_is_told() -> None:
    world, jobs = World(), MemoryJobs()
    warnings = sink(world, jobs)
    since, decided = T0, T0 + 360
    warnings.offline(OfflineTransition(GT1, decided, since))
    warnings.offline(OfflineTransition(GT1, decided, since))  # the run after a failure applies it again

    warning_id = offline_warning_id(GT1, since)
    record = world.warnings.records[warning_id]
    assert (record.risk_type, record.level, record.status) == (OFFLINE, Level.BLUE, WarningStatus.RAISED)
    assert record.enterprise_id == "E-HC-T" and record.raised_at == decided
    assert world.workflow.tracked[0] == warning_id  # its deadlines are followed like any warning's
    assert [n.change.warning_id for n in world.notifier.published] == [warning_id]
    assert {job.job_id for job in jobs.jobs} == {jobs.jobs[0].job_id}  # the same job (the queue dedupes on it)
    assert "设备离线" in jobs.jobs[0].detail

    warnings.online(OfflineTransition(GT1, T0 + 900, T0 + 840, offline_since=since))
    recovered = world.warnings.records[warning_id]
    assert recovered.reading_normal and recovered.status is WarningStatus.RAISED  # people close it
    assert [n.change.kind.value for n in world.notifier.published] == ["raise", "recover"]


def test_a_device_never_raised_recovers_nothing() -> None:
    world, jobs = World(), MemoryJobs()
    sink(world, jobs).online(OfflineTransition(GT1, T0 + 900, T0 + 840, offline_since=T0))
    assert world.warnings.records == {} and world.notifier.published == [] and jobs.jobs == []
