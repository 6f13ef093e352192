"""The failed-attempt throttle: sliding window, per address (IPv6 per /64), bounded memory, pluggable storage."""

from __future__ import annotations

import tracemalloc

import pytest
from limits.aio.storage import MemoryStorage

from lesson_code.throttle import MAX_CLIENT_CHARS, FailedAttemptThrottle, client_key

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_locks_out_after_max_failures_then_recovers():
    clock = FakeClock()
    throttle = FailedAttemptThrottle(3, 10.0, clock=clock)
    for _ in range(2):
        await throttle.record_failure("1.2.3.4")
    assert await throttle.retry_after("1.2.3.4") == 0
    await throttle.record_failure("1.2.3.4")
    assert await throttle.retry_after("1.2.3.4") == 10
    clock.now += 4.2
    assert await throttle.retry_after("1.2.3.4") == 6
    clock.now += 6
    assert await throttle.retry_after("1.2.3.4") == 0


async def test_other_addresses_are_not_affected():
    throttle = FailedAttemptThrottle(1, 60.0)
    await throttle.record_failure("10.0.0.1")
    assert await throttle.retry_after("10.0.0.1") > 0
    assert await throttle.retry_after("10.0.0.2") == 0


async def test_ipv6_clients_are_counted_per_64():
    throttle = FailedAttemptThrottle(2, 60.0)
    await throttle.record_failure("2001:db8:1:2::1")
    await throttle.record_failure("2001:db8:1:2:ffff:ffff:ffff:ffff")  # another address, the same /64
    assert await throttle.retry_after("2001:db8:1:2:abcd::9") > 0
    assert await throttle.retry_after("2001:db8:1:3::1") == 0  # the next /64 is someone else
    assert client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_key("::ffff:10.0.0.1") == "10.0.0.1"  # IPv4-mapped: the IPv4 address
    assert client_key("10.0.0.1") == "10.0.0.1"


def test_stored_client_strings_are_capped():
    assert len(client_key("x" * 10_000)) == MAX_CLIENT_CHARS
    assert len(client_key("a:" * 5_000)) == MAX_CLIENT_CHARS  # not an IPv6 address, still capped


async def test_memory_stays_bounded_under_100_000_addresses():
    throttle = FailedAttemptThrottle(5, 60.0, max_clients=1_000)
    await throttle.record_failure("warm-up")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(100_000):
            await throttle.record_failure(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}-" + "p" * 200)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(throttle._failures) == 1_000
    assert grown < 2_000 * 1_000  # about 1 KB per tracked address (a deque of timestamps), whatever the number seen


async def test_each_address_keeps_at_most_max_failures_timestamps():
    throttle = FailedAttemptThrottle(3, 60.0)
    for _ in range(1000):
        await throttle.record_failure("a")
    assert len(throttle._failures["a"]) == 3


async def test_a_limits_storage_does_the_counting_when_given():
    storage = MemoryStorage()
    throttle = FailedAttemptThrottle(3, 10.0, storage=storage)
    for _ in range(2):
        await throttle.record_failure("2001:db8::1")
    assert await throttle.retry_after("2001:db8::2") == 0
    await throttle.record_failure("2001:db8::3")
    assert 0 < await throttle.retry_after("2001:db8::4") <= 10  # one /64, counted in the storage
    assert await throttle.retry_after("10.0.0.1") == 0
    assert throttle._failures == {}  # nothing kept in this process
    second = FailedAttemptThrottle(3, 10.0, storage=storage)  # another server process sharing the store
    assert await second.retry_after("2001:db8::5") > 0


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError):
        FailedAttemptThrottle(0, 60)
