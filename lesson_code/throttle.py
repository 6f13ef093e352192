"""Throttling of failed authentication attempts, per client address.

Each address may fail `max_failures` times within `window` seconds; after that,
requests from it that do not carry a valid key are answered 429 with
`Retry-After` until its oldest failure in the window ages out.

The policy, and why it is safe (documented in the README's threat model):

* A request with a valid key is always served and never touches the throttle.
  Learners share addresses (a classroom's NAT, a JupyterHub, a proxy): one
  person mistyping a key must not lock everyone else out. Letting a valid key
  through a lockout would matter only if keys could be guessed, and they
  cannot: keys are long and random (256 bits from `secrets`), and the keys
  module refuses to load weak ones, so the one right guess never comes.
* What the throttle is for: a scanner hammering the server with bad keys burns
  CPU and log space. Past the limit it gets a cheap 429, and the audit log
  writes one entry per address per window instead of one per request.
* IPv6 clients are grouped by their /64: one subscriber (or one attacker) gets
  a whole /64, so counting single addresses would not count them at all.
* Memory is bounded: at most `max_clients` addresses are tracked, the least
  recently seen forgotten first, and every stored key is at most
  `MAX_CLIENT_CHARS` characters. An attacker with many addresses can make us
  forget someone's failures early; it can never make us grow without bound.

The methods are async so that a shared store can stand in for the in-process
table: pass a `limits.aio.storage.Storage` (for example Redis) as `storage` and
the counting is done by the `limits` library's moving window there, so several
server processes see the same failures. Without one, a small bounded table in
this process does it (the `limits` memory storage keeps every key seen within
the window, without a cap, so it is not the default).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # `limits` is imported only when a shared storage is given: ~0.1 s less start-up for everyone else
    from limits.aio.storage import Storage

MAX_CLIENT_CHARS: Final = 64
NAMESPACE: Final = "mcp-failed-auth"


def client_key(address: str) -> str:
    """The key failures are counted under: an IPv4 address, an IPv6 /64, or the text cut to 64 characters."""
    if ":" not in address:
        return address[:MAX_CLIENT_CHARS]
    try:
        ip = ipaddress.IPv6Address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return address[:MAX_CLIENT_CHARS]
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


class FailedAttemptThrottle:
    """Sliding-window failure counter per address (or IPv6 /64), bounded in memory or kept in `storage`."""

    def __init__(
        self,
        max_failures: int = 20,
        window: float = 60.0,
        *,
        max_clients: int = 10_000,
        storage: Storage | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or window <= 0 or max_clients < 1:
            raise ValueError("max_failures, window and max_clients must be positive")
        self.max_failures = max_failures
        self.window = window
        self.max_clients = max_clients
        self.storage = storage
        self._clock = clock
        self._lock = threading.Lock()  # the app may be called from more than one thread (tests, notebooks)
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        if storage is not None:
            from limits import RateLimitItemPerSecond
            from limits.aio.strategies import MovingWindowRateLimiter

            self._limiter = MovingWindowRateLimiter(storage)
            self._item = RateLimitItemPerSecond(max_failures, math.ceil(window), namespace=NAMESPACE)

    async def retry_after(self, client: str) -> int:
        """Seconds until `client` may fail again; 0 if it is not throttled."""
        key = client_key(client)
        if self.storage is not None:
            stats = await self._limiter.get_window_stats(self._item, key)
            if stats.remaining > 0:
                return 0
            return max(1, math.ceil(stats.reset_time - time.time()))
        with self._lock:
            times = self._failures.get(key)
            if times is None:
                return 0
            now = self._clock()
            self._expire(times, now)
            if len(times) < self.max_failures:
                return 0
            return max(1, math.ceil(times[0] + self.window - now))

    async def record_failure(self, client: str) -> None:
        """Count one failed attempt by `client`."""
        key = client_key(client)
        if self.storage is not None:
            await self._limiter.hit(self._item, key)
            return
        now = self._clock()
        with self._lock:
            times = self._failures.pop(key, None)
            if times is None:
                times = deque(maxlen=self.max_failures)
                while len(self._failures) >= self.max_clients:
                    self._failures.popitem(last=False)
            self._expire(times, now)
            times.append(now)
            self._failures[key] = times  # most recently seen goes last

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window:
            times.popleft()
