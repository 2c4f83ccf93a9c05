"""The fakes' own knobs (`services/fakes.py`): a refused call takes no effect, a lost response does, faults are met
in order and counted; and the contract points the use-case tests lean on."""

from __future__ import annotations

from typing import cast

import pytest

from chalicelib.domain.state import DeviceState
from chalicelib.services.fakes import (
    FakeDeliveryLedger,
    FakeNotifier,
    FakeStates,
    FaultMode,
    TransientError,
    is_transient,
)
from chalicelib.services.ports import (
    ClaimOutcome,
    ConcurrentUpdateError,
    DeliveryKey,
    DeliveryNotSentError,
    DeliveryOutcome,
    Notification,
)

KEY = DeliveryKey("W1", 10, "sms", "+8613900000001")


def test_a_refused_call_takes_no_effect_and_a_lost_response_does() -> None:
    states = FakeStates()
    states.fail("save_device")
    states.lose_response("save_device")

    with pytest.raises(TransientError):
        states.save_device(DeviceState("D1"), last_seen=1.0)
    assert states.devices == {}
    with pytest.raises(TransientError):
        states.save_device(DeviceState("D1"), last_seen=1.0)
    assert states.devices["D1"][1] == 1
    assert [fault.mode for fault in states.injected] == [FaultMode.NOT_APPLIED, FaultMode.RESPONSE_LOST]
    assert states.calls["save_device"] == 2 and is_transient(states.injected[0].error)


def test_a_lost_response_leaves_the_states_own_version_behind_so_its_next_save_loses_the_race() -> None:
    states = FakeStates()
    state = DeviceState("D1")
    states.lose_response("save_device")

    with pytest.raises(TransientError):
        states.save_device(state, last_seen=1.0)

    assert state.version == 0
    with pytest.raises(ConcurrentUpdateError):
        states.save_device(state, last_seen=2.0)


def test_a_notifiers_refusal_is_not_published_and_says_so() -> None:
    notifier = FakeNotifier()
    notifier.fail("publish")

    with pytest.raises(DeliveryNotSentError):
        notifier.publish(cast(Notification, object()))

    assert notifier.published == []


def test_a_fault_for_an_operation_the_fake_does_not_have_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="no operation 'save'"):
        FakeStates().fail("save")


def test_the_ledger_takes_a_free_a_failed_or_a_lapsed_claim_and_never_a_done_one() -> None:
    ledger = FakeDeliveryLedger()

    assert ledger.claim(KEY, "a", now=0.0, lease_s=120) is ClaimOutcome.MINE
    assert ledger.claim(KEY, "a", now=1.0, lease_s=120) is ClaimOutcome.MINE  # its owner again
    assert ledger.claim(KEY, "b", now=2.0, lease_s=120) is ClaimOutcome.BUSY
    assert ledger.claim(KEY, "b", now=122.0, lease_s=120) is ClaimOutcome.MINE  # a's lease ran out
    ledger.settle(KEY, "a", DeliveryOutcome.SENT, now=123.0)  # a lost it: its outcome does not count
    assert ledger.items[KEY].status == "claimed"
    ledger.settle(KEY, "b", DeliveryOutcome.FAILED, now=124.0)
    assert ledger.claim(KEY, "c", now=125.0, lease_s=120) is ClaimOutcome.MINE  # failed: anyone sends again
    ledger.settle(KEY, "c", DeliveryOutcome.UNKNOWN, now=126.0)
    assert ledger.claim(KEY, "c", now=127.0, lease_s=120) is ClaimOutcome.DONE
