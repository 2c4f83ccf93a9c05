"""The online-time ledger (DOMAIN.md §6, docs/offline-watch.md): outages recorded per device and local day when
they end (one write per day touched), read as the evaluation's `DeviceDay`s: a device with nothing recorded was
online, a device offline now counts until now, a declaration's effective window is left out of the expected time
(a rejected one excuses nothing), and the evaluation's 在线率 formula reads them as the design says."""

from __future__ import annotations

from chalicelib.domain.clock import local_day_number
from chalicelib.domain.declarations import DeclarationReason, DeclarationStatus
from chalicelib.domain.evaluation.indicators import online
from chalicelib.domain.evaluation.periods import month
from chalicelib.domain.presence import by_local_day, local_day_start
from chalicelib.services.online_ledger import OnlineLedger
from chalicelib.services.ports import DeviceScope, Fleet, FleetDevice, OfflineRecord
from chalicelib.services.presence_fakes import FakeDeviceDirectory, FakeOfflineState, FakeOutageLedger
from tests.unit.test_ingest_service import ENTERPRISE, GT1, GT2, registration
from tests.unit.test_offline_suppression import declaration

PERIOD = month(2026, 11)
DAY0 = local_day_number(PERIOD.start)  # 2026-11-01
NOW = local_day_start(DAY0 + 3)  # the 4th, local midnight: three full days


def ledger(*declarations: object) -> tuple[OnlineLedger, FakeOutageLedger, FakeOfflineState]:
    store, offline = FakeOutageLedger(), FakeOfflineState()
    directory = FakeDeviceDirectory([ENTERPRISE], [registration(GT1, "U1"), registration(GT2, "U2")])
    found = list(declarations)
    service = OnlineLedger(store, directory, directory, offline, lambda _e: found, lambda: NOW)  # type: ignore[arg-type]
    return service, store, offline


def test_an_outage_is_cut_at_local_midnight() -> None:
    midnight = local_day_start(DAY0 + 1)
    assert by_local_day(midnight - 600, midnight + 60) == [
        (DAY0, midnight - 600, midnight),
        (DAY0 + 1, midnight, midnight + 60),
    ]


def test_recorded_outages_are_undeclared_and_a_quiet_device_was_online() -> None:
    service, store, _ = ledger()
    start = local_day_start(DAY0 + 1) - 1800  # half an hour before midnight, for an hour
    service.closed(GT1, start, start + 3600)
    assert store.writes == 2  # one per day touched, nothing per message
    days = {(d.device_id, d.day.day): d for d in service.days(DeviceScope(enterprise_ids=("E-HC-T",)), PERIOD)}
    assert len(days) == 6  # two devices × three days so far
    assert days[(GT1, 1)].undeclared_outage_s == 1800 and days[(GT1, 2)].undeclared_outage_s == 1800
    assert days[(GT1, 1)].online_s == 86400 - 1800 and days[(GT2, 1)].online_s == 86400
    rate, undeclared = online(days.values())
    assert undeclared == 3600
    assert abs(rate.numerator / rate.denominator - (6 * 86400 - 3600) / (6 * 86400)) < 1e-12


def test_an_excused_window_leaves_the_expected_time_and_a_rejected_one_excuses_nothing() -> None:
    start = local_day_start(DAY0) + 3600
    approved = declaration(GT1, DeclarationReason.PLANNED_STOP, start, start + 7200, DeclarationStatus.APPROVED)
    service, _, _ = ledger(approved)
    service.closed(GT1, start, start + 3 * 3600)  # offline 3 h, 2 h of them declared
    [day] = [
        d for d in service.days(DeviceScope(sector="hazchem"), PERIOD) if d.device_id == GT1 and d.day.day == 1
    ]
    assert (day.expected_s, day.declared_outage_s, day.undeclared_outage_s) == (86400, 7200, 3600)
    assert day.online_s == 86400 - 7200 - 3600

    rejected = approved.model_copy(update={"status": DeclarationStatus.REJECTED})
    service, _, _ = ledger(rejected)
    service.closed(GT1, start, start + 3 * 3600)
    [day] = [d for d in service.days(DeviceScope(area="TEDA"), PERIOD) if d.device_id == GT1 and d.day.day == 1]
    assert (day.declared_outage_s, day.undeclared_outage_s) == (0, 3 * 3600)


def test_a_device_offline_now_counts_until_now_and_other_scopes_see_nothing() -> None:
    service, _, offline = ledger()
    offline.mark_offline(OfflineRecord(GT2, NOW - 7200))
    days = service.days(DeviceScope(enterprise_ids=("E-HC-T",)), PERIOD)
    assert sum(d.undeclared_outage_s for d in days if d.device_id == GT2) == 7200
    assert service.days(DeviceScope(sector="fire"), PERIOD) == []
    assert service.days(DeviceScope(area="ELSEWHERE"), PERIOD) == []


def test_an_evaluation_run_reads_the_same_online_rate_with_a_quiet_stretch_as_one_row() -> None:
    start = local_day_start(DAY0 + 1) + 3600
    approved = declaration(GT1, DeclarationReason.PLANNED_STOP, start, start + 7200, DeclarationStatus.APPROVED)
    service, store, offline = ledger(approved)
    service.closed(GT1, start, start + 3 * 3600)
    offline.mark_offline(OfflineRecord(GT2, NOW - 7200))
    fleet = Fleet(
        profiles=(),
        devices={
            "E-HC-T": [
                FleetDevice(reg.device_id, reg.enterprise_id, reg.sector, reg.area_codes)
                for reg in (registration(GT1, "U1"), registration(GT2, "U2"))
            ]
        },
        declarations=[approved],  # a run reads them with the fleet (the registry's scan), not per enterprise
    )
    compact = list(service.device_days(PERIOD, fleet, NOW))
    # whatever the fleet's size: one read of the devices offline now and one query per day of the ledger
    assert (offline.reads["all_offline"], offline.reads["offline_keys"]) == (1, 0)
    assert store.queries == 3  # the 1st to the 3rd: the days up to now
    daily = service.days(DeviceScope(enterprise_ids=("E-HC-T",)), PERIOD)

    assert online(compact) == online(daily)
    # GT1: day 1 quiet, day 2 outage and window, day 3 quiet; GT2: days 1-2 quiet, day 3 offline now
    assert [(d.device_id, d.day.day, d.days) for d in compact] == [
        (GT1, 1, 1),
        (GT1, 2, 1),
        (GT1, 3, 1),
        (GT2, 1, 2),
        (GT2, 3, 1),
    ]
    assert list(service.device_days(PERIOD, fleet, PERIOD.start)) == []
