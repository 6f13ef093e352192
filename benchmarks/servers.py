"""The servers compared over HTTP, each served by uvicorn in a process of its own.

    open        `create_open_app_for_threat_model`: no authentication at all (the reference)
    api-key     `create_secured_app` with a KeyRing: our middleware, audit log in memory
    sdk-bearer  the same tools behind the MCP SDK's own Bearer path (`token_verifier=` + `AuthSettings`)

and, only for the instruction counts (`instructions.py`), steps between the first two:

    key-check       the open app behind a bare wrapper that runs `find_credential` and `KeyRing.lookup`
                    and nothing else (no identity, no audit, no refusal path)
    api-key-no-audit  our `ApiKeyMiddleware` (+ the SDK's `AuthContextMiddleware`) without any audit log

and, through `CliServerProcess`, the command users run: `python -m lesson_code serve` with a keys
file and the audit log to a file, or `serve --no-auth`.

Why separate processes: a server in a thread of the benchmark process would
share the GIL with the load generator, so the client's work would be billed to
the server. A process per server also lets us read the server's own CPU time
from /proc.

The listening socket comes from `lesson_code.background.bind_socket`, which
creates it with `IPPROTO_TCP` so that asyncio sets TCP_NODELAY on accepted
connections; without it each response waits ~40 ms for the client's delayed
ACK (Nagle), and we would be timing the kernel's TCP timers, not the server.

Run as `python -m benchmarks.servers VARIANT DB_PATH` with the key in
`BENCH_API_KEY`; it prints `READY <port>` once serving and exits when its stdin
closes (so it never outlives the benchmark).
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

import uvicorn
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from benchmarks.common import PROJECT_ROOT
from lesson_code.app import (
    create_open_app_for_threat_model,
    create_secured_app,
)
from lesson_code.auth import ApiKeyMiddleware, find_credential
from lesson_code.background import bind_socket
from lesson_code.keys import KeyRing
from lesson_code.sdk_bearer import create_sdk_bearer_app

VARIANTS: Final = ("open", "api-key", "sdk-bearer")
BENCH_ONLY_VARIANTS: Final = ("key-check", "api-key-no-audit")
HOST: Final = "127.0.0.1"
KEY_ENV: Final = "BENCH_API_KEY"
START_TIMEOUT_SECONDS: Final = 30
STOP_TIMEOUT_SECONDS: Final = 10


def build_app(variant: str, db_path: str | Path, key: str) -> ASGIApp:
    if variant == "open":
        return create_open_app_for_threat_model(db_path, host=HOST)
    if variant == "api-key":
        return create_secured_app(KeyRing.from_keys({"bench": key}), db_path, host=HOST)
    if variant == "sdk-bearer":
        return create_sdk_bearer_app(KeyRing.from_keys({"bench": key}), db_path)[0]
    if variant == "key-check":
        return KeyCheckOnly(
            create_open_app_for_threat_model(db_path, host=HOST).asgi, KeyRing.from_keys({"bench": key})
        )
    if variant == "api-key-no-audit":
        open_app = create_open_app_for_threat_model(db_path, host=HOST).asgi
        return ApiKeyMiddleware(AuthContextMiddleware(open_app), KeyRing.from_keys({"bench": key}))
    raise ValueError(f"unknown variant {variant!r}: choose one of {', '.join(VARIANTS + BENCH_ONLY_VARIANTS)}")


class KeyCheckOnly:
    """Bench only: what finding and looking up the key costs, with nothing of the middleware around it.

    Not a security boundary: a request whose key is missing or unknown is served all the same; the
    benchmark only ever sends the right key.
    """

    def __init__(self, app: ASGIApp, keyring: KeyRing) -> None:
        self.app, self.keyring = app, keyring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            credential = find_credential(scope["headers"])
            if isinstance(credential, bytes):
                self.keyring.lookup(credential)
        await self.app(scope, receive, send)


def auth_headers(variant: str, key: str) -> dict[str, str]:
    """How each variant wants the key: none, `x-api-key`, or `Authorization: Bearer`."""
    if variant == "api-key":
        return {"x-api-key": key}
    if variant == "sdk-bearer":
        return {"authorization": f"Bearer {key}"}
    return {}


def serve(variant: str, db_path: str) -> None:
    """The child process: serve `variant` until stdin closes."""
    server = uvicorn.Server(
        uvicorn.Config(build_app(variant, db_path, os.environ[KEY_ENV]), log_level="warning", access_log=False)
    )
    sock = bind_socket(HOST, 0)

    def announce_then_wait_for_eof() -> None:
        while not server.started:
            time.sleep(0.01)
        print(f"READY {sock.getsockname()[1]}", flush=True)
        sys.stdin.read()  # returns at EOF: the parent closed our stdin or died
        server.should_exit = True

    threading.Thread(target=announce_then_wait_for_eof, daemon=True).start()
    server.run(sockets=[sock])


class _ChildServer:
    """What both child servers share: the process, its captured stderr, its CPU and memory, and `with`."""

    _process: subprocess.Popen[str]
    _log: IO[str]

    @property
    def pid(self) -> int:
        return self._process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (all its threads), from /proc."""
        return process_cpu_seconds(self.pid)

    def rss_kib(self) -> int:
        return process_rss_kib(self.pid)

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read()

    @property
    def returncode(self) -> int | None:
        """The exit status once stopped (None while running); 0 after a clean shutdown."""
        return self._process.poll()

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ServerProcess(_ChildServer):
    """Start `variant` in a child process; use with `with`. Knows its URL and its CPU time."""

    def __init__(
        self,
        variant: str,
        key: str,
        folder: Path,
        *,
        wrapper: Sequence[str] = (),
        start_timeout: float = START_TIMEOUT_SECONDS,
        stop_timeout: float = STOP_TIMEOUT_SECONDS,
    ) -> None:
        self.variant = variant
        self.stop_timeout = stop_timeout
        self._log = tempfile.TemporaryFile(mode="w+", prefix=f"bench-{variant}-")  # noqa: SIM115 (closed in stop)
        self._process = subprocess.Popen(
            [*wrapper, sys.executable, "-m", "benchmarks.servers", variant, str(folder / f"{variant}.sqlite3")],
            cwd=PROJECT_ROOT,
            env={**os.environ, KEY_ENV: key},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        line = self._read_announcement(start_timeout)
        if not line.startswith("READY "):
            log = self.log()
            self.stop()
            raise RuntimeError(f"the {variant!r} server did not start within {start_timeout:g} s:\n{log}")
        self.port = int(line.split()[1])
        self.url = f"http://{HOST}:{self.port}/mcp"

    def _read_announcement(self, timeout: float) -> str:
        """The child's first line, or "" if it exits or says nothing in time (never blocks forever)."""
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        return self._process.stdout.readline() if ready else ""

    def stop(self) -> None:
        if self._process.stdin and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()  # only ever our own child, by its handle
            self._process.wait()
        if self._process.stdout:
            self._process.stdout.close()
        self._log.close()


if __name__ == "__main__":
    serve(*sys.argv[1:3])


class CliServerProcess(_ChildServer):
    """`python -m lesson_code serve` exactly as a user starts it, in a child process; use with `with`.

    `secured`: a keys file made with `keys new`, the audit log to a file (both in `folder`);
    otherwise `--no-auth`. `extra` adds options (the refusal benchmark raises `--max-failures`).
    `wrapper` goes before the command (e.g. valgrind; it must exec the server in the same process).
    The key is in `.key`. Stopped with SIGINT, as Ctrl-C does, so the audit writer flushes.
    """

    def __init__(
        self,
        name: str,
        folder: Path,
        *,
        secured: bool,
        extra: Sequence[str] = (),
        wrapper: Sequence[str] = (),
        start_timeout: float = START_TIMEOUT_SECONDS,
        stop_timeout: float = 15,
    ) -> None:
        self.variant = name
        self.stop_timeout = stop_timeout
        self.folder = folder / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.key = ""
        args = ["--db", str(self.folder / "shop.sqlite3")]
        if secured:
            keys_file = self.folder / "keys.json"
            made = subprocess.run(
                [sys.executable, "-m", "lesson_code", "keys", "new", "--name", "bench", "--keys-file", str(keys_file)],
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            self.key = made.stdout.strip().splitlines()[0]
            self.audit_log = self.folder / "audit.jsonl"
            args += ["--keys-file", str(keys_file), "--audit-log", str(self.audit_log)]
        else:
            args.append("--no-auth")
        self._log = tempfile.TemporaryFile(mode="w+", prefix=f"bench-{name}-")  # noqa: SIM115 (closed in stop)
        env = {k: v for k, v in os.environ.items() if k not in ("MCP_API_KEYS", "MCP_KEYS_FILE")}
        self._process = subprocess.Popen(
            [*wrapper, sys.executable, "-m", "lesson_code", "serve", "--host", HOST, "--port", "0", *args, *extra],
            cwd=self.folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.url = self._read_url(start_timeout)
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def _read_url(self, timeout: float) -> str:
        assert self._process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._process.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = self._process.stdout.readline() if ready else ""
            if match := re.search(r" at (https?://\S+/mcp)", line):
                # Nothing more is read from stdout: serve prints only a few lines, far below a pipe's buffer.
                return match.group(1)
            if ready and not line:
                break  # EOF: it exited
        log = self.log()
        self.stop()
        raise RuntimeError(f"`serve` ({self.variant}) did not start within {timeout:g} s:\n{log}")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)  # only ever our own child, by its handle
            try:
                self._process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout:
            self._process.stdout.close()
        self._log.close()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_ns(pid: int) -> dict[int, int]:
    """CPU time of each thread of a process so far, in ns, by thread id (the first field of its schedstat).

    A thread that has already exited is not listed: its time is in `process_cpu_seconds` only.
    """
    times = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            times[int(task.name)] = int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # it exited while we looked
    return times


def process_rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")
