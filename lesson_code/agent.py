"""The shopping agent: an OpenAI Agents SDK agent that uses the MCP server with an API key.

Why this module exists: it is the client half of the lesson. It shows where the key goes
(one HTTP header on every MCP request) and, just as important, what the caller sees when
the server refuses it. Out of the box the SDKs make a refused key hard to read:

* at connect time a 401 surfaces as an `ExceptionGroup` (nested task groups) wrapping an
  `mcp.shared.exceptions.MCPError` that holds the server's JSON-RPC error, not the status;
* in the middle of a run (say the key is revoked), the Agents SDK turns the failed tool
  call into text for the model ("An error occurred while running the tool..."), and the
  model may apologise, retry, or carry on as if nothing happened.

Here both become one plain `KeyRejectedError` carrying the server's message, and a server
that is not there becomes `ServerUnreachableError`. Other tool failures still go back to
the model as usual, which is what you want for "that item is not on your list".

With `OPENAI_API_KEY` set the agent uses a real OpenAI model (`OPENAI_MODEL`, default
gpt-4.1-mini; `OPENAI_BASE_URL` is honoured by the SDK's default client). Without it, it
uses `OfflineShoppingModel`, so every learner can run the whole flow offline.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import httpx2
from agents import Agent, Model, RunConfig, RunContextWrapper, Runner, default_tool_error_function
from agents.exceptions import UserError
from agents.items import ToolCallItem, ToolCallOutputItem
from agents.mcp import MCPServer, MCPServerStreamableHttp, MCPServerStreamableHttpParams
from mcp.shared.exceptions import MCPError

from lesson_code.errors import INVALID_API_KEY, MISSING_API_KEY
from lesson_code.offline_model import OfflineShoppingModel, parse_tool_output

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_QUERY",
    "INSTRUCTIONS",
    "AgentEvent",
    "AgentRunResult",
    "KeyRejectedError",
    "ServerUnreachableError",
    "build_agent",
    "choose_model",
    "connect_shopping_server",
    "raise_on_auth_failure",
    "run_shopping_query",
]

DEFAULT_QUERY: Final = "Add 2 apples, a loaf of bread and milk to my list, show me the list, then place the order."
DEFAULT_MODEL: Final = "gpt-4.1-mini"
INSTRUCTIONS: Final = (
    "You are a shopping assistant. Use the tools to change and show the user's shopping list and to "
    "place and list orders. Do exactly what the user asks, in order. Report what the tools returned "
    "(the items on the list, the order id); never invent results. If a tool fails, say so plainly."
)

AUTH_ERROR_CODES: Final = frozenset({MISSING_API_KEY, INVALID_API_KEY})
HTTP_TIMEOUT_SECONDS: Final = 10.0
# The offline model makes one tool call per turn; the SDK's default of 10 turns would cut
# a request for more than nine steps short.
MAX_TURNS: Final = 25


class KeyRejectedError(RuntimeError):
    """The MCP server refused the API key (HTTP 401): missing, wrong, or revoked."""

    def __init__(self, server_message: str, *, code: int | None = None) -> None:
        super().__init__(f"the MCP server rejected the API key (401): {server_message}")
        self.server_message = server_message
        self.code = code


class ServerUnreachableError(RuntimeError):
    """No MCP server answered at the URL (connection refused, unknown host, timeout)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"could not reach the MCP server at {url}: {reason} — is it running?")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class AgentEvent:
    """Something that happened during a run, in the order it happened.

    `tool_call`: `tool` is the tool's name, `text` its arguments as JSON.
    `tool_result`: `tool` is the tool's name, `text` a short form of what it returned.
    `answer`: `tool` is None, `text` is the agent's final answer.
    """

    kind: Literal["tool_call", "tool_result", "answer"]
    tool: str | None
    text: str

    def line(self) -> str:
        """One readable line: `→ add_item(name='apples', quantity=2)`, `  ← {...}` or `answer: ...`."""
        if self.kind == "tool_call":
            return f"→ {_call_signature(self.tool, self.text)}"
        if self.kind == "tool_result":
            return f"  ← {self.text}"
        return f"answer: {self.text}"


MAX_ARGUMENT_CHARS: Final = 60


def _call_signature(tool: str | None, arguments_json: str) -> str:
    """`add_item(name='apples', quantity=2)` from a tool name and its JSON arguments."""
    try:
        arguments = json.loads(arguments_json or "{}")
    except ValueError:
        arguments = arguments_json
    if isinstance(arguments, dict):
        shown = ", ".join(f"{name}={_short(repr(value))}" for name, value in arguments.items())
    else:
        shown = _short(str(arguments))
    return f"{tool or '?'}({shown})"


def _short(text: str) -> str:
    return text if len(text) <= MAX_ARGUMENT_CHARS else text[: MAX_ARGUMENT_CHARS - 1] + "…"


@dataclass
class AgentRunResult:
    """What a run produced: the answer, every tool call in order, and which model answered."""

    answer: str
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    model_description: str = ""


def choose_model(*, model_name: str | None = None) -> tuple[Model | str, str]:
    """The model to use and a one-line description of it, for printing.

    A real OpenAI model when `OPENAI_API_KEY` is set; a model *name* is enough, because the
    SDK's default provider builds its `AsyncOpenAI` client with `OPENAI_BASE_URL` when set.
    Otherwise the deterministic offline stand-in.
    """
    if not os.environ.get("OPENAI_API_KEY"):
        return OfflineShoppingModel(), "offline stand-in model (no OPENAI_API_KEY)"
    name = model_name or os.environ.get("OPENAI_MODEL") or DEFAULT_MODEL
    base_url = os.environ.get("OPENAI_BASE_URL")
    return name, f"OpenAI model {name}" + (f" via {base_url}" if base_url else "")


def connect_shopping_server(
    url: str, key: str | None, *, header: str = "x-api-key", ca_file: str | Path | None = None
) -> MCPServerStreamableHttp:
    """An MCP client for the shopping server that sends `key` in `header` on every request.

    Use it with `async with`. With `key=None` no key header is sent at all (to show the
    server refusing anonymous callers). Auth failures during tool calls raise
    `KeyRejectedError` instead of becoming text for the model (see `raise_on_auth_failure`).
    `ca_file` makes an `https://` connection trust that CA (e.g. the course's development CA)
    and nothing else, with hostname checks on.
    """
    params: MCPServerStreamableHttpParams = {"url": url, "timeout": HTTP_TIMEOUT_SECONDS}
    if key is not None:
        params["headers"] = {header: key}
    if ca_file is not None:
        params["httpx_client_factory"] = _client_factory_trusting(ca_file)
    return MCPServerStreamableHttp(
        params=params,
        cache_tools_list=True,
        client_session_timeout_seconds=HTTP_TIMEOUT_SECONDS,
        failure_error_function=raise_on_auth_failure,
    )


def _client_factory_trusting(ca_file: str | Path) -> Callable[..., httpx2.AsyncClient]:
    """An HTTP client factory for the MCP SDK (v2 takes httpx2 clients) that trusts only `ca_file`."""
    context = ssl.create_default_context(cafile=str(ca_file))

    def factory(
        headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None, auth: httpx2.Auth | None = None
    ) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, verify=context)

    return factory


def build_agent(mcp_server: MCPServer, model: Model | str) -> Agent:
    """The shopping assistant: instructions, a model, and the MCP server's tools."""
    return Agent(
        name="Shopping assistant",
        instructions=INSTRUCTIONS,
        model=model,
        mcp_servers=[mcp_server],
        # Also applies to MCP servers created elsewhere; a server's own setting wins.
        mcp_config={"failure_error_function": raise_on_auth_failure},
    )


def raise_on_auth_failure(context: RunContextWrapper[Any], error: Exception) -> str:
    """A tool-failure handler that makes auth failures fatal and leaves the rest to the model.

    The Agents SDK calls this when an MCP tool call raises. By default every failure becomes
    a message for the model; a 401 would then be quietly "handled". Raising here stops the run.
    """
    rejected = _key_rejection(error)
    if rejected is not None:
        raise rejected
    return default_tool_error_function(context, error)


async def run_shopping_query(
    url: str,
    key: str | None,
    query: str = DEFAULT_QUERY,
    *,
    model: Model | str | None = None,
    on_event: Callable[[AgentEvent], None] | None = None,
    ca_file: str | Path | None = None,
) -> AgentRunResult:
    """Connect with `key`, run the agent on `query`, and report each step through `on_event`.

    Raises `KeyRejectedError` (missing, wrong, or revoked key) or `ServerUnreachableError`,
    each as a single exception rather than an `ExceptionGroup` or an SDK wrapper.
    """
    if model is None:
        model, description = choose_model()
    else:
        description = _describe(model)
    emit = on_event or _ignore
    tool_calls: list[tuple[str, dict[str, Any]]] = []
    tool_names: dict[str, str] = {}
    try:
        async with connect_shopping_server(url, key, ca_file=ca_file) as server:
            run = Runner.run_streamed(
                build_agent(server, model),
                query,
                max_turns=MAX_TURNS,
                # Traces are exported with OPENAI_API_KEY; without one, don't try (or warn).
                run_config=RunConfig(tracing_disabled=not os.environ.get("OPENAI_API_KEY")),
            )
            async for event in run.stream_events():
                if event.type != "run_item_stream_event":
                    continue
                item = event.item
                if isinstance(item, ToolCallItem):
                    name, arguments = item.tool_name or "?", _arguments(item.raw_item)
                    tool_names[item.call_id or ""] = name
                    tool_calls.append((name, arguments))
                    emit(AgentEvent("tool_call", name, json.dumps(arguments, ensure_ascii=False)))
                elif isinstance(item, ToolCallOutputItem):
                    emit(AgentEvent("tool_result", tool_names.get(item.call_id or ""), _short_result(item.output)))
            answer = str(run.final_output)
    except Exception as error:
        translated = _translate(error, url)
        if translated is None:
            raise
        raise translated from None
    emit(AgentEvent("answer", None, answer))
    return AgentRunResult(answer=answer, tool_calls=tool_calls, model_description=description)


# --- Turning SDK errors into the two errors a learner can act on ---------------------


def _translate(error: BaseException, url: str) -> Exception | None:
    """`KeyRejectedError` or `ServerUnreachableError` for `error`, or None to re-raise it."""
    causes = list(_causes(error))
    for cause in causes:
        if isinstance(cause, KeyRejectedError):
            # A fresh instance, so the traceback starts here rather than deep in the SDK.
            return KeyRejectedError(cause.server_message, code=cause.code)
        if (rejected := _key_rejection(cause)) is not None:
            return rejected
    for cause in causes:
        if (reason := _unreachable_reason(cause)) is not None:
            if url.startswith("https://") and reason.startswith("the connection failed"):
                reason += "; or its TLS certificate is not trusted here (pass ca_file=...)"
            return ServerUnreachableError(url, reason)
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """`error`, the members of exception groups, and their explicit or implicit causes."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        if current.__cause__ is not None:
            pending.append(current.__cause__)
        elif current.__context__ is not None and not current.__suppress_context__:
            pending.append(current.__context__)


def _key_rejection(error: BaseException) -> KeyRejectedError | None:
    """A `KeyRejectedError` if `error` is the server refusing authentication.

    The MCP client keeps the JSON-RPC error from the 401 body but drops the status, so we
    recognise our server's auth codes, or any server's message that starts "Unauthorized".
    """
    if not isinstance(error, MCPError):
        return None
    if error.code in AUTH_ERROR_CODES or error.message.startswith("Unauthorized"):
        return KeyRejectedError(error.message, code=error.code)
    return None


def _unreachable_reason(error: BaseException) -> str | None:
    """Why the server could not be reached, if that is what `error` says.

    The Agents SDK replaces transport errors with a `UserError` and deliberately drops the
    cause (it may hold the URL's credentials), so its message is all there is to go on.
    """
    if isinstance(error, ConnectionError):
        return "the connection was refused"
    if isinstance(error, UserError):
        message = str(error)
        if "Could not reach the server" in message:
            return "the connection failed (nothing listening, or the host is unknown)"
        if message.startswith("Failed to connect") and "timeout" in message.lower():
            return "the connection timed out"
        if message.startswith("Failed to connect"):
            return "no MCP server answered there (a wrong URL, or http:// to an https:// server?)"
    return None


# --- Small helpers -------------------------------------------------------------------


def _describe(model: Model | str) -> str:
    if isinstance(model, str):
        return f"OpenAI model {model}"
    if isinstance(model, OfflineShoppingModel):
        return "offline stand-in model"
    return type(model).__name__


def _arguments(raw_item: Any) -> dict[str, Any]:
    text = raw_item.get("arguments") if isinstance(raw_item, dict) else getattr(raw_item, "arguments", None)
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {"arguments": text}
    return value if isinstance(value, dict) else {"arguments": value}


def _short_result(output: Any, limit: int = 200) -> str:
    value = parse_tool_output(output)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ignore(_event: AgentEvent) -> None:
    return None
