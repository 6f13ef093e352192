"""Session binding over real HTTP: a session belongs to the key that opened it.

The stateful path is driven by hand (an `initialize` with a handshake-era protocol
version, then requests carrying `mcp-session-id`), because that is where a session id
could be stolen and replayed. The SDK binds each session to `scope["user"]`, which our
middleware sets from the key, so another valid key gets exactly the 404 an unknown
session gets: it cannot even learn that the session exists.

The sessionless 2026-07-28 path has no session to steal; the official clients (the MCP
SDK's `Client` and the Agents SDK's `MCPServerStreamableHttp`) show that it works and
that every call is attributed to the key that made it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from agents.mcp import MCPServerStreamableHttp
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from lesson_code.app import create_secured_app
from lesson_code.audit import AuditLog
from lesson_code.background import BackgroundServer
from lesson_code.keys import KeyRing, create_key, revoke_key
from lesson_code.raw_requests import tool_call
from lesson_code.sse import json_message

pytestmark = pytest.mark.anyio

LEGACY_VERSION = HANDSHAKE_PROTOCOL_VERSIONS[-1]  # "2025-11-25": the newest version reached through initialize
SESSION = "mcp-session-id"


@dataclass
class Server:
    server: BackgroundServer
    key_file: Path
    alice: str
    bob: str
    audit: AuditLog

    @property
    def url(self) -> str:
        return self.server.mcp_url


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Server]:
    key_file = tmp_path / "keys.json"
    alice, _ = create_key(key_file, "alice")
    bob, _ = create_key(key_file, "bob")
    audit = AuditLog(tmp_path / "audit.jsonl")
    app = create_secured_app(KeyRing(key_file=key_file), tmp_path / "shop.sqlite3", audit=audit, throttle=None)
    with BackgroundServer(app, name=f"test-sessions-{tmp_path.name}") as server:
        yield Server(server, key_file, alice, bob, audit)


def message(response: httpx.Response) -> Any:
    """The JSON-RPC message in a response, whether sent as JSON or as one server-sent event."""
    event_stream = response.headers.get("content-type", "").startswith("text/event-stream")
    found = json_message(response.text, event_stream=event_stream)
    assert found is not None, f"no JSON-RPC message in {response.text[:200]!r}"
    return found


def headers(key: str | None, session: str | None = None, **extra: str) -> dict[str, str]:
    out = {"content-type": "application/json", "accept": "application/json, text/event-stream", **extra}
    if session is not None:
        out[SESSION] = session
        out["mcp-protocol-version"] = LEGACY_VERSION
    if key is not None:
        out["x-api-key"] = key
    return out


async def open_session(http: httpx.AsyncClient, url: str, key: str) -> str:
    """initialize + notifications/initialized, by hand; returns the session id the server issued."""
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "session-test", "version": "1"},
        },
    }
    response = await http.post(url, json=initialize, headers=headers(key))
    assert response.status_code == 200, response.text
    assert message(response)["result"]["protocolVersion"] == LEGACY_VERSION
    session = response.headers[SESSION]
    done = await http.post(
        url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers(key, session)
    )
    assert done.status_code == 202
    return session


def call(tool: str, arguments: dict[str, Any] | None = None, request_id: int = 2) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments or {}},
    }


def not_found(response: httpx.Response) -> tuple[int, Any]:
    return response.status_code, response.json()


async def test_another_key_cannot_use_a_session_and_cannot_tell_it_exists(served: Server) -> None:
    url = served.url
    async with httpx.AsyncClient(timeout=5) as http:
        session = await open_session(http, url, served.alice)
        nobody = uuid.uuid4().hex  # a session that does not exist

        stolen = await http.post(url, json=call("add_item", {"name": "stolen"}), headers=headers(served.bob, session))
        unknown = await http.post(url, json=call("add_item", {"name": "stolen"}), headers=headers(served.bob, nobody))
        assert not_found(stolen) == not_found(unknown)
        assert stolen.status_code == 404 and stolen.json()["error"]["message"] == "Session not found"
        assert stolen.json()["id"] is None and stolen.json()["jsonrpc"] == "2.0"

        stream = headers(served.bob, session, accept="text/event-stream")
        stolen_get = await http.get(url, headers=stream)
        unknown_get = await http.get(url, headers={**stream, SESSION: nobody})
        assert stolen_get.status_code == 404 and not_found(stolen_get) == not_found(unknown_get)

        stolen_delete = await http.delete(url, headers=headers(served.bob, session))
        unknown_delete = await http.delete(url, headers=headers(served.bob, nobody))
        assert stolen_delete.status_code == 404 and not_found(stolen_delete) == not_found(unknown_delete)

        # The session survived all of that, and still works for its owner.
        mine = await http.post(url, json=call("add_item", {"name": "tea"}), headers=headers(served.alice, session))
        assert mine.status_code == 200
        assert message(mine)["result"]["structuredContent"] == {"name": "tea", "quantity": 1}
    tools = [(e["key"], e["tool"]) for e in served.audit.entries() if e["event"] == "tool_call"]
    assert tools == [("alice", "add_item")]  # bob's attempts never reached a tool


async def test_a_session_id_alone_is_not_a_credential(served: Server) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        session = await open_session(http, served.url, served.alice)
        for send in (
            http.post(served.url, json=call("list_items"), headers=headers(None, session)),
            http.get(served.url, headers=headers(None, session, accept="text/event-stream")),
            http.delete(served.url, headers=headers(None, session)),
        ):
            response = await send
            assert response.status_code == 401
            assert response.json()["jsonrpc"] == "2.0" and response.json()["id"] is None
            assert session not in response.text
        assert (
            await http.post(served.url, json=call("list_items"), headers=headers(served.alice, session))
        ).status_code == 200


async def test_forged_and_huge_session_ids_are_refused_cleanly(served: Server) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        session = await open_session(http, served.url, served.alice)
        forged = await http.post(
            served.url, json=call("list_items"), headers=headers(served.alice, session[:-4] + "0000")
        )
        assert forged.status_code == 404 and forged.json()["error"]["message"] == "Session not found"

        huge = await http.post(served.url, json=call("list_items"), headers=headers(served.alice, "a" * 10_240))
        assert huge.status_code in (400, 404, 431)
        if huge.status_code == 431:  # our middleware's header limit: a JSON-RPC error like every refusal of ours
            assert huge.json()["jsonrpc"] == "2.0" and isinstance(huge.json()["error"]["code"], int)
        assert "a" * 100 not in huge.text

        # Still healthy, and the real session still works.
        assert (
            await http.post(served.url, json=call("list_items"), headers=headers(served.alice, session))
        ).status_code == 200


async def test_the_owner_can_end_a_session(served: Server) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        session = await open_session(http, served.url, served.alice)
        assert (await http.delete(served.url, headers=headers(served.alice, session))).status_code == 200
        after = await http.post(served.url, json=call("list_items"), headers=headers(served.alice, session))
    assert after.status_code == 404


async def test_revoking_the_key_ends_its_session_and_its_stream(served: Server) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=5)) as http:
        session = await open_session(http, served.url, served.alice)
        assert (
            await http.post(served.url, json=call("list_items"), headers=headers(served.alice, session))
        ).status_code == 200

        stream_ended = anyio.Event()
        stream_status: list[int] = []

        async def hold_stream() -> None:
            get = headers(served.alice, session, accept="text/event-stream")
            try:
                async with http.stream("GET", served.url, headers=get) as response:
                    stream_status.append(response.status_code)
                    async for _ in response.aiter_bytes():
                        pass
            except httpx.HTTPError:
                pass  # an abruptly ended stream is an ended stream
            finally:
                stream_ended.set()

        async with anyio.create_task_group() as group:
            group.start_soon(hold_stream)
            with anyio.fail_after(2):
                while not stream_status:
                    await anyio.sleep(0.02)
            assert stream_status == [200]

            revoke_key(served.key_file, "alice")
            started = time.monotonic()
            status = 200
            while status == 200 and time.monotonic() - started < 3:  # bounded
                response = await http.post(served.url, json=call("list_items"), headers=headers(served.alice, session))
                status = response.status_code
                await anyio.sleep(0.05)
            assert status == 401 and time.monotonic() - started < 2.0
            with anyio.fail_after(3):  # the open stream is cut too, not left running for the old key
                await stream_ended.wait()

        # Bob was never affected.
        assert (await http.post(served.url, **tool_call("list_items", api_key=served.bob))).status_code == 200


async def test_sessionless_official_clients_act_only_as_themselves(served: Server) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        alice_session = await open_session(http, served.url, served.alice)
        mine = await http.post(
            served.url, json=call("add_item", {"name": "alice's tea"}), headers=headers(served.alice, alice_session)
        )
        assert mine.status_code == 200

    seen_sessions: list[str | None] = []

    async def record(response: httpx2.Response) -> None:
        seen_sessions.append(response.request.headers.get(SESSION))
        seen_sessions.append(response.headers.get(SESSION))

    # The MCP SDK's own client, sessionless (2026-07-28), with bob's key.
    bob_http = httpx2.AsyncClient(headers={"x-api-key": served.bob}, event_hooks={"response": [record]}, timeout=10)
    async with bob_http, Client(streamable_http_client(served.url, http_client=bob_http)) as client:
        added = await client.call_tool("add_item", {"name": "bob's bread"})
        assert not added.is_error and added.structured_content == {"name": "bob's bread", "quantity": 1}
        listed = await client.call_tool("list_items", {})
        assert not listed.is_error
    assert alice_session not in seen_sessions
    assert all(value is None for value in seen_sessions)  # no session was issued, none was sent

    # The Agents SDK's client, with bob's key as well.
    agents_client = MCPServerStreamableHttp(params={"url": served.url, "headers": {"x-api-key": served.bob}})
    async with agents_client:
        names = {tool.name for tool in await agents_client.list_tools()}
        assert "place_order" in names
        result = await agents_client.call_tool("list_items", {})
        assert not result.is_error

    calls = [(e["key"], e["tool"]) for e in served.audit.entries() if e["event"] == "tool_call"]
    assert calls[0] == ("alice", "add_item")
    assert calls[1:] == [("bob", "add_item"), ("bob", "list_items"), ("bob", "list_items")]
