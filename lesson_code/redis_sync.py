"""Keep a replica's in-memory key set in step with the shared key store, and fail closed without it.

The hot path never touches Redis: `ApiKeyMiddleware` looks keys up in the
replica's `KeyRing`, a dict in memory. This module keeps that dict current:

* A daemon thread subscribes to the store's channel. Every change publishes
  on it, and on each message the thread re-reads the whole hash (one
  `HGETALL`, a few hundred microseconds) and hands the records to
  `KeyRing.update_external`. A revocation reaches every replica in the time
  of one publish plus one read: milliseconds.
* Pub/sub is fire-and-forget: a replica that is reconnecting misses messages.
  So the thread also reads the version counter every `check_interval`
  seconds, re-reads the set when it moved, and always re-reads after a
  reconnect. That check doubles as the liveness probe (a frozen Redis that
  keeps its socket open is noticed by the read's timeout).
* Redis unreachable: the replica keeps serving with the last set it read for
  `grace` seconds (counted from the last successful contact), says so once on
  stderr, then fails closed: `KeyStoreGate` answers every protected request
  503 with JSON-RPC code -32014, and the external records are dropped so that
  open streams of those keys end too. When Redis answers again the set is
  re-read, the gate opens and that is said once too; no restart is needed.

A thread, not an asyncio task: it works the same under `serve`, a notebook's
`BackgroundServer` or a test, and stops within a fraction of a second.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Final, Protocol

import redis

from lesson_code import errors
from lesson_code.keys import KeyFileError, KeyRecord
from lesson_code.redis_keys import KeyStoreUnavailable, RedisKeyStore, connect

DEFAULT_GRACE: Final = 30.0
DEFAULT_CHECK_INTERVAL: Final = 2.0
POLL_SLICE: Final = 0.1  # how long one wait for a message lasts: bounds the time stop() takes
RECONNECT_DELAY: Final = 0.5

KEY_STORE_UNAVAILABLE: Final = errors.KEY_STORE_UNAVAILABLE  # -32014
UNAVAILABLE_MESSAGE: Final = "Service unavailable: the key store cannot be reached. Try again shortly."


class ExternalKeySink(Protocol):
    """What the sync needs from a key ring: replace the store's records at once (None: none known)."""

    def update_external(self, records: list[KeyRecord] | None) -> None: ...


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class RedisKeySync:
    """A daemon thread that mirrors the Redis key store into a key ring; see the module docstring.

    `available` says whether the replica may serve: Redis answered within the
    last `grace` seconds. `on_event(kind)` (optional) is told "lost",
    "failing_closed" and "recovered", for the audit log.
    """

    def __init__(
        self,
        store: RedisKeyStore,
        ring: ExternalKeySink,
        *,
        grace: float = DEFAULT_GRACE,
        check_interval: float = DEFAULT_CHECK_INTERVAL,
        name: str = "replica",
        say: Callable[[str], None] = _say,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        if grace < 0 or check_interval <= 0:
            raise ValueError("grace must be >= 0 and check_interval > 0")
        self.store = store
        self.ring = ring
        self.grace = grace
        self.check_interval = check_interval
        self.name = name
        self._say = say
        self._on_event = on_event
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._version = -1
        self._healthy = False
        self._failed_closed = False
        self._lost_reported = False
        self._last_ok = time.monotonic()
        self._bad_problem = ""  # the invalid entry last reported (each problem is said once)
        self.reads = 0  # full re-reads done (tests and the lesson look at it)

    @classmethod
    def from_url(cls, url: str, ring: ExternalKeySink, **options: Any) -> RedisKeySync:
        return cls(RedisKeyStore(url), ring, **options)

    # -- state ---------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """True while the replica may serve from its key set (Redis is up, or lost less than `grace` s ago)."""
        return self._healthy or time.monotonic() - self._last_ok <= self.grace

    @property
    def healthy(self) -> bool:
        return self._healthy

    @property
    def version(self) -> int:
        """The store version the ring holds (-1 before the first read)."""
        return self._version

    # -- life cycle ----------------------------------------------------------------

    def start(self, timeout: float = 5.0) -> RedisKeySync:
        """Read the set once (so the replica starts with it), then follow changes in the background.

        Raises `KeyFileError` if Redis cannot be read at start: a replica that
        never had a key set has nothing to fall back on.
        """
        self.sync_now()
        self._thread = threading.Thread(target=self._run, name=f"redis-key-sync-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> RedisKeySync:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sync_now(self) -> bool:
        """Re-read the whole set and hand it to the ring; True if it was read (raises if Redis is away)."""
        try:
            snapshot = self.store.snapshot()
        except KeyStoreUnavailable:
            raise
        except KeyFileError as exc:  # an invalid entry (a hand edit): keep the last good set, say so once
            self._report_invalid(str(exc))
            self._mark_ok()
            return False
        self.ring.update_external(snapshot.records)
        self._version = snapshot.version
        self.reads += 1
        self._mark_ok()
        return True

    # -- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except (redis.exceptions.RedisError, KeyStoreUnavailable, OSError) as exc:
                self._mark_lost(exc)
            if self._stop.wait(RECONNECT_DELAY):
                return
            self._check_grace()

    def _follow(self) -> None:
        """Subscribe, re-read (messages may have been missed), then wait for changes until an error."""
        client = connect(self.store.url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.store.channel)
            self.sync_now()
            next_check = time.monotonic() + self.check_interval
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=POLL_SLICE)
                if message is not None and message.get("type") == "message":
                    self.sync_now()
                    next_check = time.monotonic() + self.check_interval
                elif time.monotonic() >= next_check:
                    if self.store.version() != self._version:
                        self.sync_now()
                    else:
                        self._mark_ok()
                    next_check = time.monotonic() + self.check_interval
        finally:
            pubsub.close()
            client.close()

    # -- health --------------------------------------------------------------------

    def _mark_ok(self) -> None:
        self._last_ok = time.monotonic()
        if not self._healthy:
            self._healthy = True
            self._failed_closed = False
            if self._lost_reported:
                self._lost_reported = False
                self._say(f"{self.name}: the key store is back; serving with its current key set")
                self._event("recovered")

    def _mark_lost(self, exc: BaseException) -> None:
        if self._healthy:
            self._healthy = False
            self._lost_reported = True
            self._say(
                f"{self.name}: LOST the key store ({exc.__class__.__name__}); serving the last known key set "
                f"for at most {self.grace:g} s, then refusing every request until it is back"
            )
            self._event("lost")
        self._check_grace()

    def _check_grace(self) -> None:
        if self._healthy or self._failed_closed or self.available:
            return
        self._failed_closed = True
        self.ring.update_external(None)
        self._say(f"{self.name}: the key store has been unreachable for over {self.grace:g} s: refusing requests (503)")
        self._event("failing_closed")

    def _report_invalid(self, problem: str) -> None:
        if problem != self._bad_problem:
            self._bad_problem = problem
            self._say(f"{self.name}: {problem}; keeping the last good key set")

    def _event(self, kind: str) -> None:
        if self._on_event is not None:
            self._on_event(kind)


class KeyStoreGate:
    """ASGI middleware: while the key store is unavailable past its grace, refuse with 503 (fail closed).

    It sits outside the key check, so nothing protected is served from a
    stale key set. Public paths (GET /health) still answer, so a load
    balancer and an operator can see the replica is alive.
    """

    def __init__(
        self,
        app: Any,
        sync: RedisKeySync,
        *,
        public_paths: frozenset[str] = frozenset({"/health"}),
    ) -> None:
        self.app = app
        self.sync = sync
        self.public_paths = public_paths
        self.response = errors.prepare_error(503, KEY_STORE_UNAVAILABLE, UNAVAILABLE_MESSAGE, [(b"retry-after", b"5")])

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] == "lifespan"
            or self.sync.available
            or (scope["type"] == "http" and scope["path"] in self.public_paths and scope["method"] in ("GET", "HEAD"))
        ):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})
            return
        await self.response.send(send)
