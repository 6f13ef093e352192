"""How the course runs uvicorn: whose address to believe, and how many connections to keep.

`serve` and `BackgroundServer` both build their `uvicorn.Config` here, so the
two cannot drift apart. Two defaults of uvicorn are unsafe for a server that
counts failures per address and keeps an audit log:

* Forwarded headers. uvicorn believes `X-Forwarded-For` from 127.0.0.1 by
  default, so any local client (or anything behind a local proxy) could choose
  the address the throttle counts and the audit log records. Here proxy
  headers are off unless `trusted_proxies` names the proxies to believe
  (`serve --trusted-proxy ADDR`, for a deployment behind nginx).
* Idle connections. uvicorn has no timeout for a connection that never sends
  a request (its keep-alive timer starts after the first response), and
  `limit_concurrency` answers 503 but still holds every socket. A few hundred
  idle sockets then exhaust the process's file descriptors ("Too many open
  files") and nobody is served. `ConnectionGuard` closes a connection that has
  not sent a complete request head within `idle_timeout` seconds (this also
  ends a slow, byte-by-byte request head), and keeps at most
  `max_connections` open: when a new one arrives at the cap, the oldest
  connection that is waiting for a request is closed to make room (a busy one
  is never closed; if all are busy, the newcomer is). The cap is checked
  against the open-file limit (`ulimit -n`), leaving room for the files the
  server itself opens and for connections accepted but not yet counted.

What is left to a reverse proxy (nginx, a load balancer) is listed in the
README's threat model: slow request bodies, per-address connection limits
across many addresses, TLS handshakes that stall, and floods at scale.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_IDLE_TIMEOUT: Final = 10.0
DEFAULT_MAX_CONNECTIONS: Final = 1000
RESERVED_FILES: Final = 64  # the server's own files: database, audit log, keys file, stdio, event loop
ACCEPT_BATCHES_IN_FLIGHT: Final = 4  # accepted sockets not yet counted, in units of the accept batch
UVICORN_BACKLOG: Final = 2048
LISTEN_BACKLOG: Final = 2048  # connections the kernel queues for us; they hold no file descriptor until accepted


def open_file_limit() -> int | None:
    """The soft limit on open files (`ulimit -n`), or None where there is none to read (Windows)."""
    try:
        import resource
    except ImportError:  # Windows: no RLIMIT_NOFILE
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def accept_batch(file_limit: int | None) -> int:
    """How many connections the event loop accepts per wake-up (uvicorn's `backlog`).

    asyncio accepts up to `backlog` sockets in one go before any of them is
    counted, so the batch is kept small where file descriptors are few. The
    kernel's queue stays long (see `ListeningSocket`).
    """
    if file_limit is None:
        return UVICORN_BACKLOG
    return max(16, min(UVICORN_BACKLOG, file_limit // 16))


def safe_max_connections(file_limit: int | None) -> int | None:
    """The most connections that fit under the open-file limit (None: no limit known)."""
    if file_limit is None:
        return None
    return file_limit - RESERVED_FILES - ACCEPT_BATCHES_IN_FLIGHT * accept_batch(file_limit)


class ListeningSocket(socket.socket):
    """A listening socket whose kernel queue stays `LISTEN_BACKLOG` long whatever asyncio asks for.

    asyncio uses one number twice: it calls `listen(backlog)` and accepts up to
    `backlog` sockets per wake-up. We want small batches (see `accept_batch`)
    but a long queue: a client waiting in the kernel's queue costs the server no
    file descriptor, while a client whose SYN is dropped retries only after 1,
    3, 7... seconds.
    """

    def listen(self, backlog: int = LISTEN_BACKLOG) -> None:
        super().listen(LISTEN_BACKLOG)


@dataclass(frozen=True)
class ConnectionLimits:
    """The idle timeout and the connection cap; `max_connections=None` picks a safe default."""

    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_connections: int | None = None

    def resolve(self, file_limit: int | None = None) -> int:
        """The connection cap to use; ValueError (one line, with what to do) if it cannot be safe."""
        if self.idle_timeout <= 0:
            raise ValueError(f"the idle timeout must be positive, not {self.idle_timeout:g}")
        limit = open_file_limit() if file_limit is None else file_limit
        safe = safe_max_connections(limit)
        if safe is not None and safe < 1:
            needed = RESERVED_FILES + ACCEPT_BATCHES_IN_FLIGHT * accept_batch(limit) + 16
            raise ValueError(f"the open-file limit (ulimit -n {limit}) is too low to serve: raise it to {needed}+")
        if self.max_connections is None:
            return DEFAULT_MAX_CONNECTIONS if safe is None else min(DEFAULT_MAX_CONNECTIONS, safe)
        if self.max_connections < 1:
            raise ValueError(f"the connection cap must be at least 1, not {self.max_connections}")
        if safe is not None and self.max_connections > safe:
            raise ValueError(
                f"a cap of {self.max_connections} connections needs more open files than this process may have "
                f"(ulimit -n {limit}): use at most {safe}, or raise the limit"
            )
        return self.max_connections


class ConnectionGuard:
    """The connections of one server: the idle deadline of each, and the cap on how many are open.

    Runs on the server's event loop only, so it needs no lock. A connection is
    "waiting" from the moment it opens, and again after each response, until
    the head of its next request has arrived.
    """

    def __init__(self, idle_timeout: float, max_connections: int) -> None:
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.open: set[GuardedH11Protocol] = set()
        self.waiting: dict[GuardedH11Protocol, asyncio.TimerHandle] = {}  # insertion order: oldest first
        self.closed_idle = 0  # connections closed for sending nothing in time
        self.closed_for_room = 0  # connections closed to admit a newer one at the cap

    def admit(self, conn: GuardedH11Protocol) -> None:
        self.open.add(conn)
        self.wait_for_request(conn)
        while len(self.open) > self.max_connections:
            oldest = next(iter(self.waiting), conn)  # nobody waiting: every other connection is busy
            self.closed_for_room += 1
            self._close(oldest)

    def wait_for_request(self, conn: GuardedH11Protocol) -> None:
        self._stop_timer(conn)
        self.waiting[conn] = conn.loop.call_later(self.idle_timeout, self._expire, conn)

    def request_started(self, conn: GuardedH11Protocol) -> None:
        self._stop_timer(conn)

    def forget(self, conn: GuardedH11Protocol) -> None:
        self._stop_timer(conn)
        self.open.discard(conn)

    def _expire(self, conn: GuardedH11Protocol) -> None:
        if self.waiting.pop(conn, None) is not None:
            self.closed_idle += 1
            self._close(conn)

    def _close(self, conn: GuardedH11Protocol) -> None:
        self.forget(conn)
        if not conn.transport.is_closing():
            conn.transport.close()

    def _stop_timer(self, conn: GuardedH11Protocol) -> None:
        timer = self.waiting.pop(conn, None)
        if timer is not None:
            timer.cancel()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, reporting to a `ConnectionGuard` when a request starts and ends."""

    guard: ClassVar[ConnectionGuard]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's
        super().connection_made(transport)
        self.guard.admit(self)

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        super().data_received(data)
        if self.transport.get_protocol() is not self:  # upgraded (WebSocket): no longer ours to watch
            self.guard.forget(self)
        elif self.cycle is not cycle:  # a request head arrived
            self.guard.request_started(self)

    def on_response_complete(self) -> None:
        cycle = self.cycle
        super().on_response_complete()
        if self.cycle is cycle and not self.transport.is_closing():  # no pipelined request started
            self.guard.wait_for_request(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.forget(self)
        super().connection_lost(exc)


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """A protocol class with its own guard: one per server (uvicorn instantiates it per connection)."""
    guard = ConnectionGuard(limits.idle_timeout, limits.resolve())
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"guard": guard})


def check_trusted_proxies(proxies: Sequence[str]) -> list[str]:
    """The proxy addresses (IPs or networks) as uvicorn wants them; ValueError names a bad one."""
    checked = []
    for proxy in proxies:
        try:
            checked.append(str(ipaddress.ip_network(proxy.strip().strip("[]"), strict=False)))
        except ValueError:
            raise ValueError(f"--trusted-proxy {proxy!r} is not an IP address or network, e.g. 10.0.0.5") from None
    return checked


def uvicorn_config(
    app: Any,
    *,
    trusted_proxies: Sequence[str] = (),
    limits: ConnectionLimits | None = None,
    **options: Any,
) -> uvicorn.Config:
    """A `uvicorn.Config` with proxy headers off (unless proxies are trusted) and the connection guard on.

    `options` are passed to uvicorn as they are (log level, TLS files, ...).
    """
    limits = limits or ConnectionLimits()
    trusted = check_trusted_proxies(trusted_proxies)
    return uvicorn.Config(
        app,
        http=guarded_protocol(limits),
        backlog=accept_batch(open_file_limit()),
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        **options,
    )
