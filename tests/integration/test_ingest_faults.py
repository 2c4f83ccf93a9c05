"""Fault injection through the `ingest` handler: nothing lost, nothing doubled.

One scripted stream (20 devices over all six sectors, 17 report rounds 15 s apart and a closing round 15 min later,
with raises, level-ups, level-downs, recoveries, a fire alarm left unconfirmed, data-quality faults and every kind
of bad message: 377 records) is fed through `app.ingest` as Kinesis batches of 40, on moto. The clean run is the
reference: each scenario must leave the same warnings, warning events (engine log, audit chain, delivery claims),
device and unit states and quarantine rows, and tell the same people the same things (topic publications as the
subscribed queues receive them, and SMS), compared as multisets.

Faults are injected under every adapter, at the botocore layer (`ingest_harness.WriteFaults`): a throttling refusal
before a write call ("not applied"), a read timeout after it ("response lost"), or the container killed after it
("crash"). The event source is played as Lambda plays it: a batch is redelivered from its first reported item
failure on, or whole when the handler raised, with backoff on the platform clock, until it is done. The closing
round comes a full state-flush interval after everything else, so the shard's checkpoint (which carries the states
ahead of their stored item) is written in every run and the final states — as a successor would load them, stored
item or checkpoint copy — compare exactly.

When a scenario differs, the failure lists what is missing, extra, doubled or changed, then plays the scenario
again comparing batch by batch and names the first batch that departs from the clean run, with its attempts.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.catalog import build_policy, sector_models
from chalicelib.domain.levels import Sector
from local.fleet import Fleet as FleetSimulator
from local.fleet import Incident, SimMessage
from local.seed import load_seed
from tests.integration.ingest_harness import (
    A_MONDAY_MORNING,
    Attempt,
    Delivery,
    Fault,
    FaultMode,
    IngestLambda,
    Platform,
    Snapshot,
    StreamRecord,
    WriteCall,
    batches,
    deliver,
    differences,
    onto_the_stream,
    open_platform,
    stream_record,
)

STEP_S = 15.0
STEPS = 17
CLOSING_ROUND_AFTER_S = 900.0  # well over the state flush interval (300 s): the shard's checkpoint is written
BATCH_SIZE = 40
ARRIVAL_LAG_S = 0.25  # device -> IoT Core -> stream
XDIST_SHARDS = 2  # each scenario replays the stream on its own: two units of work, each with its clean run
POLL_LAG_S = 0.75  # stream -> the handler's first delivery
RUNS_PER_FAULT_MODE = 3

DEVICES = (
    # road transport: a vehicle speeding (blue, then yellow), a quiet one
    "RT01-V02",
    "RT03-V01",
    # hazardous chemicals: a gas detector alarming (and its unit), its neighbours in the tank farm, a detector of
    # another enterprise (the bad messages use these)
    "HC04-T2-GT1",
    "HC04-T2-GT2",
    "HC04-T2-O2",
    "HC04-T2-V1",
    "HC06-T1-GT1",
    # fire: an alarm left unconfirmed, then reset; a pressure sensor fault; quiet pressures
    "FR01-B1-FAC",
    "FR01-B1-WP",
    "FR01-B2-WP",
    "FR03-B1-WP",
    # construction: a crane overloaded (red), relieved (yellow), back to normal; quiet ones
    "CS02-TC1",
    "CS04-TC1",
    "CS04-TC2",
    # pipelines: third-party works, pressure 5 % high, quiet ones
    "CP02-S2-FOS",
    "CP02-S2-RTU",
    "OG02-S2-PG",
    "OG02-S2-RTU",
    "OG03-S2-FOS",
    "OG03-S2-RTU",
)
FIRE_ALARM_STEP = 2
BAD_MESSAGES_STEP = 9
INCIDENTS = (
    Incident("RT03-V01", 2, 3, {"speed_kmh": 97.0}, label="blue: within 5 km/h of the limit"),
    Incident("RT03-V01", 5, 3, {"speed_kmh": 105.0}, label="level up to yellow: over the limit"),
    Incident("HC04-T2-GT1", 3, 4, {"gas_lel_pct": 31.0}, label="yellow: level-1 gas"),
    Incident(
        "FR01-B1-FAC",
        FIRE_ALARM_STEP,
        1,
        events=({"code": "fire_alarm", "zone": "3", "point": "D-301"},),
        label="yellow once unconfirmed for 180 s",
    ),
    Incident("FR01-B1-FAC", 15, 1, events=({"code": "reset"},), label="reset: the alarm recovers"),
    Incident("FR01-B2-WP", 6, 1, {"static_pressure_mpa": 5.0}, label="sensor fault: beyond the 0-3 MPa range"),
    Incident("CS04-TC1", 3, 3, {"load_pct": 113.0}, label="red: load >= 110 %"),
    Incident("CS04-TC1", 6, 3, {"load_pct": 95.0}, label="level down to yellow"),
    Incident(
        "CP02-S2-FOS",
        4,
        1,
        events=({"code": "third_party", "kind": "works", "distance_m": 22.0},),
        label="yellow: works within 50 m",
    ),
    Incident("OG02-S2-RTU", 8, 4, {"pressure_mpa": 6.66}, label="blue: pressure 5 % high"),
)


# --- the stream ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptedStream:
    batches: list[list[StreamRecord]]
    first_delivery_at: list[float]  # the platform clock at each batch's first delivery
    sent: dict[str, SimMessage]  # sequence number -> the device message it carries
    closing_batch: int  # the first batch of the closing round

    def delivery_time(self, index: int, now: float, late_by_s: float = 0.0) -> float:
        """When batch `index` is first delivered: on schedule, or right away if retries have delayed the stream;
        the closing round always a full flush interval after whatever came before it."""
        scheduled = self.first_delivery_at[index] + late_by_s
        if index == self.closing_batch:
            return max(scheduled, now + CLOSING_ROUND_AFTER_S)
        return max(scheduled, now)

    def batch_carrying(self, device_id: str, at_step: int, start_s: float) -> int:
        sent_at = start_s + at_step * STEP_S
        for index, batch in enumerate(self.batches):
            for record in batch:
                message = self.sent[record.sequence_number]
                if message.device_id == device_id and sent_at <= message.at < sent_at + STEP_S:
                    return index
        raise LookupError(f"no record of {device_id} at step {at_step}")


def scripted_stream(platform: Platform, start_s: float) -> ScriptedStream:
    seed = platform.world.seed
    wanted = set(DEVICES)
    fleet = FleetSimulator(
        replace(seed, devices=tuple(d for d in seed.devices if d.device_id in wanted)), seed=8, incidents=INCIDENTS
    )
    messages: list[SimMessage] = []
    for step in range(STEPS):
        messages.extend(fleet.step(step, start_s + step * STEP_S, spread_s=STEP_S * 0.9))
        if step == BAD_MESSAGES_STEP:
            messages.extend(fleet.bad_messages(start_s + step * STEP_S + 5.0))
    messages.sort(key=lambda message: message.at)
    closing_at = start_s + (STEPS - 1) * STEP_S + CLOSING_ROUND_AFTER_S
    closing = list(fleet.step(STEPS, closing_at, spread_s=STEP_S * 0.9))
    sent: dict[str, SimMessage] = {}
    cut: list[list[StreamRecord]] = []
    closing_batch = 0
    for part in (messages, closing):  # the closing round in batches of its own, a quarter of an hour later
        closing_batch = len(cut)
        records = onto_the_stream(
            platform, [stream_record(m.topic, m.payload, m.at + ARRIVAL_LAG_S) for m in part]
        )
        sent.update((record.sequence_number, message) for record, message in zip(records, part, strict=True))
        cut.extend(batches(records, BATCH_SIZE))
    return ScriptedStream(cut, [batch[-1].arrival_s + POLL_LAG_S for batch in cut], sent, closing_batch)


# --- playing the stream ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How the event source and the containers misbehave while the stream plays."""

    faults: dict[int, Fault] = field(default_factory=dict)  # batch -> the fault of its first delivery
    deliveries: Callable[[int], int] = lambda batch: 1  # how many times each batch is delivered in full
    restart_after: frozenset[int] = frozenset()  # batches after which the container is dropped
    late_by_s: float = 0.0  # every batch first delivered this much later than it arrived


@dataclass
class Run:
    final: Snapshot
    deliveries: list[Delivery]
    checkpoints: list[Snapshot]

    def writes_of_first_attempts(self) -> list[list[WriteCall]]:
        return [delivery.attempts[0].writes for delivery in self.deliveries]


@dataclass(frozen=True)
class Rig:
    platform: Platform
    stream: ScriptedStream
    start_s: float
    clean: Run

    @property
    def progress_tables(self) -> list[str]:
        """Tables compared batch by batch (device states are coalesced in memory: only the final ones count)."""
        return [t for t in self.platform.world.key_schemas if t != self.platform.settings.table_device_state]


Scenario = Callable[[Platform, ScriptedStream, list[str] | None], Run]


def fresh_world(platform: Platform, stream: ScriptedStream) -> None:
    """Empty tables and outboxes, no container, and the clock back before the stream's first delivery."""
    platform.world.reset()
    platform.clock.set(stream.first_delivery_at[0] - 1.0)


def play(plan: Plan) -> Scenario:
    """Feed the whole stream through a fresh world and a cold container, misbehaving as `plan` says; with
    `checkpoints` (table names), snapshot those tables after each batch."""

    def scenario(platform: Platform, stream: ScriptedStream, checkpoints: list[str] | None) -> Run:
        fresh_world(platform, stream)
        clock = platform.clock
        current = [platform.cold_start()]

        def container() -> IngestLambda:
            return current[0]

        def replace_if_killed(attempt: Attempt) -> None:
            if attempt.killed:
                current[0] = platform.cold_start()

        deliveries: list[Delivery] = []
        taken: list[Snapshot] = []
        for index, batch in enumerate(stream.batches):
            first_at = stream.delivery_time(index, clock.now, plan.late_by_s)
            for repeat in range(plan.deliveries(index)):
                clock.set(max(clock.now, first_at + 2.0 * repeat))
                fault = plan.faults.get(index) if repeat == 0 else None
                deliveries.append(
                    deliver(batch, container, platform.faults, clock, fault, on_attempt=replace_if_killed)
                )
            if index in plan.restart_after:
                current[0] = platform.cold_start()
            if checkpoints is not None:
                taken.append(platform.world.snapshot(checkpoints))
        return Run(platform.world.snapshot(), deliveries, taken)

    return scenario


def two_containers_overlapping(platform: Platform, stream: ScriptedStream, checkpoints: list[str] | None) -> Run:
    """Container A gets the stream's batches; container B gets windows shifted by half a batch, delivered right
    after A's batch: B grades the first half of A's next batch before A does, and A the second half of B's."""
    fresh_world(platform, stream)
    clock = platform.clock
    first, second = platform.cold_start(), platform.cold_start()
    records = [record for batch in stream.batches for record in batch]
    half = BATCH_SIZE // 2
    deliveries: list[Delivery] = []
    taken: list[Snapshot] = []
    for index, batch in enumerate(stream.batches):
        clock.set(stream.delivery_time(index, clock.now))
        deliveries.append(deliver(batch, lambda: first, platform.faults, clock))
        if checkpoints is not None:  # B is half a batch behind A here: together they have done A's prefix
            taken.append(platform.world.snapshot(checkpoints))
        start = sum(len(earlier) for earlier in stream.batches[:index]) + half
        window = records[start : start + BATCH_SIZE]
        if window:
            clock.set(max(clock.now, window[-1].arrival_s + POLL_LAG_S))
            deliveries.append(deliver(window, lambda: second, platform.faults, clock))
    return Run(platform.world.snapshot(), deliveries, taken)


def two_containers_at_once(platform: Platform, stream: ScriptedStream, checkpoints: list[str] | None) -> Run:
    """Two containers get every batch at the same moment, each on its own thread, each retried until done."""
    fresh_world(platform, stream)
    containers = (platform.cold_start(), platform.cold_start())
    deliveries: list[Delivery] = []
    taken: list[Snapshot] = []
    for index, batch in enumerate(stream.batches):
        platform.clock.set(stream.delivery_time(index, platform.clock.now))
        deliveries.extend(_deliver_at_once(platform, batch, containers))
        if checkpoints is not None:
            taken.append(platform.world.snapshot(checkpoints))
    return Run(platform.world.snapshot(), deliveries, taken)


def _deliver_at_once(
    platform: Platform, batch: list[StreamRecord], containers: tuple[IngestLambda, ...]
) -> list[Delivery]:
    start = threading.Barrier(len(containers))
    outcomes: list[Delivery | BaseException] = []

    def run(container: IngestLambda) -> None:
        start.wait()
        try:
            # retries wait in real time, not on the platform clock: a claim the other (live) container holds is
            # settled within milliseconds, and no lease may run out meanwhile
            outcomes.append(
                deliver(
                    batch,
                    lambda: container,
                    platform.faults,
                    platform.clock,
                    retry_delays_s=(0.0,),
                    max_attempts=200,
                    real_pause_s=0.02,
                )
            )
        except BaseException as exc:  # re-raised on the test's thread
            outcomes.append(exc)

    threads = [threading.Thread(target=run, args=(container,)) for container in containers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(outcomes) == len(containers), "a container never finished its batch"
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return [outcome for outcome in outcomes if isinstance(outcome, Delivery)]


def assert_same_as_clean(rig: Rig, scenario: Scenario) -> Run:
    """Play `scenario` and compare its end with the clean run's; on a difference, play it again comparing batch
    by batch, and say what differs and where it first departed."""
    run = scenario(rig.platform, rig.stream, None)
    found = differences(rig.clean.final, run.final)
    if found:
        replay = scenario(rig.platform, rig.stream, rig.progress_tables)
        pytest.fail("\n".join(["differs from the clean run:", *found, "", first_departure(rig, replay)]))
    return run


def first_departure(rig: Rig, replay: Run) -> str:
    for index, (expected, actual) in enumerate(zip(rig.clean.checkpoints, replay.checkpoints, strict=True)):
        found = differences(expected, actual, limit=4)
        if found:
            attempts = [
                f"  {_attempt_text(attempt)}"
                for delivery in replay.deliveries
                if delivery.attempts[0].records and _delivers_batch(rig, delivery, index)
                for attempt in delivery.attempts
            ]
            return "\n".join([f"first departure after batch {index}; its deliveries:", *attempts, *found])
    return "batch by batch the runs agree: only the final device states differ"


def _delivers_batch(rig: Rig, delivery: Delivery, index: int) -> bool:
    return delivery.batch_first == rig.stream.batches[index][0].sequence_number


def _attempt_text(attempt: Attempt) -> str:
    injected = ", ".join(f"{fault.mode} at {call.kind}" for call, fault in attempt.injected)
    if attempt.error is not None:
        outcome = f"raised {attempt.error}"
    elif attempt.failed:
        outcome = f"{len(attempt.failed)} item failure(s)"
    else:
        outcome = "done"
    return f"{attempt.records} record(s), {len(attempt.writes)} write(s), {injected or 'no fault'} -> {outcome}"


# --- which writes to fail --------------------------------------------------------------------------------------


SEND_OPERATIONS = frozenset({"Publish", "PublishBatch", "SendMessage", "SendMessageBatch"})


def is_send(call: WriteCall) -> bool:
    return call.operation in SEND_OPERATIONS


def fault_plans(
    clean: Run, mode: FaultMode, runs: int, allowed: Callable[[WriteCall], bool] = lambda call: True
) -> list[dict[int, Fault]]:
    """`runs` plans failing at most one (`allowed`) write per batch (of its first delivery) that together fail
    every kind of write (operation, table and key family, topic or SMS...) at least once, and where room is left,
    where each kind first and last occurs, each batch's first and last write, and writes spread over each batch."""
    writes = clean.writes_of_first_attempts()
    candidates = [
        [write for write, call in enumerate(calls, start=1) if allowed(call)] for calls in writes
    ]  # per batch, the 1-based positions that may fail
    chosen: dict[int, list[int]] = {batch: [] for batch in range(len(writes))}

    def choose(batch: int, write: int) -> bool:
        if write in chosen[batch] or len(chosen[batch]) >= runs:
            return False
        chosen[batch].append(write)
        return True

    places: dict[str, list[tuple[int, int]]] = {}
    for batch, positions in enumerate(candidates):
        for write in positions:
            places.setdefault(writes[batch][write - 1].kind, []).append((batch, write))
    rarest_first = sorted(places.values(), key=len)
    for found in rarest_first:  # every kind once, where there is room
        _, batch, write = min((len(chosen[b]), b, w) for b, w in found)
        choose(batch, write)
    for found in rarest_first:  # and where it first and last occurs
        for batch, write in (found[0], found[-1]):
            choose(batch, write)
    for batch, positions in enumerate(candidates):
        if positions:
            spread = [positions[(step * len(positions)) // runs] for step in range(runs)]
            for write in (positions[0], positions[-1], *spread):
                choose(batch, write)
    return [
        {batch: Fault(sorted(picked)[run], mode) for batch, picked in chosen.items() if run < len(picked)}
        for run in range(runs)
    ]


def plans_for(clean: Run, mode: FaultMode) -> list[dict[int, Fault]]:
    """A container killed right after a send was carried out cannot know it was: those points have their own
    test (`test_a_container_killed_right_after_a_send_...`); every other write may fail in every mode."""
    if mode is FaultMode.CRASH:
        return fault_plans(clean, mode, RUNS_PER_FAULT_MODE, lambda call: not is_send(call))
    return fault_plans(clean, mode, RUNS_PER_FAULT_MODE)


def covered_kinds(clean: Run, plans: list[dict[int, Fault]]) -> set[str]:
    writes = clean.writes_of_first_attempts()
    return {writes[batch][fault.write - 1].kind for plan in plans for batch, fault in plan.items()}


# --- fixtures --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    start_s = A_MONDAY_MORNING
    with open_platform(start_s) as platform:
        stream = scripted_stream(platform, start_s)
        tables = [t for t in platform.world.key_schemas if t != platform.settings.table_device_state]
        clean = play(Plan())(platform, stream, tables)
        yield Rig(platform, stream, start_s, clean)


def warning_events(snapshot: Snapshot) -> Counter[str]:
    return Counter(str(item.get("type")) for item in snapshot.items("warning-events").values())


# --- the reference -----------------------------------------------------------------------------------------------


def test_the_clean_run_raises_levels_up_down_recovers_tells_people_and_quarantines_every_bad_kind(
    rig: Rig,
) -> None:
    clean = rig.clean.final
    warnings = {(w["device_id"], w["risk_type"], w["peak_level"]) for w in clean.items("warnings").values()}
    events = warning_events(clean)
    reasons = {row["reason"] for row in clean.items("quarantine").values()}

    assert all(
        attempt.error is None and not attempt.failed for d in rig.clean.deliveries for attempt in d.attempts
    )
    assert {
        ("CS04-TC1", "crane_load", "red"),
        ("RT03-V01", "overspeed", "yellow"),
        ("FR01-B1-FAC", "fire_alarm_system", "yellow"),  # the unconfirmed alarm, 180 s after it sounded
        ("FR01-B2-WP", "data_quality", "blue"),
    } <= warnings
    assert {"engine.raise", "engine.level_up", "engine.level_down", "engine.recover"} <= set(events)
    assert {
        "schema",
        "out_of_range",
        "nan_inf",
        "replayed",
        "out_of_order",
        "spoofed",
        "unknown_device",
    } <= reasons
    assert sum(clean.told.values()) > 20
    assert sum(clean.sms.values()) > 40
    assert all(count == 1 for count in clean.sms.values()), "a clean run texts each change to each phone once"


def test_the_same_stream_played_again_leaves_exactly_the_same_tables_and_messages(rig: Rig) -> None:
    """The comparison itself is exact: with nothing going wrong, a second run is indistinguishable."""
    assert_same_as_clean(rig, play(Plan()))


# --- a. redelivery -----------------------------------------------------------------------------------------------


def test_every_batch_delivered_two_or_three_times_has_no_second_effect(rig: Rig) -> None:
    assert_same_as_clean(rig, play(Plan(deliveries=lambda batch: 2 + batch % 2)))


# --- b. a failed write, then Lambda's retries --------------------------------------------------------------------


def test_the_fault_plans_fail_every_kind_of_write_the_stream_makes(rig: Rig) -> None:
    calls = [call for calls in rig.clean.writes_of_first_attempts() for call in calls]
    for mode in FaultMode:
        expected = {call.kind for call in calls if mode is not FaultMode.CRASH or not is_send(call)}
        assert covered_kinds(rig.clean, plans_for(rig.clean, mode)) == expected, mode


@pytest.mark.parametrize("run", range(RUNS_PER_FAULT_MODE))
@pytest.mark.parametrize("mode", list(FaultMode))
def test_a_write_failing_in_every_batch_then_retried_leaves_what_a_clean_run_leaves(
    rig: Rig, mode: FaultMode, run: int
) -> None:
    """Each batch's first delivery fails one of its writes ("not applied": refused before the call; "response
    lost": carried out, then a read timeout; "crash": carried out, then the container dies and the retry gets a
    new one); the handler hands the batch back (item failures or an exception) and Lambda redelivers until done."""
    plan = plans_for(rig.clean, mode)[run]

    done = assert_same_as_clean(rig, play(Plan(faults=plan)))

    injected = [
        fault for delivery in done.deliveries for attempt in delivery.attempts for _, fault in attempt.injected
    ]
    assert len(injected) == len(plan), "every planned fault was met"


def test_a_container_killed_right_after_a_send_repeats_that_send_at_most_once_under_the_same_dedupe_key(
    rig: Rig,
) -> None:
    """The one point where exactly-once cannot hold: the container dies after SNS took a message and before the
    outcome was recorded, so its successor cannot tell "sent" from "about to send". Resending (after the dead
    holder's claim lapses) is the only way not to lose the telling; the copy must be the same message with the same
    dedupe key (topic subscribers drop it), at most once. Tables still end exactly as in the clean run."""
    plan = fault_plans(rig.clean, FaultMode.CRASH, 1, is_send)[0]

    run = play(Plan(faults=plan))(rig.platform, rig.stream, None)

    tables_only = Snapshot(run.final.tables, rig.clean.final.told, rig.clean.final.sms)
    assert "\n".join(differences(rig.clean.final, tables_only)) == ""
    for channel, clean, seen in (
        ("told", rig.clean.final.told, run.final.told),
        ("sms", rig.clean.final.sms, run.final.sms),
    ):
        assert set(seen) == set(clean), f"{channel}: the same messages, no other"
        assert all(seen[text] <= clean[text] + 1 for text in seen), f"{channel}: at most one extra copy of each"
    repeated = [text for text in run.final.told if run.final.told[text] > rig.clean.final.told[text]]
    assert all('"dedupe_key"' in text for text in repeated), "a repeated publication carries its dedupe key"
    assert sum((run.final.sms - rig.clean.final.sms).values()) <= len(plan)


# --- c. racing containers ----------------------------------------------------------------------------------------


def test_two_containers_on_overlapping_batches_tell_everyone_once(rig: Rig) -> None:
    assert_same_as_clean(rig, two_containers_overlapping)


def test_two_containers_on_the_same_batches_at_the_same_moment_tell_everyone_once(rig: Rig) -> None:
    assert_same_as_clean(rig, two_containers_at_once)


# --- d. restarts -------------------------------------------------------------------------------------------------


def test_a_restart_right_after_a_fire_alarm_still_raises_the_unconfirmed_alarm_later(rig: Rig) -> None:
    """The controller's alarm lives in the fire model's memory (not a warning yet): a container dropped within the
    state-coalescing window must not forget it (DOMAIN §2.3: unconfirmed after 180 s is yellow)."""
    alarm_batch = rig.stream.batch_carrying("FR01-B1-FAC", FIRE_ALARM_STEP, rig.start_s)

    assert_same_as_clean(rig, play(Plan(restart_after=frozenset({alarm_batch}))))


def test_a_restart_after_every_other_batch_records_and_tells_what_a_clean_run_does(rig: Rig) -> None:
    """A container dropped without warning loses what only its cache held: the watermarks and rolling sums
    coalesced since the state's last write. The next container reads the shard back from before its first batch
    and regrades what the stored states lack (docs/decisions.md "What a container restart loses"), so every table
    (device states included), publication and SMS equals the clean run's."""
    batches_count = len(rig.stream.batches)

    assert_same_as_clean(rig, play(Plan(restart_after=frozenset(range(0, batches_count, 2)))))


def test_a_restart_whose_successor_cannot_read_the_shard_back_still_tells_people_once(rig: Rig) -> None:
    """Without the read-back (the stream unreadable: a fault the handler logs and counts) a restart loses only the
    coalesced watermarks and rolling sums: everything people see and every record of a warning still equals the
    clean run's, the device states agree on their risks and durable memory, and the only rows allowed to be
    missing are `replayed` rows of device replays whose original was inside the coalescing window."""
    batches_count = len(rig.stream.batches)
    with unreadable_stream():
        run = play(Plan(restart_after=frozenset(range(0, batches_count, 2))))(rig.platform, rig.stream, None)
    clean = rig.clean.final

    assert (run.final.told, run.final.sms) == (clean.told, clean.sms)
    for table in clean.tables:
        if table in ("device-state", "quarantine"):
            continue
        assert differences(_only(clean, table), _only(run.final, table)) == [], table
    missing = {
        key: row for key, row in clean.items("quarantine").items() if key not in run.final.items("quarantine")
    }
    assert all(row["reason"] == "replayed" for row in missing.values()), missing
    assert {k: v for k, v in run.final.items("quarantine").items() if k not in missing} == {
        k: v for k, v in clean.items("quarantine").items() if k not in missing
    }
    for device, item in clean.items("device-state").items():
        restarted = run.final.items("device-state")[device]
        assert _graded_memory(device, item) == _graded_memory(device, restarted), device


@contextmanager
def unreadable_stream() -> Iterator[None]:
    """Every read-back of the stream fails as a bug would (not a transient fault: that would retry the batch)."""
    from chalicelib.adapters import stream_log

    def broken(*_: Any, **__: Any) -> Iterator[Any]:
        raise RuntimeError("the stream cannot be read back")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stream_log.KinesisStreamLog, "read", broken)
        yield


MODELS = sector_models(build_policy({}))
_SEED = load_seed()


def _only(snapshot: Snapshot, table: str) -> Snapshot:
    return Snapshot({table: snapshot.items(table)}, Counter(), Counter())


def _graded_memory(device: str, item: dict[str, Any]) -> tuple[Any, Any]:
    """What a restart must not lose: the risks (active warnings, pending breaches) and the durable model memory."""
    state = item["state"] if isinstance(item["state"], dict) else json.loads(item["state"])
    sector = Sector(_SEED.by_device[device].sector)
    # road transport's `r` (how long the last short stop lasted) is measured between report times, which a restart
    # moves by the coalesced gap (counted as driving or rest, capped, as docs/decisions.md says)
    durable = [key for key in MODELS[sector].durable_memory if (sector, key) != (Sector.ROAD_TRANSPORT, "r")]
    scratch = state.get("s", {})
    return state.get("r", {}), {key: scratch[key] for key in durable if key in scratch}


# --- e. a data-quality finding whose state write fails ------------------------------------------------------


@pytest.mark.parametrize("mode", [FaultMode.NOT_APPLIED, FaultMode.RESPONSE_LOST])
def test_a_sensor_fault_whose_state_write_fails_and_is_retried_seconds_later_warns_and_texts_once(
    rig: Rig, mode: FaultMode
) -> None:
    """A water-pressure sensor reads 5 MPa (beyond its 0-3 MPa range): a blue data-quality finding for the
    enterprise. The device's state write fails; Lambda retries 5 s later, when the platform clock has moved on."""
    platform = rig.platform
    device = "FR06-B1-WP"
    registration = platform.world.seed.by_device[device]
    contacts = sorted(c.phone for c in platform.world.seed.enterprise(registration.enterprise_id).contacts)
    at = rig.start_s + 60.0
    topic, normal = device_reading(platform, device, at, seq=1, static_pressure_mpa=0.32)
    _, faulty = device_reading(platform, device, at + 10.0, seq=2, static_pressure_mpa=5.0)
    batch = [
        stream_record(topic, normal, at + ARRIVAL_LAG_S),
        stream_record(topic, faulty, at + 10.0 + ARRIVAL_LAG_S),
    ]
    platform.world.reset()
    container = platform.cold_start()
    platform.clock.set(at + 11.0)

    delivery = deliver(
        batch,
        lambda: container,
        platform.faults,
        platform.clock,
        Fault(1, mode, "device-state"),
        retry_delays_s=(5.0,),
    )

    seen = platform.world.snapshot()
    warnings = [w for w in seen.items("warnings").values() if w["device_id"] == device]
    told = [text for text in seen.told.elements() if device in text]
    texted = sorted(text.split(" ", 1)[0] for text in seen.sms.elements())
    assert [injected.mode for attempt in delivery.attempts for _, injected in attempt.injected] == [mode]
    assert delivery.retries >= 1, "the handler handed the batch back after the failed write"
    assert [(w["risk_type"], w["level"]) for w in warnings] == [("data_quality", "blue")]
    assert [text.split(" ", 1)[0] for text in told] == ["EnterpriseQueue"]
    assert texted == contacts, "one SMS per enterprise contact"


def device_reading(platform: Platform, device_id: str, at: float, seq: int, **metrics: float) -> tuple[str, bytes]:
    registration = platform.world.seed.by_device[device_id]
    body = {
        "device_id": device_id,
        "enterprise_id": registration.enterprise_id,
        "sector": registration.sector.value,
        "ts": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
        "seq": seq,
        "metrics": metrics,
    }
    topic = f"dyj/{registration.sector.value}/{registration.enterprise_id}/{device_id}/telemetry"
    return topic, json.dumps(body).encode()


# --- f. a late stream --------------------------------------------------------------------------------------------


def test_a_stream_delivered_an_hour_late_grades_as_on_time(rig: Rig) -> None:
    """Device clocks are judged against the records' arrival in the stream, not the processing clock: a batch held
    back (by retries or a backlog) neither turns good readings into clock faults nor lets bad clocks through."""
    assert_same_as_clean(rig, play(Plan(late_by_s=3600.0)))
