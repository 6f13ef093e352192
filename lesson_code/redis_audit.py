"""The audit log of a cluster: every replica names itself, and may copy its entries to a Redis stream.

Behind a load balancer one client's requests land on several replicas, each
with its own audit file. Two things make that readable again:

* `ReplicaAuditLog` adds `replica` (the `serve --replica-name`) to every entry,
  so an entry says which process decided.
* Optionally it also appends every entry to one Redis stream (`XADD` with
  `MAXLEN ~`, so the stream stays bounded: the oldest entries go first).
  `read_audit_stream` (and `python -m lesson_code audit --redis URL`) reads the
  whole cluster's log back in time order.

The stream is written by a daemon thread in batches (one pipelined round trip
every `flush_interval`), never on the request's path. If Redis is away, entries
wait in a bounded buffer and are retried; past `max_pending` the oldest are
dropped and counted, and the file log (the source of truth on each machine)
still has them. A stream entry holds one field, `entry`: the same JSON object
as the file's line.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any, Final

import redis

from lesson_code.audit import AuditLog
from lesson_code.redis_keys import KeyStoreUnavailable, connect, display_url

DEFAULT_STREAM: Final = "mcp:audit"
DEFAULT_MAXLEN: Final = 100_000
FLUSH_INTERVAL: Final = 0.2
MAX_PENDING: Final = 10_000
BATCH: Final = 500


class RedisStreamWriter:
    """Appends audit entries to a Redis stream from a daemon thread, in batches; bounded in memory."""

    def __init__(
        self,
        url: str,
        *,
        stream: str = DEFAULT_STREAM,
        maxlen: int = DEFAULT_MAXLEN,
        flush_interval: float = FLUSH_INTERVAL,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.url = url
        self.stream = stream
        self.maxlen = maxlen
        self.flush_interval = flush_interval
        self._client = connect(url)
        self._pending: deque[str] = deque()
        self.max_pending = max_pending
        self.dropped = 0
        self._failing = False
        self._lock = threading.Lock()  # one flush at a time (the thread, or close())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-redis-stream", daemon=True)
        self._thread.start()

    def add(self, entry: dict[str, Any]) -> None:
        if len(self._pending) >= self.max_pending:
            self._pending.popleft()
            self.dropped += 1
        self._pending.append(json.dumps(entry, ensure_ascii=True, default=str))

    def flush(self) -> bool:
        """Send what is pending; False (entries kept for the next try) if Redis cannot be reached."""
        with self._lock:
            while self._pending:
                batch = [self._pending[i] for i in range(min(BATCH, len(self._pending)))]
                pipe = self._client.pipeline(transaction=False)
                for line in batch:
                    pipe.xadd(self.stream, {"entry": line}, maxlen=self.maxlen, approximate=True)
                try:
                    pipe.execute()
                except redis.exceptions.RedisError as exc:
                    self._warn(exc)
                    return False
                for _ in batch:
                    self._pending.popleft()
            if self._failing:
                self._failing = False
                print(f"audit: writing to the Redis stream {self.stream!r} again", file=sys.stderr, flush=True)
            return True

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.flush()
        self._client.close()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            if self._pending:
                self.flush()

    def _warn(self, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            print(
                f"audit: cannot write to the Redis stream {self.stream!r} at {display_url(self.url)} "
                f"({exc.__class__.__name__}); keeping up to {self.max_pending} entries to retry (the file log has all)",
                file=sys.stderr,
                flush=True,
            )


class ReplicaAuditLog(AuditLog):
    """An `AuditLog` whose entries name the replica, optionally copied to a Redis stream."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        replica: str,
        stream: RedisStreamWriter | None = None,
        **options: Any,
    ) -> None:
        super().__init__(path, **options)
        self.replica = replica
        self.stream = stream

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        entry = super().record(event, replica=self.replica, **fields)
        if self.stream is not None:
            self.stream.add(entry)
        return entry

    def close(self) -> None:
        super().close()  # writes pending throttle summaries through record(), so before the stream closes
        if self.stream is not None:
            self.stream.flush()


def read_audit_stream(url: str, *, stream: str = DEFAULT_STREAM, last: int | None = None) -> list[dict[str, Any]]:
    """The cluster's audit entries from the stream, oldest first, merged by their `time` (the newest `last`).

    Raises `KeyStoreUnavailable` (one clear line) if Redis cannot be reached.
    """
    client = connect(url)
    try:
        # All of it (the stream is capped by MAXLEN), since "newest" means by the entries' own time, not arrival.
        rows: list[Any] = client.xrange(stream) or []
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise KeyStoreUnavailable(
            f"cannot reach Redis at {display_url(url)} ({exc.__class__.__name__}): is redis-server running?"
        ) from None
    finally:
        client.close()
    entries: list[dict[str, Any]] = []
    for _id, fields in rows:
        try:
            entries.append(json.loads(fields["entry"]))
        except (KeyError, TypeError, ValueError):
            continue
    # Replicas send in batches, so arrival order is only roughly time order; a stable sort by the
    # entry's own timestamp (ISO 8601, same width everywhere) merges them.
    entries.sort(key=lambda e: str(e.get("time", "")))
    return entries[-last:] if last else entries
