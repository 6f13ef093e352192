"""A real redis-server for tests: started on a free loopback port in a temp dir, stopped after.

Why our own fixture and not pytest-redis: the cluster tests need to stop Redis,
freeze it, and start it again *on the same port* to prove that replicas fail
closed and then recover without a restart. A small class that owns the process
makes that a method call.

Use it as a fixture (`from redis_support import redis_server_fixture  # noqa: F401`,
then take `redis_server` as a test argument) or directly:

    with RedisProcess() as redis:
        redis.url            # redis://127.0.0.1:PORT/0
        redis.stop()         # SIGTERM, wait for exit (the port is then closed)
        redis.start()        # again, on the same port, empty (no persistence)
        redis.pause()        # SIGSTOP: connections hang instead of failing
        redis.resume()       # SIGCONT

A missing `redis-server` fails loudly with how to install it; it never skips.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

INSTALL_HINT = "install it: `apt-get install redis-server` (Debian/Ubuntu) or `brew install redis` (macOS)"


def redis_server_binary() -> str:
    """The path of redis-server, or a loud failure saying how to install it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(f"redis-server is not on PATH: {INSTALL_HINT}", pytrace=False)
    return binary


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int, timeout: float = 0.5) -> bool:
    """True if a Redis on 127.0.0.1:port answers PING (raw RESP: no client needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisProcess:
    """One redis-server on 127.0.0.1, no persistence, in its own temp directory."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.host = "127.0.0.1"
        self._dir = Path(tempfile.mkdtemp(prefix="test-redis-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._log = self._dir / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 10.0) -> RedisProcess:
        """Start (or start again, on the same port) and return once it answers PING."""
        if self.running:
            return self
        command = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self._dir),
            "--logfile", str(self._log),
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, cwd=self._dir)
        deadline = time.monotonic() + timeout
        while not _ping(self.port):
            if self._process.poll() is not None:
                log = self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""
                raise RuntimeError(f"redis-server exited with {self._process.returncode} on port {self.port}:\n{log}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING on port {self.port} within {timeout:g} s")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop it (SIGTERM, then SIGKILL) and wait until it has exited; safe to call twice."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def pause(self) -> None:
        """SIGSTOP: the port stays open but nothing answers (a hung server, not a dead one)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        """Stop and remove the temp directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RedisProcess {self.url} {'running' if self.running else 'stopped'}>"


@pytest.fixture(name="redis_server")
def redis_server_fixture() -> Iterator[RedisProcess]:
    """A fresh, empty redis-server for one test, stopped afterwards (the fixture is named `redis_server`)."""
    with RedisProcess() as redis:
        yield redis


# Import either name into a test module to get the `redis_server` fixture; importing
# `redis_server_fixture` keeps ruff from seeing the test's argument as a redefinition.
redis_server = redis_server_fixture
