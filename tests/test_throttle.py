"""The failed-attempt throttle: sliding window, per address, bounded memory."""

from __future__ import annotations

import pytest

from lesson_code.throttle import FailedAttemptThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_locks_out_after_max_failures_then_recovers():
    clock = FakeClock()
    throttle = FailedAttemptThrottle(3, 10.0, clock=clock)
    for _ in range(2):
        throttle.record_failure("1.2.3.4")
    assert throttle.retry_after("1.2.3.4") == 0
    throttle.record_failure("1.2.3.4")
    assert throttle.retry_after("1.2.3.4") == 10
    clock.now += 4.2
    assert throttle.retry_after("1.2.3.4") == 6
    clock.now += 6
    assert throttle.retry_after("1.2.3.4") == 0


def test_other_addresses_are_not_affected():
    throttle = FailedAttemptThrottle(1, 60.0)
    throttle.record_failure("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") > 0
    assert throttle.retry_after("10.0.0.2") == 0


def test_memory_stays_bounded_under_many_addresses():
    throttle = FailedAttemptThrottle(5, 60.0, max_clients=100)
    for i in range(10_000):
        throttle.record_failure(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert throttle.tracked_clients() == 100


def test_each_address_keeps_at_most_max_failures_timestamps():
    throttle = FailedAttemptThrottle(3, 60.0)
    for _ in range(1000):
        throttle.record_failure("a")
    assert len(throttle._failures["a"]) == 3


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError):
        FailedAttemptThrottle(0, 60)
