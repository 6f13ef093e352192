"""A classroom never locks itself out: 30 learners behind one address, one of them mistyping a key 25 times.

Over real HTTP (all clients are 127.0.0.1, as behind a classroom's NAT or a JupyterHub):
the 29 learners with valid keys get 200 throughout; the one with a wrong key gets 401
until the throttle's limit, then 429 with Retry-After. The audit log shows every
allowed request and aggregates the throttled ones.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from lesson_code import errors
from lesson_code.app import create_secured_app
from lesson_code.audit import AuditLog
from lesson_code.background import BackgroundServer
from lesson_code.keys import KeyRing, generate_key
from lesson_code.raw_requests import list_tools
from lesson_code.throttle import FailedAttemptThrottle

pytestmark = pytest.mark.anyio

LEARNERS = 29
ATTEMPTS = 25
MAX_FAILURES = 20


async def test_one_learners_wrong_key_never_locks_out_the_other_29(tmp_path: Path) -> None:
    keys = {f"learner-{n}": generate_key() for n in range(LEARNERS)}
    audit = AuditLog(tmp_path / "audit.jsonl")
    throttle = FailedAttemptThrottle(MAX_FAILURES, 60)
    app = create_secured_app(KeyRing.from_keys(keys), tmp_path / "shop.sqlite3", audit=audit, throttle=throttle)
    served: dict[str, list[int]] = {name: [] for name in keys}
    mistyped: list[httpx.Response] = []
    wrong_key = generate_key()

    with BackgroundServer(app, name="test-classroom") as server:
        clients = {name: httpx.AsyncClient(timeout=10) for name in [*keys, "mistyper"]}
        try:

            async def learner(name: str) -> None:
                response = await clients[name].post(server.mcp_url, **list_tools(api_key=keys[name]))
                served[name].append(response.status_code)

            async def mistyper() -> None:
                mistyped.append(await clients["mistyper"].post(server.mcp_url, **list_tools(api_key=wrong_key)))

            with anyio.fail_after(120):
                for _ in range(ATTEMPTS):  # every round: one wrong attempt while all 29 others work
                    async with anyio.create_task_group() as group:
                        group.start_soon(mistyper)
                        for name in keys:
                            group.start_soon(learner, name)
        finally:
            for client in clients.values():
                await client.aclose()
    audit.close()

    assert all(statuses == [200] * ATTEMPTS for statuses in served.values()), served
    statuses = [r.status_code for r in mistyped]
    assert statuses == [401] * MAX_FAILURES + [429] * (ATTEMPTS - MAX_FAILURES)
    for response in mistyped[MAX_FAILURES:]:
        assert 0 < int(response.headers["retry-after"]) <= 60
        assert response.json()["error"]["code"] == errors.TOO_MANY_FAILED_ATTEMPTS

    entries = audit.entries()
    assert sum(e.get("outcome") == "allowed" for e in entries) == LEARNERS * ATTEMPTS
    assert sum(e.get("outcome") == "invalid" for e in entries) == MAX_FAILURES
    throttled = [e for e in entries if e.get("outcome") == "throttled"]
    assert len(throttled) == 2 and sum(e.get("count", 1) for e in throttled) == ATTEMPTS - MAX_FAILURES
