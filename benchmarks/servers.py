"""The three servers compared over HTTP, each served by uvicorn in a process of its own.

    open        `create_open_app_for_threat_model`: no authentication at all (the reference)
    api-key     `create_secured_app` with a KeyRing: our middleware, audit log in memory
    sdk-bearer  the same tools behind the MCP SDK's own Bearer path (`token_verifier=` + `AuthSettings`)

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
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Final

import uvicorn
from starlette.types import ASGIApp

from benchmarks.common import PROJECT_ROOT
from lesson_code.app import (
    create_open_app_for_threat_model,
    create_secured_app,
)
from lesson_code.background import bind_socket
from lesson_code.keys import KeyRing
from lesson_code.sdk_bearer import create_sdk_bearer_app

VARIANTS: Final = ("open", "api-key", "sdk-bearer")
HOST: Final = "127.0.0.1"
KEY_ENV: Final = "BENCH_API_KEY"
START_TIMEOUT_SECONDS: Final = 30


def build_app(variant: str, db_path: str | Path, key: str) -> ASGIApp:
    if variant == "open":
        return create_open_app_for_threat_model(db_path, host=HOST)
    if variant == "api-key":
        return create_secured_app(KeyRing.from_keys({"bench": key}), db_path, host=HOST)
    if variant == "sdk-bearer":
        return create_sdk_bearer_app(KeyRing.from_keys({"bench": key}), db_path)[0]
    raise ValueError(f"unknown variant {variant!r}: choose one of {', '.join(VARIANTS)}")


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


class ServerProcess:
    """Start `variant` in a child process; use with `with`. Knows its URL and its CPU time."""

    def __init__(self, variant: str, key: str, folder: Path) -> None:
        self.variant = variant
        self._log = tempfile.TemporaryFile(mode="w+", prefix=f"bench-{variant}-")  # noqa: SIM115 (closed in stop)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.servers", variant, str(folder / f"{variant}.sqlite3")],
            cwd=PROJECT_ROOT,
            env={**os.environ, KEY_ENV: key},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        line = self._read_announcement(START_TIMEOUT_SECONDS)
        if not line.startswith("READY "):
            log = self.log()
            self.stop()
            raise RuntimeError(f"the {variant!r} server did not start within {START_TIMEOUT_SECONDS} s:\n{log}")
        self.port = int(line.split()[1])
        self.url = f"http://{HOST}:{self.port}/mcp"

    def _read_announcement(self, timeout: float) -> str:
        """The child's first line, or "" if it exits or says nothing in time (never blocks forever)."""
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        return self._process.stdout.readline() if ready else ""

    @property
    def pid(self) -> int:
        return self._process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (all its threads), from /proc."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def stop(self) -> None:
        if self._process.stdin and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()  # only ever our own child, by its handle
            self._process.wait()
        if self._process.stdout:
            self._process.stdout.close()
        self._log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


if __name__ == "__main__":
    serve(*sys.argv[1:3])
