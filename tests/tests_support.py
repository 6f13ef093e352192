"""How tests run the course's programs: the CLI as a user types it, and the CLI server as a subprocess.

There is one way to run `python -m lesson_code serve` for a test, `Served`; in-process
servers use `lesson_code.background.BackgroundServer`. Both bind port 0 and read back
the port the system chose, so no test picks a "free" port and races another process
for it: `Served` passes `--port 0` and reads the URL the server prints.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx

PROJECT = Path(__file__).resolve().parents[1]

ENV = {**os.environ, "OPENAI_AGENTS_DISABLE_TRACING": "1", "PYTHONUNBUFFERED": "1"}
ENV.pop("OPENAI_API_KEY", None)
ENV.pop("MCP_API_KEYS", None)

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
_ANNOUNCED_URL = re.compile(r"MCP server at (\S+/mcp)\b")


def cli(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    cwd: Path | None = None,
    preexec_fn: Callable[[], object] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m lesson_code ARGS`, run to the end, its output captured as text.

    `preexec_fn` runs in the child before the program starts (a lowered `ulimit`, say).
    """
    return subprocess.run(
        [sys.executable, "-m", "lesson_code", *args],
        capture_output=True,
        text=True,
        env=env or ENV,
        timeout=timeout,
        cwd=cwd,
        preexec_fn=preexec_fn,
    )


def new_key(keys_file: Path, name: str = "alice", role: str = "shopper") -> str:
    """A new key from `keys new`, checked for its documented shape."""
    result = cli("keys", "new", "--name", name, "--role", role, "--keys-file", str(keys_file))
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert re.fullmatch(r"sk-mcp-[A-Za-z0-9_-]{43}", key)
    return key


class Served:
    """`python -m lesson_code serve --port 0 ARGS` in a subprocess, ready when the constructor returns.

    Its stdout and stderr go to files (a full pipe would block a chatty server), so a
    test can read what the server wrote so far with `output()`. `stop()` sends SIGTERM
    and returns (exit status, stdout, stderr); use it as a context manager to be sure
    the process ends however the test does.
    """

    def __init__(
        self,
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        logs: Path | None = None,
        timeout: float = START_TIMEOUT_SECONDS,
        preexec_fn: Callable[[], object] | None = None,
    ) -> None:
        """Start the server; `preexec_fn` runs in the child before `serve` (e.g. to lower `ulimit -n`)."""
        self._own_logs = tempfile.TemporaryDirectory(prefix="served-") if logs is None else None
        self.logs = Path(self._own_logs.name) if self._own_logs else logs
        assert self.logs is not None
        self.logs.mkdir(parents=True, exist_ok=True)
        self.stdout_path = self.logs / "stdout.log"
        self.stderr_path = self.logs / "stderr.log"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lesson_code", "serve", "--port", "0", *args],
                stdout=out,
                stderr=err,
                env=env or ENV,
                cwd=cwd,
                preexec_fn=preexec_fn,
            )
        try:
            self.url = self._wait_for_url(timeout)
            self.base_url = self.url.removesuffix("/mcp")
            self.port = httpx.URL(self.url).port
            self._wait_until_healthy(timeout)
        except BaseException:
            self.kill()
            raise

    def output(self) -> tuple[str, str]:
        """What the server wrote so far: (stdout, stderr)."""
        return (
            self.stdout_path.read_text(encoding="utf-8", errors="replace"),
            self.stderr_path.read_text(encoding="utf-8", errors="replace"),
        )

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str, str]:
        """Send `sig` (SIGTERM: a clean shutdown), wait, and return (exit status, stdout, stderr)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            status = self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the server did not stop within {STOP_TIMEOUT_SECONDS:g} s of {sig.name}") from None
        out, err = self.output()
        self._cleanup()
        return status, out, err

    def kill(self) -> None:
        """SIGKILL and reap: no shutdown at all, as a power cut to the process."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def __enter__(self) -> Served:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process.poll() is None:
            self.stop()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._own_logs is not None:
            self._own_logs.cleanup()
            self._own_logs = None

    def _wait_for_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            found = _ANNOUNCED_URL.search(self.output()[0])
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                raise AssertionError(f"`serve` exited with status {self.process.returncode}: {self.output()[1]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"`serve` printed no URL within {timeout:g} s: {self.output()}")
            time.sleep(0.02)

    def _wait_until_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.base_url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise AssertionError(f"`serve` exited with status {self.process.returncode}: {self.output()[1]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"`serve` did not answer /health within {timeout:g} s")
            time.sleep(0.02)
