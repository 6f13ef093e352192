"""Run an ASGI app with uvicorn in a background thread, for notebooks and tests.

Why a thread: a Jupyter kernel already runs an event loop, and serving on that
same loop deadlocks any synchronous HTTP call made from a cell. A daemon
thread with its own loop keeps the kernel free, and a socket bound *before*
the thread starts turns "port in use" into an immediate, clear error.

Servers are registered by name, so re-running a notebook cell replaces the
server it started last time instead of leaving a second one on another port.

The uvicorn settings come from `lesson_code.uvicorn_config`, shared with
`serve`: proxy headers off (the throttle and the audit log see the socket's
peer address), idle connections closed after a timeout, and a cap on open
connections below the open-file limit.

`stop()` returns as soon as the server has shut down, rather than after uvicorn's
two fixed pauses (its main loop looks at `should_exit` every 0.1 s, and its
shutdown always sleeps 0.1 s for connections to finish): see `_PromptServer`.
The shutdown itself is uvicorn's, complete: the app's lifespan shutdown runs
(which flushes the audit log), and open connections get uvicorn's full grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, TypedDict, Unpack

import uvicorn
from starlette.types import ASGIApp

from lesson_code.net import is_loopback
from lesson_code.uvicorn_config import ConnectionLimits, ListeningSocket, uvicorn_config


class PortInUseError(RuntimeError):
    """The requested port is taken by another process (or another server of ours)."""


class ServerStartError(RuntimeError):
    """The server did not become ready before its deadline."""


class _PromptServer(uvicorn.Server):
    """uvicorn's `Server`, told to exit by `request_exit()`, which wakes its main loop at once.

    uvicorn 0.54 waits twice on a fixed clock when it stops: its main loop looks at `should_exit`
    every 0.1 s, and its `shutdown()` sleeps 0.1 s after asking open connections to close. That is
    0.15 s on average in every `stop()`, most of it for nothing (a demo whose client has hung up
    has no connection left to wait for). Here the main loop waits for the same 0.1 s tick or for
    `request_exit()`, whichever comes first, and `shutdown()` is uvicorn's, step for step, except
    that its fixed 0.1 s sleep becomes "up to 0.1 s, until no connection or request is left". The
    rest is unchanged: uvicorn's graceful wait for connections and requests (then cancelling what
    is left), and the app's lifespan shutdown.
    """

    SETTLE_SECONDS: ClassVar[float] = 0.1  # uvicorn's fixed pause, now an upper bound
    SETTLE_POLL_SECONDS: ClassVar[float] = 0.002

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit_requested: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def request_exit(self) -> None:
        """Ask the server to shut down; safe from any thread, before, during or after `serve()`."""
        self.should_exit = True
        loop, exit_requested = self._loop, self._exit_requested  # main_loop sets the event first
        if loop is not None and exit_requested is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing is waiting any more
                loop.call_soon_threadsafe(exit_requested.set)

    async def main_loop(self) -> None:
        self._exit_requested = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):  # on_tick also refreshes the Date header every 10 ticks
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self._exit_requested.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        _uvicorn_log.info("Shutting down")
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # idle keep-alive connections close now, busy ones after their response
        await self._settle()
        try:
            await asyncio.wait_for(self._wait_tasks_to_complete(), timeout=self.config.timeout_graceful_shutdown)
        except TimeoutError:
            _uvicorn_log.error(
                "Cancel %s running task(s), timeout graceful shutdown exceeded", len(self.server_state.tasks)
            )
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _settle(self) -> None:
        """Up to SETTLE_SECONDS for connections to close and requests to finish, as uvicorn allows them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.SETTLE_SECONDS
        await asyncio.sleep(0)  # closed transports report connection_lost on the next loop iteration
        while (self.server_state.connections or self.server_state.tasks) and loop.time() < deadline:
            await asyncio.sleep(self.SETTLE_POLL_SECONDS)


_uvicorn_log = logging.getLogger("uvicorn.error")  # the logger uvicorn's own Server writes to


class BackgroundServer:
    """uvicorn in a daemon thread; use `start()`/`stop()` or `with BackgroundServer(app) as server:`."""

    _running: ClassVar[dict[str, BackgroundServer]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "default",
        ssl_certfile: str | Path | None = None,
        ssl_keyfile: str | Path | None = None,
        log_level: str = "warning",
        trusted_proxies: Sequence[str] = (),
        limits: ConnectionLimits | None = None,
    ) -> None:
        """`trusted_proxies`: addresses whose X-Forwarded-For to believe (none by default);
        `limits`: idle timeout and connection cap (see `lesson_code.uvicorn_config`)."""
        self.app = app
        self.host = host.strip().removeprefix("[").removesuffix("]")
        self.port = port
        self.name = name
        self.scheme = "https" if ssl_certfile else "http"
        self._config = uvicorn_config(
            app,
            trusted_proxies=trusted_proxies,
            limits=limits,
            log_level=log_level,
            lifespan="on",
            ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
            ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
            timeout_graceful_shutdown=1,
            access_log=False,
        )
        self._server: _PromptServer | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # -- addresses ---------------------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def mcp_url(self) -> str:
        return self.url + "/mcp"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- life cycle ----------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        """Bind, start serving, and return once the server answers (or raise)."""
        with self._registry_lock:
            previous = self._running.pop(self.name, None)
        if previous is not None and previous is not self:
            previous.stop()
        self._socket = bind_socket(self.host, self.port)
        self.port = self._socket.getsockname()[1]
        self._server = _PromptServer(self._config)
        self._thread = threading.Thread(target=self._serve, name=f"uvicorn-{self.name}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self._close_socket()
                raise ServerStartError(f"the {self.name!r} server stopped during start-up; see the log above")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(f"the {self.name!r} server was not ready within {timeout:g} s")
            time.sleep(0.01)
        with self._registry_lock:
            self._running[self.name] = self
        return self

    def _serve(self) -> None:
        assert self._server is not None and self._socket is not None
        # uvicorn calls sys.exit when start-up fails; start() reports that as ServerStartError.
        with contextlib.suppress(SystemExit):
            self._server.run(sockets=[self._socket])

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._server is not None:
            self._server.request_exit()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout)
        self._close_socket()
        with self._registry_lock:
            if self._running.get(self.name) is self:
                del self._running[self.name]

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<BackgroundServer {self.name!r} {state} at {self.url}>"

    # -- helpers -------------------------------------------------------------------

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class NotLoopbackError(RuntimeError):
    """A server that must stay on this machine would have listened on another address."""


def bind_socket(host: str, port: int, *, require_loopback: bool = False) -> socket.socket:
    """A listening socket on (host, port); a taken port raises `PortInUseError` with advice.

    `host` may be a name, an address, or an IPv6 address in brackets (`[::1]`).
    Names are resolved here (IPv4 first, as before), and with `require_loopback`
    the address actually bound is checked before the socket listens: a name
    such as `localhost` that resolves elsewhere raises `NotLoopbackError`.
    """
    address = _resolve(host.strip().removeprefix("[").removesuffix("]"), port)
    # Say IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket's protocol is TCP, and without it every response waits ~40 ms (Nagle plus
    # the client's delayed ACK).
    sock = ListeningSocket(address[0], socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address[1])
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} on {host} is already in use: choose another port "
                "(or port 0 for any free one), or stop the program using it"
            ) from None
        raise
    bound = sock.getsockname()[0]
    if require_loopback and not is_loopback(bound):
        sock.close()
        raise NotLoopbackError(f"{host!r} resolved to {bound}, which is not a loopback address: use 127.0.0.1 or ::1")
    sock.listen()
    return sock


def _resolve(host: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    """The family and socket address to bind for `host` (IPv4 preferred when a name has both)."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve the host {host!r}: {exc.strerror}") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _type, _proto, _name, address = infos[0]
    return family, address


class ServerOptions(TypedDict, total=False):
    """`BackgroundServer`'s keyword options, so `serve_in_background` passes them on with their types."""

    host: str
    port: int
    ssl_certfile: str | Path | None
    ssl_keyfile: str | Path | None
    log_level: str
    trusted_proxies: Sequence[str]
    limits: ConnectionLimits | None


def serve_in_background(app: ASGIApp, *, name: str = "default", **options: Unpack[ServerOptions]) -> BackgroundServer:
    """Start `app` in the background under `name`, replacing any earlier server of that name."""
    return BackgroundServer(app, name=name, **options).start()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free right now (for the doctor cell and the CLI)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
