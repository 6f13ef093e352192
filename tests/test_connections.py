"""Idle connections cannot starve the server: an idle timeout and a connection cap below `ulimit -n`.

Before: uvicorn kept a connection that never sends a request open for ever,
so a few hundred idle sockets used up the process's file descriptors, stderr
filled with "Too many open files" and a valid client was never answered.
"""

from __future__ import annotations

import resource
import select
import socket
import time
from pathlib import Path

import httpx
import pytest
from tests_support import Served, cli, new_key

from lesson_code.raw_requests import list_tools
from lesson_code.uvicorn_config import ConnectionLimits, safe_max_connections

FILE_LIMIT = 256
IDLE_SOCKETS = 400  # more than the server's whole file-descriptor limit


def _low_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


class LimitedServer(Served):
    """`serve --port 0` started under `ulimit -n 256`, with a key of its own."""

    def __init__(self, tmp_path: Path, *extra: str) -> None:
        self.keys_file = tmp_path / "keys.json"
        self.key = new_key(self.keys_file)
        super().__init__(
            "--keys-file", str(self.keys_file), "--db", str(tmp_path / "shop.sqlite3"),
            "--audit-log", str(tmp_path / "audit.jsonl"), *extra, preexec_fn=_low_file_limit,
        )  # fmt: skip


def _open_idle_sockets(port: int, count: int) -> list[socket.socket]:
    """Connect `count` sockets that never send a byte (non-blocking: no waiting on a full accept queue)."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        sockets.append(sock)
    return sockets


def _wait_until_closed_by_the_server(sockets: list[socket.socket], *, at_least: int, timeout: float) -> int:
    """Wait until `at_least` of the sockets see the server close them (end of file); return how many did."""
    poller = select.poll()
    by_fd = {sock.fileno(): sock for sock in sockets}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    closed = 0
    deadline = time.monotonic() + timeout
    while closed < at_least and time.monotonic() < deadline:
        for fd, _events in poller.poll(200):
            poller.unregister(fd)
            try:
                eof = by_fd[fd].recv(1) == b""
            except (BlockingIOError, ConnectionResetError):
                eof = True
            closed += eof
    return closed


@pytest.mark.timeout(120)
def test_more_idle_connections_than_the_cap_do_not_keep_a_valid_client_out(tmp_path):
    server = LimitedServer(tmp_path, "--max-connections", "32", "--idle-timeout", "60")
    idle: list[socket.socket] = []
    try:
        idle = _open_idle_sockets(server.port, IDLE_SOCKETS)
        shed = _wait_until_closed_by_the_server(idle, at_least=IDLE_SOCKETS - 32 - 32, timeout=30)
        assert shed >= IDLE_SOCKETS - 64, f"the server closed only {shed} of {IDLE_SOCKETS} idle connections"
        started = time.monotonic()
        answer = httpx.post(server.url, **list_tools(api_key=server.key), timeout=15)
        elapsed = time.monotonic() - started
        assert answer.status_code == 200
        assert elapsed < 8, f"a valid request took {elapsed:.1f} s behind {IDLE_SOCKETS} idle connections"
        again = httpx.post(server.url, **list_tools(api_key=server.key), timeout=15)  # and it keeps working
        assert again.status_code == 200
    finally:
        for sock in idle:
            sock.close()
        status, _, err = server.stop()
    assert status == 0, err
    assert "Too many open files" not in err and "out of system resource" not in err, err[-2000:]


@pytest.mark.timeout(60)
def test_a_connection_that_sends_nothing_is_closed_after_the_idle_timeout(tmp_path):
    server = LimitedServer(tmp_path, "--idle-timeout", "1")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as silent:
            started = time.monotonic()
            assert silent.recv(1) == b""  # closed by the server
            assert 0.5 < time.monotonic() - started < 8
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
            slow.sendall(b"GET /health HTTP/1.1\r\n")  # a request head that never ends (slowloris)
            started = time.monotonic()
            closed = False
            while time.monotonic() - started < 8 and not closed:
                slow.sendall(b"x")  # one byte at a time keeps "sending something", but not a request
                slow.settimeout(0.2)
                try:
                    closed = slow.recv(1) == b""
                except TimeoutError:
                    pass
                except ConnectionResetError:
                    closed = True
            assert closed, "a request head sent byte by byte was never cut off"
        assert httpx.get(server.url.replace("/mcp", "/health"), timeout=10).status_code == 200
    finally:
        server.stop()


def test_a_cap_above_what_the_file_limit_allows_is_refused_in_one_line(tmp_path):
    keys_file = tmp_path / "keys.json"
    new_key(keys_file)
    result = cli(
        "serve", "--port", "0", "--keys-file", str(keys_file), "--max-connections", "5000", preexec_fn=_low_file_limit
    )
    assert result.returncode == 2
    safe = safe_max_connections(FILE_LIMIT)
    assert result.stderr.strip() == (
        f"error: a cap of 5000 connections needs more open files than this process may have "
        f"(ulimit -n {FILE_LIMIT}): use at most {safe}, or raise the limit"
    )


def test_the_default_cap_fits_under_the_file_limit():
    assert ConnectionLimits().resolve(file_limit=1024) == safe_max_connections(1024) < 1024
    assert ConnectionLimits().resolve(file_limit=1_000_000) == 1000
    assert 0 < ConnectionLimits().resolve(file_limit=FILE_LIMIT) < FILE_LIMIT
    with pytest.raises(ValueError, match="too low to serve"):
        ConnectionLimits().resolve(file_limit=64)
