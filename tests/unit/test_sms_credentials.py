"""The access key cache: read at first use, again after its TTL or when the provider refused the key; a failed
refresh keeps the key read before. Readers and clock are fakes here (the stores themselves: integration)."""

from __future__ import annotations

import json

import pytest

from chalicelib.adapters.channels.credentials import (
    AccessKey,
    AccessKeyUnavailableError,
    CachedAccessKey,
    access_key_source,
)

FIRST = json.dumps({"access_key_id": "LTAI-1", "access_key_secret": "s1"})
SECOND = json.dumps({"access_key_id": "LTAI-2", "access_key_secret": "s2"})


class Store:
    def __init__(self, *values: str | Exception) -> None:
        self.values = list(values)
        self.reads = 0

    def read(self) -> str:
        self.reads += 1
        value = self.values[min(self.reads, len(self.values)) - 1]
        if isinstance(value, Exception):
            raise value
        return value


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(store: Store, clock: Clock, ttl_s: float = 300.0) -> CachedAccessKey:
    return CachedAccessKey(store.read, "secret:sms", ttl_s=ttl_s, retry_s=30.0, clock=clock)


def test_the_key_is_read_once_per_ttl() -> None:
    store, clock = Store(FIRST, SECOND), Clock()
    keys = cache(store, clock)

    assert keys.get() == AccessKey("LTAI-1", "s1")
    clock.now += 299
    assert keys.get().access_key_id == "LTAI-1"
    assert store.reads == 1

    clock.now += 2
    assert keys.get().access_key_id == "LTAI-2"  # a rotated key is picked up after the TTL
    assert store.reads == 2


def test_an_invalidated_key_is_read_again_at_once() -> None:
    store, clock = Store(FIRST, SECOND), Clock()
    keys = cache(store, clock)
    keys.get()

    keys.invalidate()

    assert keys.get().access_key_id == "LTAI-2"


def test_a_failed_refresh_keeps_the_key_read_before_for_a_while() -> None:
    store, clock = Store(FIRST, RuntimeError("throttled"), SECOND), Clock()
    keys = cache(store, clock)
    keys.get()
    clock.now += 301

    assert keys.get().access_key_id == "LTAI-1"
    clock.now += 29
    assert keys.get().access_key_id == "LTAI-1"
    assert store.reads == 2
    clock.now += 2
    assert keys.get().access_key_id == "LTAI-2"


def test_with_no_key_read_yet_a_failure_is_access_key_unavailable() -> None:
    keys = cache(Store(RuntimeError("AccessDeniedException")), Clock())

    with pytest.raises(AccessKeyUnavailableError, match="secret:sms: RuntimeError"):
        keys.get()


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "[]",
        json.dumps({"access_key_id": "LTAI-1"}),
        json.dumps({"access_key_id": "", "access_key_secret": "s"}),
    ],
)
def test_a_value_of_the_wrong_shape_is_access_key_unavailable_and_never_shows_the_value(value: str) -> None:
    keys = cache(Store(value), Clock())

    with pytest.raises(AccessKeyUnavailableError) as caught:
        keys.get()

    assert value not in str(caught.value) or value == "[]"


def test_the_secret_never_shows_in_a_repr() -> None:
    assert "s1" not in repr(AccessKey("LTAI-1", "s1"))


def test_the_source_is_a_secret_or_a_parameter_not_both() -> None:
    with pytest.raises(ValueError):
        access_key_source(lambda service: None)
    with pytest.raises(ValueError):
        access_key_source(lambda service: None, secret_id="s", parameter_name="p")
