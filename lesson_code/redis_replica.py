"""One replica of a cluster: the shared state a `serve --redis URL` process keeps, wired in one place.

A replica is the usual secured app plus four parts that make it one of many:

    KeyStoreGate        503 (JSON-RPC -32014) once the key store is lost past its grace
    ApiKeyMiddleware    the usual key check, against the replica's KeyRing (memory)
    RedisKeySync        keeps that KeyRing's external records equal to Redis's (thread)
    throttle storage    failed attempts counted in Redis, for the whole cluster
    ReplicaAuditLog     entries name the replica; optionally copied to a Redis stream

`serve` uses `ReplicaState.start(...)` and `state.wrap(app)`; tests, the
benchmark and lesson 07 use `build_replica_app` to get the same thing in one call.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lesson_code.keys import KeyRecord, KeyRing
from lesson_code.redis_audit import DEFAULT_STREAM, RedisStreamWriter, ReplicaAuditLog
from lesson_code.redis_keys import RedisKeyStore
from lesson_code.redis_sync import DEFAULT_CHECK_INTERVAL, DEFAULT_GRACE, KeyStoreGate, RedisKeySync
from lesson_code.redis_throttle import redis_throttle_storage
from lesson_code.throttle import FailedAttemptThrottle

if TYPE_CHECKING:
    from lesson_code.app import ShoppingApp


def default_replica_name() -> str:
    """`hostname-pid`: unique per process on a machine, readable in a merged log."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class ReplicaState:
    """The shared-state parts of one replica; `stop()` ends the sync thread and flushes the audit."""

    name: str
    redis_url: str
    keyring: KeyRing
    sync: RedisKeySync
    audit: ReplicaAuditLog
    throttle: FailedAttemptThrottle
    _stopped: bool = field(default=False, repr=False)

    @classmethod
    def start(
        cls,
        redis_url: str,
        *,
        name: str | None = None,
        fixed_records: list[KeyRecord] | None = None,
        grace: float = DEFAULT_GRACE,
        check_interval: float = DEFAULT_CHECK_INTERVAL,
        audit_path: str | Path | None = None,
        audit_stream: bool = False,
        stream_name: str = DEFAULT_STREAM,
        max_failures: int = 20,
        failure_window: float = 60.0,
    ) -> ReplicaState:
        """Read the key set from Redis (raises `KeyFileError` if it cannot), then follow it.

        `fixed_records` (the environment's keys) stay valid alongside the store's.
        """
        name = name or default_replica_name()
        keyring = KeyRing(fixed_records or [])
        stream = RedisStreamWriter(redis_url, stream=stream_name) if audit_stream else None
        audit = ReplicaAuditLog(audit_path, replica=name, stream=stream)

        def on_event(kind: str) -> None:
            audit.record("key_store", outcome=kind)

        sync = RedisKeySync(
            RedisKeyStore(redis_url), keyring, grace=grace, check_interval=check_interval, name=name, on_event=on_event
        )
        try:
            sync.start()
        except BaseException:
            audit.close()
            if stream is not None:
                stream.close()
            raise
        throttle = FailedAttemptThrottle(max_failures, failure_window, storage=redis_throttle_storage(redis_url))
        return cls(name=name, redis_url=redis_url, keyring=keyring, sync=sync, audit=audit, throttle=throttle)

    def wrap(self, app: ShoppingApp) -> ShoppingApp:
        """The same app with the fail-closed gate as its outermost layer."""
        return dataclasses.replace(app, asgi=KeyStoreGate(app.asgi, self.sync))

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.sync.stop()
        self.sync.store.close()
        self.audit.close()
        if self.audit.stream is not None:
            self.audit.stream.close()


def build_replica_app(
    redis_url: str,
    db_path: str | Path,
    *,
    name: str | None = None,
    stateless: bool = True,
    host: str = "127.0.0.1",
    **options: Any,
) -> tuple[ShoppingApp, ReplicaState]:
    """A complete replica as one ASGI app (serve it with `BackgroundServer`); stop the state after the server."""
    from lesson_code.app import create_secured_app  # the app imports the SDK: only when a replica is built

    state = ReplicaState.start(redis_url, name=name, **options)
    app = create_secured_app(
        state.keyring, db_path, audit=state.audit, throttle=state.throttle, host=host, stateless=stateless
    )
    return state.wrap(app), state
