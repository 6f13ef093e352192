"""Throttling of failed authentication attempts, per client address.

Each address may fail `max_failures` times within `window` seconds; after
that it is locked out until its oldest failure in the window ages out, and is
answered 429 with `Retry-After`.

Deliberate choices (documented in the README's threat model):

* A locked-out address is locked out for *valid* keys too. Otherwise the
  lockout would not slow a guesser at all: the one right guess would still be
  let through. The cost is that a client sharing an address (NAT, proxy) with
  an attacker waits out the window. With 256-bit keys guessing is hopeless
  anyway; the throttle mainly stops scanners from burning CPU and log space.
* Memory is bounded: at most `max_clients` addresses are tracked, the least
  recently seen forgotten first. An attacker with many addresses can make us
  forget someone's failures early; it can never make us grow without bound.
* Successful requests do not reset the count, so interleaving a valid key does
  not buy extra guesses.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class FailedAttemptThrottle:
    """Sliding-window failure counter per address, bounded in memory."""

    def __init__(
        self,
        max_failures: int = 20,
        window: float = 60.0,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or window <= 0 or max_clients < 1:
            raise ValueError("max_failures, window and max_clients must be positive")
        self.max_failures = max_failures
        self.window = window
        self.max_clients = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> int:
        """Seconds until `client` may try again; 0 if it is not locked out."""
        with self._lock:
            times = self._failures.get(client)
            if times is None:
                return 0
            self._expire(times, self._clock())
            if len(times) < self.max_failures:
                return 0
            return max(1, math.ceil(times[0] + self.window - self._clock()))

    def record_failure(self, client: str) -> None:
        """Count one failed attempt by `client`."""
        now = self._clock()
        with self._lock:
            times = self._failures.pop(client, None)
            if times is None:
                times = deque(maxlen=self.max_failures)
                while len(self._failures) >= self.max_clients:
                    self._failures.popitem(last=False)
            self._expire(times, now)
            times.append(now)
            self._failures[client] = times  # most recently seen goes last

    def tracked_clients(self) -> int:
        return len(self._failures)

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window:
            times.popleft()
