"""Refusing a request costs O(1) memory: a flood of refusals leaves the server's memory where it was.

Before refusals became values, the middleware raised the same module-level exception
instances again and again; each raise chained another traceback onto them, and each
traceback kept the refused request's frame alive, its scope and presented key included
(about 4.8 MB per 1,000 refusals, without bound). These tests fail on that code.
"""

from __future__ import annotations

import gc
import secrets
import time
import tracemalloc
from pathlib import Path
from typing import Any

import anyio
import httpx
from tests_support import ENV, Served

from lesson_code.audit import AuditLog
from lesson_code.auth import ApiKeyMiddleware
from lesson_code.keys import KeyRing, generate_key
from lesson_code.raw_requests import list_tools
from lesson_code.throttle import FailedAttemptThrottle

WARM_UP = 4_000
MEASURED = 12_000


async def inner_app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("a refused request must never reach the app")


def refused_scope(number: int) -> dict[str, Any]:
    """A fresh scope per request, with a fresh wrong key (or a malformed credential) in it."""
    wrong = f"sk-mcp-{secrets.token_urlsafe(32)}".encode()
    headers = [
        [(b"x-api-key", wrong)],
        [],
        [(b"authorization", b"Basic " + wrong)],
        [(b"x-api-key", wrong), (b"x-api-key", wrong)],
    ][number % 4]
    return {"type": "http", "method": "POST", "path": "/mcp", "headers": headers, "client": ("198.51.100.1", number)}


def test_20000_refusals_in_process_grow_traced_memory_by_less_than_1_mb() -> None:
    app = ApiKeyMiddleware(
        inner_app,
        KeyRing.from_keys({"alice": generate_key()}),
        throttle=FailedAttemptThrottle(10**9, 0.5),  # counts every failure, never throttles
        audit=AuditLog(memory_limit=200),  # its ring is full after the warm-up
    )
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def refuse(count: int) -> None:
        for number in range(count):
            await app(refused_scope(number), receive, send)

    anyio.run(refuse, 2_000)  # warm-up: the audit ring fills, caches settle
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        anyio.run(refuse, 20_000)
        time.sleep(0.6)  # let the throttle's window pass so its timestamps can expire on the next failure
        anyio.run(refuse, 1)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert set(statuses) == {401}
    assert grown < 1_000_000, f"20,000 refusals grew traced memory by {grown / 1e6:.1f} MB"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/PID/status")


def test_refusals_over_http_grow_the_servers_rss_by_less_than_50_kib_per_1000(tmp_path: Path) -> None:
    served = Served(
        "--keys-file", str(tmp_path / "none.json"), "--db", str(tmp_path / "shop.sqlite3"),
        "--audit-log", str(tmp_path / "audit.jsonl"),
        "--max-failures", "1000000000", "--failure-window", "1",  # the throttle counts but never answers 429
        env={**ENV, "MCP_API_KEYS": generate_key()},
    )  # fmt: skip
    deadline = time.monotonic() + 150
    with served, httpx.Client(timeout=10) as http:  # one keep-alive connection, like a scanner
        request = list_tools(api_key=None)

        def refuse(count: int) -> None:
            for number in range(count):
                headers = {**request["headers"], "x-api-key": f"sk-mcp-{secrets.token_urlsafe(32)}"}
                if number % 4 == 1:
                    del headers["x-api-key"]
                response = http.post(served.url, json=request["json"], headers=headers)
                assert response.status_code == 401
                assert time.monotonic() < deadline, "the flood took too long"

        refuse(WARM_UP)
        before = rss_kib(served.process.pid)
        refuse(MEASURED)
        after = rss_kib(served.process.pid)
    per_thousand = (after - before) / (MEASURED / 1000)
    assert per_thousand < 50, f"RSS grew {after - before} KiB over {MEASURED} refusals ({per_thousand:.0f} KiB/1,000)"
