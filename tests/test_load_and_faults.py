"""Under load and under a crash, every acknowledged write is there exactly once, and nothing else is.

Load: eight clients with their own keys add distinct items concurrently through real
MCP tool calls while four attackers hammer the same server with bad keys. Fault: the
CLI server (`python -m lesson_code serve`) is killed with SIGKILL in the middle of a
stream of writes and restarted on the same database; every write it acknowledged must
have survived. Every loop here is bounded in count and in time.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import anyio
import httpx
import pytest
from tests_support import Served, new_key

from lesson_code.app import create_secured_app
from lesson_code.audit import AuditLog
from lesson_code.background import BackgroundServer
from lesson_code.keys import KeyRing, generate_key
from lesson_code.raw_requests import tool_call
from lesson_code.store import ShoppingStore

pytestmark = pytest.mark.anyio

CLIENTS = 8
ITEMS_PER_CLIENT = 12
ATTACKERS = 4
MAX_ATTACKS_EACH = 400
DEADLINE_SECONDS = 30


def quantity_for(client: int, item: int) -> int:
    return (client + item) % 5 + 1


async def test_concurrent_clients_under_attack_lose_nothing_and_gain_nothing(tmp_path: Path) -> None:
    keys = {f"client-{i}": generate_key() for i in range(CLIENTS)}
    audit = AuditLog()
    # No throttle: over loopback every client, honest or not, is 127.0.0.1, so a throttle would lock the
    # honest clients out together with the attackers (by design: see throttle.py). Throttling has its own tests.
    app = create_secured_app(KeyRing.from_keys(keys), tmp_path / "shop.sqlite3", audit=audit, throttle=None)
    acknowledged: dict[str, int] = {}
    valid_statuses: Counter[int] = Counter()
    attack_statuses: Counter[int] = Counter()
    honest_done = anyio.Event()

    async def honest(index: int, http: httpx.AsyncClient, url: str) -> None:
        key = keys[f"client-{index}"]
        for item in range(ITEMS_PER_CLIENT):
            name, quantity = f"c{index}-item{item}", quantity_for(index, item)
            response = await http.post(url, **tool_call("add_item", {"name": name, "quantity": quantity}, api_key=key))
            valid_statuses[response.status_code] += 1
            if response.status_code == 200:
                result = response.json()["result"]
                assert result["isError"] is False, result
                assert result["structuredContent"] == {"name": name, "quantity": quantity}
                acknowledged[name] = quantity

    async def attacker(index: int, http: httpx.AsyncClient, url: str) -> None:
        for attempt in range(MAX_ATTACKS_EACH):
            if honest_done.is_set():
                return
            name = f"evil-{index}-{attempt}"
            wrong = generate_key() if attempt % 2 else keys["client-0"][:-1] + "x"
            response = await http.post(url, **tool_call("add_item", {"name": name}, api_key=wrong))
            attack_statuses[response.status_code] += 1

    with BackgroundServer(app, name="test-load") as server:
        limits = httpx.Limits(max_connections=CLIENTS + ATTACKERS)
        async with httpx.AsyncClient(timeout=10, limits=limits) as http:
            with anyio.fail_after(DEADLINE_SECONDS):
                async with anyio.create_task_group() as attackers:
                    for i in range(ATTACKERS):
                        attackers.start_soon(attacker, i, http, server.mcp_url)
                    async with anyio.create_task_group() as clients:
                        for i in range(CLIENTS):
                            clients.start_soon(honest, i, http, server.mcp_url)
                    honest_done.set()

    assert valid_statuses == {200: CLIENTS * ITEMS_PER_CLIENT}
    assert attack_statuses and set(attack_statuses) == {401}
    snapshot = app.store.snapshot()
    on_the_list = Counter(item["name"] for item in snapshot["items"])
    assert all(count == 1 for count in on_the_list.values())
    assert {item["name"]: item["quantity"] for item in snapshot["items"]} == acknowledged
    assert len(acknowledged) == CLIENTS * ITEMS_PER_CLIENT
    assert snapshot["orders"] == []
    calls = Counter(entry["key"] for entry in audit.entries() if entry["event"] == "tool_call")
    assert calls == {name: ITEMS_PER_CLIENT for name in keys}  # each call is attributed to its own key
    app.store.close()


# ---- a crash in the middle of writes --------------------------------------------------------------


SERVE_ARGS = ("--keys-file", "keys.json", "--db", "shop.sqlite3", "--audit-log", "audit.jsonl")


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    folder = tmp_path
    key = new_key(folder / "keys.json", name="t")

    first = Served(*SERVE_ARGS, cwd=folder, logs=folder / "first")
    url = first.url

    acknowledged: list[str] = []
    attempted: list[str] = []
    killed = anyio.Event()

    async def writer(index: int, http: httpx.AsyncClient) -> None:
        for n in range(300):
            if killed.is_set():
                return
            name = f"w{index}-{n}"
            attempted.append(name)
            try:
                response = await http.post(url, **tool_call("add_item", {"name": name}, api_key=key))
            except httpx.TransportError:
                return  # the server is gone: this write may or may not have happened, it was not acknowledged
            if response.status_code == 200 and response.json()["result"]["isError"] is False:
                acknowledged.append(name)

    async def killer() -> None:
        with anyio.move_on_after(15):
            while len(acknowledged) < 30:
                await anyio.sleep(0.005)
        first.kill()  # SIGKILL: no shutdown, no flush, no checkpoint, as a power cut to the process
        killed.set()

    try:
        async with httpx.AsyncClient(timeout=5) as http:
            with anyio.fail_after(DEADLINE_SECONDS):
                async with anyio.create_task_group() as group:
                    for i in range(4):
                        group.start_soon(writer, i, http)
                    group.start_soon(killer)
    finally:
        first.kill()
    assert first.process.returncode == -signal.SIGKILL
    assert len(acknowledged) >= 30, "the server should have acknowledged writes before it was killed"

    # Restart on the same database and look through the server itself.
    with Served(*SERVE_ARGS, cwd=folder, logs=folder / "second") as second:
        async with httpx.AsyncClient(timeout=5) as http:
            listed = await http.post(second.url, **tool_call("list_items", api_key=key))
        assert listed.status_code == 200
        items = {item["name"]: item["quantity"] for item in listed.json()["result"]["structuredContent"]["items"]}

    missing = [name for name in acknowledged if name not in items]
    assert not missing, f"acknowledged but lost: {missing}"
    assert all(items[name] == 1 for name in acknowledged)
    assert set(items) <= set(attempted)  # nothing appeared that nobody asked for
    with ShoppingStore(folder / "shop.sqlite3") as store:  # and the file itself agrees
        assert {item["name"] for item in store.list_items()} == set(items)
