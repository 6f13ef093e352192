"""End-to-end tests for the shopping agent against a real MCP server over HTTP.

The server here is a deliberately tiny stand-in (five tools over a dict, behind a pure-ASGI
API-key check that answers like the lesson's server: HTTP 401 with a JSON-RPC error body),
so these tests pin down the client's behaviour on their own: the calls the agent makes, the
events it reports, and the single, readable exception a refused or absent server produces.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from agents import RunContextWrapper
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from starlette.types import ASGIApp, Receive, Scope, Send

from lesson_code.agent import (
    DEFAULT_QUERY,
    AgentEvent,
    KeyRejectedError,
    ServerUnreachableError,
    choose_model,
    connect_shopping_server,
    raise_on_auth_failure,
    run_shopping_query,
)
from lesson_code.offline_model import ANSWER_MARKER, OfflineShoppingModel

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

pytestmark = pytest.mark.anyio

GOOD_KEY = "good-key"
ALL_TOOLS = frozenset({"add_item", "remove_item", "list_items", "place_order", "list_orders"})


@dataclass
class Shop:
    """The test server's state, visible to the test: data, the valid key, what arrived."""

    tools: frozenset[str] = ALL_TOOLS
    valid_key: str = GOOD_KEY
    revoke_key_after: str | None = None  # revoke the key once this tool has run
    items: dict[str, int] = field(default_factory=dict)
    orders: list[dict[str, Any]] = field(default_factory=list)
    keys_seen: list[str | None] = field(default_factory=list)
    url: str = ""


def build_app(shop: Shop) -> ASGIApp:
    """A fresh MCP app (its session manager runs once per app) behind an API-key check."""
    server = MCPServer("test-shop", log_level="WARNING")

    def done(tool: str) -> None:
        if tool == shop.revoke_key_after:
            shop.valid_key = "rotated-key"

    def item_list() -> list[dict[str, Any]]:
        return [{"name": name, "quantity": quantity} for name, quantity in shop.items.items()]

    def add_item(name: str, quantity: int = 1) -> dict[str, Any]:
        """Add an item to the shopping list."""
        shop.items[name] = shop.items.get(name, 0) + quantity
        done("add_item")
        return {"name": name, "quantity": shop.items[name]}

    def remove_item(name: str, quantity: int | None = None) -> dict[str, Any]:
        """Remove an item (or some of it) from the shopping list."""
        if name not in shop.items:
            raise ToolError(f"{name} is not on the list")
        left = 0 if quantity is None else max(shop.items[name] - quantity, 0)
        shop.items[name] = left
        if not left:
            del shop.items[name]
        return {"name": name, "quantity": left}

    def list_items() -> dict[str, Any]:
        """Show the shopping list."""
        return {"items": item_list()}

    def place_order() -> dict[str, Any]:
        """Order everything on the list."""
        order = {"order_id": f"ord-{len(shop.orders) + 1}", "items": item_list()}
        shop.orders.append(order)
        shop.items.clear()
        return order

    def list_orders() -> dict[str, Any]:
        """Show past orders."""
        return {"orders": shop.orders}

    for tool in (add_item, remove_item, list_items, place_order, list_orders):
        if tool.__name__ in shop.tools:
            server.tool()(tool)
    app = server.streamable_http_app()

    async def require_key(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        raw = dict(scope["headers"]).get(b"x-api-key")
        key = raw.decode() if raw is not None else None
        shop.keys_seen.append(key)
        if key == shop.valid_key:
            await app(scope, receive, send)
            return
        code, message = (
            (-32010, "Unauthorized: missing API key") if key is None else (-32011, "Unauthorized: invalid API key")
        )
        body = json.dumps({"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": None}).encode()
        headers = [(b"content-type", b"application/json"), (b"www-authenticate", b"ApiKey")]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return require_key


@pytest.fixture
def start_shop() -> Iterator[Any]:
    """Call it with a `Shop` to serve it on a free loopback port; stops every server at teardown."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(shop: Shop | None = None) -> Shop:
        shop = shop or Shop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(build_app(shop), log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 5
        while not server.started:
            assert time.monotonic() < deadline, "test server did not start"
            time.sleep(0.01)
        running.append((server, thread))
        shop.url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
        return shop

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_MODEL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


async def test_canonical_query_end_to_end(start_shop: Any) -> None:
    shop = start_shop()
    result = await run_shopping_query(shop.url, GOOD_KEY)

    assert result.tool_calls == [
        ("add_item", {"name": "apples", "quantity": 2}),
        ("add_item", {"name": "bread", "quantity": 1}),
        ("add_item", {"name": "milk", "quantity": 1}),
        ("list_items", {}),
        ("place_order", {}),
    ]
    items = [{"name": "apples", "quantity": 2}, {"name": "bread", "quantity": 1}, {"name": "milk", "quantity": 1}]
    assert shop.orders == [{"order_id": "ord-1", "items": items}]
    assert result.model_description == "offline stand-in model (no OPENAI_API_KEY)"
    assert result.answer.startswith(ANSWER_MARKER)
    assert "Placed order ord-1 for 2 × apples, 1 × bread and 1 × milk." in result.answer
    assert set(shop.keys_seen) == {GOOD_KEY}


async def test_events_arrive_in_order(start_shop: Any) -> None:
    shop = start_shop()
    events: list[AgentEvent] = []
    result = await run_shopping_query(shop.url, GOOD_KEY, "add 3 eggs, show my list", on_event=events.append)

    assert [(event.kind, event.tool) for event in events] == [
        ("tool_call", "add_item"),
        ("tool_result", "add_item"),
        ("tool_call", "list_items"),
        ("tool_result", "list_items"),
        ("answer", None),
    ]
    assert json.loads(events[0].text) == {"name": "eggs", "quantity": 3}
    assert events[3].text == '{"items": [{"name": "eggs", "quantity": 3}]}'
    assert events[-1].text == result.answer == f"{ANSWER_MARKER}Added 3 × eggs to your list. Your list: 3 × eggs."


async def test_wrong_key_raises_one_key_rejected_error(start_shop: Any) -> None:
    shop = start_shop()
    with pytest.raises(KeyRejectedError) as caught:
        await run_shopping_query(shop.url, "wrong-key", model=OfflineShoppingModel())

    error = caught.value
    assert str(error) == "the MCP server rejected the API key (401): Unauthorized: invalid API key"
    assert error.code == -32011
    assert error.__cause__ is None and error.__suppress_context__
    printed = "".join(traceback.format_exception(error))
    assert "ExceptionGroup" not in printed and "MCPError" not in printed
    assert shop.items == {} and shop.keys_seen and set(shop.keys_seen) == {"wrong-key"}


async def test_no_key_sends_no_header_and_is_rejected_as_missing(start_shop: Any) -> None:
    shop = start_shop()
    with pytest.raises(KeyRejectedError, match=r"\(401\): Unauthorized: missing API key$") as caught:
        await run_shopping_query(shop.url, None)

    assert caught.value.code == -32010
    assert shop.keys_seen and set(shop.keys_seen) == {None}


async def test_unreachable_server_raises_server_unreachable_error() -> None:
    with socket.socket() as sock:  # bound but not listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
        with pytest.raises(ServerUnreachableError) as caught:
            await run_shopping_query(url, GOOD_KEY)

    message = str(caught.value)
    assert message.startswith(f"could not reach the MCP server at {url}: ")
    assert message.endswith("— is it running?")
    assert caught.value.__suppress_context__


async def test_key_revoked_mid_run_fails_loudly(start_shop: Any) -> None:
    shop = start_shop(Shop(revoke_key_after="add_item"))
    events: list[AgentEvent] = []
    with pytest.raises(KeyRejectedError, match="invalid API key") as caught:
        await run_shopping_query(shop.url, GOOD_KEY, on_event=events.append)

    assert "UserError" not in "".join(traceback.format_exception(caught.value))

    assert shop.items == {"apples": 2}  # the first add ran; nothing after the 401 did
    assert shop.orders == []
    assert all(event.kind != "answer" for event in events)


async def test_other_tool_errors_go_back_to_the_model(start_shop: Any) -> None:
    shop = start_shop()
    result = await run_shopping_query(shop.url, GOOD_KEY, "remove the cheese, then place the order")

    assert result.tool_calls == [("remove_item", {"name": "cheese"})]
    assert "remove_item(name='cheese') failed: Error executing tool remove_item: cheese is not on the list" in (
        result.answer
    )
    assert result.answer.endswith("I stopped there and did not place the order.")


async def test_model_given_only_some_tools_says_which_are_missing(start_shop: Any) -> None:
    shop = start_shop(Shop(tools=frozenset({"list_items", "list_orders"})))
    result = await run_shopping_query(shop.url, GOOD_KEY, DEFAULT_QUERY)

    assert result.tool_calls == []
    assert "does not offer add_item and place_order to this key" in result.answer


def test_choose_model_without_an_openai_key_is_offline() -> None:
    model, description = choose_model()
    assert isinstance(model, OfflineShoppingModel)
    assert description == "offline stand-in model (no OPENAI_API_KEY)"


def test_choose_model_with_an_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert choose_model() == ("gpt-4.1-mini", "OpenAI model gpt-4.1-mini")
    monkeypatch.setenv("OPENAI_MODEL", "gpt-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert choose_model() == ("gpt-test", "OpenAI model gpt-test via http://127.0.0.1:9/v1")
    assert choose_model(model_name="other")[0] == "other"


def test_connect_shopping_server_puts_the_key_in_one_header() -> None:
    with_key = connect_shopping_server("http://127.0.0.1:1/mcp", "k", header="x-shop-key")
    assert with_key.params["headers"] == {"x-shop-key": "k"}
    assert with_key.cache_tools_list
    assert "headers" not in connect_shopping_server("http://127.0.0.1:1/mcp", None).params


def test_raise_on_auth_failure_only_raises_for_auth_errors() -> None:
    context = RunContextWrapper(context=None)
    with pytest.raises(KeyRejectedError, match="revoked"):
        raise_on_auth_failure(context, MCPError(-32011, "Unauthorized: key revoked"))
    with pytest.raises(KeyRejectedError):
        raise_on_auth_failure(context, MCPError(-32603, "Unauthorized: another server's wording"))
    assert raise_on_auth_failure(context, MCPError(-32603, "boom")).startswith("An error occurred")
