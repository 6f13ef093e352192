"""Helpers the CLI tests share: run `python -m lesson_code` as a user would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from lesson_code.background import free_port

PROJECT = Path(__file__).resolve().parents[1]

ENV = {**os.environ, "OPENAI_AGENTS_DISABLE_TRACING": "1", "PYTHONUNBUFFERED": "1"}
ENV.pop("OPENAI_API_KEY", None)
ENV.pop("MCP_API_KEYS", None)


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lesson_code", *args], capture_output=True, text=True, env=env or ENV, timeout=timeout
    )


def new_key(keys_file: Path, name: str = "alice", role: str = "shopper") -> str:
    result = cli("keys", "new", "--name", name, "--role", role, "--keys-file", str(keys_file))
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert re.fullmatch(r"sk-mcp-[A-Za-z0-9_-]{43}", key)
    return key


class Served:
    """`python -m lesson_code serve` in a subprocess, stopped with SIGTERM."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lesson_code", "serve", "--port", str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
        )
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        deadline = time.monotonic() + 20
        while True:
            assert self.process.poll() is None, self.process.communicate()
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1)
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)

    def stop(self) -> tuple[int, str, str]:
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=15)
        return self.process.returncode, out, err


