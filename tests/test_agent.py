"""End-to-end tests for the shopping agent against a real MCP server over HTTP.

The server here is a deliberately tiny stand-in (five tools over a dict that return the
shopping server's own result shapes, behind a pure-ASGI API-key check that answers like the
lesson's server: HTTP 401 with a JSON-RPC error body), so these tests pin down the client's
behaviour on their own: the calls the agent makes, the events it reports, and the single,
readable exception a refused or absent MCP server, or model endpoint, produces.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from agents import OpenAIResponsesModel, RunContextWrapper
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from lesson_code.agent import (
    DEFAULT_QUERY,
    AgentEvent,
    AgentRunError,
    KeyRejectedError,
    ModelRefusedError,
    ModelUnreachableError,
    ServerThrottledError,
    ServerUnreachableError,
    choose_model,
    connect_shopping_server,
    raise_on_auth_failure,
    run_shopping_query,
)
from lesson_code.background import BackgroundServer
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
        order = {"order_id": f"ord-{len(shop.orders) + 1}", "placed_at": "2026-01-01T00:00:00Z", "items": item_list()}
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


_names = itertools.count()


@pytest.fixture
def start_shop() -> Iterator[Any]:
    """Call it with a `Shop` to serve it on port 0 of loopback; stops every server at teardown."""
    running: list[BackgroundServer] = []

    def start(shop: Shop | None = None) -> Shop:
        shop = shop or Shop()
        server = BackgroundServer(build_app(shop), name=f"test-agent-{next(_names)}").start()
        running.append(server)
        shop.url = server.mcp_url
        return shop

    yield start
    for server in running:
        server.stop()


@pytest.fixture(autouse=True)
def no_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_MODEL", "OPENAI_BASE_URL", "COURSE_OFFLINE"):
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
    assert shop.orders == [{"order_id": "ord-1", "placed_at": "2026-01-01T00:00:00Z", "items": items}]
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
    model, description = choose_model()
    assert isinstance(model, OpenAIResponsesModel) and model.model == "gpt-4.1-mini"
    assert description == "OpenAI model gpt-4.1-mini"
    monkeypatch.setenv("OPENAI_MODEL", "gpt-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    model, description = choose_model()
    assert isinstance(model, OpenAIResponsesModel) and model.model == "gpt-test"
    assert description == "OpenAI model gpt-test via http://127.0.0.1:9/v1"
    other, _ = choose_model(model_name="other")
    assert isinstance(other, OpenAIResponsesModel) and other.model == "other"


def test_connect_shopping_server_puts_the_key_in_one_header() -> None:
    with_key = connect_shopping_server("http://127.0.0.1:1/mcp", "k", header="x-shop-key")
    assert with_key.params["headers"] == {"x-shop-key": "k"}
    assert with_key.cache_tools_list
    assert "headers" not in connect_shopping_server("http://127.0.0.1:1/mcp", None).params


def test_raise_on_auth_failure_only_raises_for_auth_errors() -> None:
    context = RunContextWrapper(context=None)
    with pytest.raises(KeyRejectedError, match="revoked"):
        raise_on_auth_failure(context, MCPError(-32011, "Unauthorized: key revoked"))
    with pytest.raises(KeyRejectedError, match="missing"):
        raise_on_auth_failure(context, MCPError(-32010, "Unauthorized: missing API key"))
    # Classified by type and code, not by wording: an ordinary error that says "Unauthorized" is the model's.
    assert raise_on_auth_failure(context, MCPError(-32603, "Unauthorized: a tool's own text")).startswith(
        "An error occurred"
    )
    assert raise_on_auth_failure(context, MCPError(-32603, "boom")).startswith("An error occurred")


def test_every_one_line_failure_shares_one_base_class() -> None:
    for error_type in (
        KeyRejectedError,
        ServerThrottledError,
        ServerUnreachableError,
        ModelUnreachableError,
        ModelRefusedError,
    ):
        assert issubclass(error_type, AgentRunError)
    error = ModelUnreachableError("http://127.0.0.1:9/v1", "no connection")
    assert error._render_traceback_() == [f"ModelUnreachableError: {error}"]  # what IPython shows: one line


# --- The model endpoint: unreachable or refusing the OpenAI key ------------------------------------


def _model_401_app() -> Starlette:
    """An OpenAI-compatible endpoint that refuses every key, as api.openai.com does (and echoes part of it)."""

    async def refuse(request: Request) -> JSONResponse:
        body = {"error": {"message": "Incorrect API key provided: sk-te***st.", "type": "invalid_request_error"}}
        body["error"]["code"] = "invalid_api_key"
        return JSONResponse(body, status_code=401)

    return Starlette(routes=[Route("/{path:path}", refuse, methods=["GET", "POST"])])


@pytest.fixture
def refusing_model_endpoint() -> Iterator[str]:
    with BackgroundServer(_model_401_app(), name=f"test-agent-model-401-{next(_names)}") as server:
        yield server.url + "/v1"


@pytest.fixture
def closed_model_endpoint() -> Iterator[str]:
    with socket.socket() as sock:  # bound but not listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def _assert_one_line(error: BaseException) -> None:
    assert "\n" not in str(error)
    assert error.__cause__ is None and error.__suppress_context__
    printed = "".join(traceback.format_exception(error))
    assert "APIConnectionError" not in printed and "AuthenticationError" not in printed


async def test_an_unreachable_model_endpoint_is_one_line(
    start_shop: Any, closed_model_endpoint: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    shop = start_shop()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("OPENAI_BASE_URL", closed_model_endpoint)
    with pytest.raises(ModelUnreachableError) as caught:
        await run_shopping_query(shop.url, GOOD_KEY, "show my list")

    message = str(caught.value)
    assert message.startswith(f"could not reach the model endpoint {closed_model_endpoint} (no connection)")
    assert message.endswith("or set COURSE_OFFLINE=1 to use the offline stand-in model, and restart")
    _assert_one_line(caught.value)
    assert capfd.readouterr().err == ""  # the SDK's own "Error streaming response" log line is not added


async def test_a_model_endpoint_refusing_the_openai_key_is_one_line(
    start_shop: Any, refusing_model_endpoint: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    shop = start_shop()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("OPENAI_BASE_URL", refusing_model_endpoint)
    with pytest.raises(ModelRefusedError) as caught:
        await run_shopping_query(shop.url, GOOD_KEY, "show my list")

    assert str(caught.value) == (
        f"the model endpoint {refusing_model_endpoint} refused OPENAI_API_KEY (401: invalid_api_key): "
        "check OPENAI_API_KEY, or set COURSE_OFFLINE=1 to use the offline stand-in model, and restart"
    )
    assert caught.value.status == 401
    assert "sk-te" not in str(caught.value)  # the endpoint's message echoes part of the key; ours does not
    _assert_one_line(caught.value)
    assert capfd.readouterr().err == ""


async def test_course_offline_wins_over_an_openai_key(
    start_shop: Any, closed_model_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = start_shop()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("OPENAI_BASE_URL", closed_model_endpoint)
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    result = await run_shopping_query(shop.url, GOOD_KEY, "show my list")
    assert result.model_description == "offline stand-in model (COURSE_OFFLINE=1)"
    assert result.answer == f"{ANSWER_MARKER}Your list is empty."


def _demo(env_changes: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("OPENAI_MODEL", "COURSE_OFFLINE")}
    env.update(env_changes, OPENAI_AGENTS_DISABLE_TRACING="1")
    command = [sys.executable, "-m", "lesson_code", "demo", "--query", "show my list"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=90, check=False)


@pytest.mark.parametrize("endpoint", ["closed", "refusing"])
def test_the_cli_demo_reports_a_failing_model_endpoint_in_one_line(
    endpoint: str, closed_model_endpoint: str, refusing_model_endpoint: str
) -> None:
    base_url = closed_model_endpoint if endpoint == "closed" else refusing_model_endpoint
    finished = _demo({"OPENAI_API_KEY": "sk-test-not-a-real-key", "OPENAI_BASE_URL": base_url})

    assert finished.returncode == 1, finished.stdout + finished.stderr
    assert "Traceback" not in finished.stderr
    lines = finished.stderr.strip().splitlines()
    expected = "could not reach the model endpoint" if endpoint == "closed" else "refused OPENAI_API_KEY (401"
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], finished.stderr
    assert "COURSE_OFFLINE=1" in lines[0]


async def test_the_agent_console_shows_a_failing_model_endpoint_in_one_line(
    start_shop: Any, closed_model_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lesson_code.widgets import AgentConsole

    shop = start_shop()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("OPENAI_BASE_URL", closed_model_endpoint)
    transcript = await AgentConsole(shop.url, GOOD_KEY).run("show my list")
    failures = [line for line in transcript.splitlines() if line.startswith("✗")]
    assert failures == [
        f"✗ could not reach the model endpoint {closed_model_endpoint} (no connection): check the network or "
        "OPENAI_BASE_URL, or set COURSE_OFFLINE=1 to use the offline stand-in model, and restart"
    ]
