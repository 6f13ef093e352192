"""The failed-attempt throttle's counts in Redis, shared by every replica.

A scanner behind a load balancer spreads its guesses over the replicas; with a
table per process each replica sees a third of them and the limit triples. The
`limits` library's moving window on Redis keeps one count per address for the
whole cluster, and `FailedAttemptThrottle(storage=...)` uses it.

`limits` talks to Redis through `coredis` unless told otherwise; we use the
`redis` package's asyncio client (`implementation="redispy"`), the client the
rest of the course uses.

What happens when Redis is away: the throttle only ever acts on requests that
are refused anyway (no valid key), so failing *open* for the count is safe: a
bad key is still refused with 401, it just is not counted. That is better
than answering 500 or hanging a refused request on a dead Redis. The storage
below does that, says so once on stderr, and skips Redis for a second after a
failure so a flood does not wait on timeouts one request at a time. (When the
key store itself is lost past its grace the replica refuses everything with
503 anyway; see `lesson_code.redis_sync`.)
"""

from __future__ import annotations

import sys
import time
from typing import Final

from limits.aio.storage import RedisStorage

SOCKET_TIMEOUT: Final = 0.5  # seconds: a refused request never waits longer than this on Redis
PAUSE_AFTER_ERROR: Final = 1.0
KEY_PREFIX: Final = "mcp:limits"


class ResilientRedisStorage(RedisStorage):
    """`limits`' async Redis storage (redis-py client) whose moving-window calls fail open, loudly once."""

    def __init__(self, url: str, *, key_prefix: str = KEY_PREFIX, timeout: float = SOCKET_TIMEOUT) -> None:
        uri = url if url.startswith("async+") else "async+" + url
        super().__init__(
            uri,
            wrap_exceptions=False,
            implementation="redispy",
            key_prefix=key_prefix,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self._skip_until = 0.0
        self._failing = False
        self.errors = 0  # calls that failed open (tests look at it)

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if self._skipping():
            return True
        try:
            result = await super().acquire_entry(key, limit, expiry, amount)
        except Exception as exc:  # any storage failure: count nothing, refuse nothing extra
            self._failed(exc)
            return True
        self._recovered()
        return result

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        if self._skipping():
            return (time.time(), 0)
        try:
            result = await super().get_moving_window(key, limit, expiry)
        except Exception as exc:
            self._failed(exc)
            return (time.time(), 0)
        self._recovered()
        return result

    def _skipping(self) -> bool:
        return time.monotonic() < self._skip_until

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        self._skip_until = time.monotonic() + PAUSE_AFTER_ERROR
        if not self._failing:
            self._failing = True
            print(
                f"warning: the shared throttle cannot reach Redis ({exc.__class__.__name__}): failed attempts "
                "are not counted until it is back (bad keys are still refused)",
                file=sys.stderr,
                flush=True,
            )

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            print("the shared throttle reaches Redis again: counting failed attempts", file=sys.stderr, flush=True)


def redis_throttle_storage(url: str) -> ResilientRedisStorage:
    """The storage to pass as `FailedAttemptThrottle(storage=...)`; build one per event loop (per replica)."""
    return ResilientRedisStorage(url)
