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
gpt-4.1-mini; `OPENAI_BASE_URL` is honoured by the SDK's default client). Without it, or
with `COURSE_OFFLINE=1`, it uses `OfflineShoppingModel`, so every learner can run the whole
flow offline. A model endpoint that cannot be reached or refuses the OpenAI key becomes
`ModelUnreachableError` or `ModelRefusedError`.

Every failure a learner can act on is an `AgentRunError` whose `str()` is one line saying
what happened and what to do, so a caller catches that one class.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import httpx2
import openai
from agents import (
    Agent,
    Model,
    OpenAIResponsesModel,
    RunConfig,
    RunContextWrapper,
    Runner,
    default_tool_error_function,
)
from agents.exceptions import UserError
from agents.items import ToolCallItem, ToolCallOutputItem
from agents.mcp import MCPServer, MCPServerStreamableHttp, MCPServerStreamableHttpParams
from mcp.shared.exceptions import MCPError

from lesson_code.errors import INVALID_API_KEY, MISSING_API_KEY, TOO_MANY_FAILED_ATTEMPTS
from lesson_code.masked_key import MaskedKey, revealed
from lesson_code.model_mode import OFFLINE_SWITCH, model_base_url, offline_reason
from lesson_code.offline_model import OfflineShoppingModel
from lesson_code.perf_startup import prepare_first_tool_call
from lesson_code.text import shorten
from lesson_code.tool_output import parse_tool_output

# The first tool call imports jsonschema, whose IRI checker would build a grammar we never use (~1 s):
# defer that grammar, and import jsonschema in the background meanwhile (lesson_code/perf_startup.py).
prepare_first_tool_call()

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_QUERY",
    "INSTRUCTIONS",
    "AgentEvent",
    "AgentRunError",
    "AgentRunResult",
    "KeyRejectedError",
    "ModelRefusedError",
    "ModelUnreachableError",
    "ServerThrottledError",
    "ServerUnreachableError",
    "build_agent",
    "choose_model",
    "connect_shopping_server",
    "raise_on_auth_failure",
    "run_shopping_query",
    "show_agent_errors_in_one_line",
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


class AgentRunError(RuntimeError):
    """A run could not go on, for a reason the user can act on; `str()` is one line saying what to do.

    In IPython and Jupyter it is shown as that one line, without a traceback.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class KeyRejectedError(AgentRunError):
    """The MCP server refused the API key (HTTP 401): missing, wrong, or revoked."""

    def __init__(self, server_message: str, *, code: int | None = None) -> None:
        super().__init__(f"the MCP server rejected the API key (401): {server_message}")
        self.server_message = server_message
        self.code = code


class ServerThrottledError(AgentRunError):
    """The MCP server refuses this address for a while (HTTP 429) after too many failed attempts."""

    def __init__(self, server_message: str) -> None:
        super().__init__(f"the MCP server refused the request (429): {server_message} Use a valid key, or wait.")
        self.server_message = server_message


class ServerUnreachableError(AgentRunError):
    """No MCP server answered at the URL (connection refused, unknown host, timeout)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"could not reach the MCP server at {url}: {reason} — is it running?")
        self.url = url
        self.reason = reason


_OFFLINE_HINT: Final = f"or set {OFFLINE_SWITCH}=1 to use the offline stand-in model, and restart"


class ModelUnreachableError(AgentRunError):
    """The model endpoint (OpenAI, or `OPENAI_BASE_URL`) did not answer: no network, a wrong URL, a timeout."""

    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(
            f"could not reach the model endpoint {base_url} ({reason}): check the network or OPENAI_BASE_URL, "
            + _OFFLINE_HINT
        )
        self.base_url = base_url
        self.reason = reason


class ModelRefusedError(AgentRunError):
    """The model endpoint answered with an error: a wrong or expired `OPENAI_API_KEY` (401), no quota, no such model."""

    def __init__(self, base_url: str, status: int, reason: str) -> None:
        what = "refused OPENAI_API_KEY" if status in (401, 403) else "refused the request"
        fix = "check OPENAI_API_KEY" if status in (401, 403) else "check OPENAI_MODEL and your account"
        super().__init__(f"the model endpoint {base_url} {what} ({status}: {reason}): {fix}, " + _OFFLINE_HINT)
        self.base_url = base_url
        self.status = status
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
        shown = ", ".join(f"{name}={shorten(repr(value), MAX_ARGUMENT_CHARS)}" for name, value in arguments.items())
    else:
        shown = shorten(str(arguments), MAX_ARGUMENT_CHARS)
    return f"{tool or '?'}({shown})"


@dataclass
class AgentRunResult:
    """What a run produced: the answer, every tool call in order, and which model answered."""

    answer: str
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    model_description: str = ""


def choose_model(
    *, model_name: str | None = None, openai_client: openai.AsyncOpenAI | None = None
) -> tuple[Model | str, str]:
    """The model to use and a one-line description of it, for printing.

    A real OpenAI model when `OPENAI_API_KEY` is set, using `openai_client` or a client of its
    own that reads `OPENAI_API_KEY` and `OPENAI_BASE_URL` now (the SDK's shared default client
    stays bound to the event loop it was first used on). Otherwise, or with `COURSE_OFFLINE=1`,
    the deterministic offline stand-in.
    """
    if (reason := offline_reason()) is not None:
        return OfflineShoppingModel(), f"offline stand-in model ({reason})"
    name = model_name or os.environ.get("OPENAI_MODEL") or DEFAULT_MODEL
    base_url = os.environ.get("OPENAI_BASE_URL")
    model = OpenAIResponsesModel(model=name, openai_client=openai_client or openai.AsyncOpenAI())
    return model, f"OpenAI model {name}" + (f" via {base_url}" if base_url else "")


def connect_shopping_server(
    url: str, key: str | MaskedKey | None, *, header: str = "x-api-key", ca_file: str | Path | None = None
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
        params["headers"] = {header: revealed(key)}  # a MaskedKey from the key manager works too
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
    key: str | MaskedKey | None,
    query: str = DEFAULT_QUERY,
    *,
    model: Model | str | None = None,
    on_event: Callable[[AgentEvent], None] | None = None,
    ca_file: str | Path | None = None,
) -> AgentRunResult:
    """Connect with `key`, run the agent on `query`, and report each step through `on_event`.

    Raises an `AgentRunError`, a single exception whose message is one line, rather than an
    `ExceptionGroup` or an SDK wrapper: `KeyRejectedError` (missing, wrong, or revoked key),
    `ServerThrottledError`, `ServerUnreachableError`, `ModelUnreachableError` or `ModelRefusedError`.
    """
    # A client made for this run is closed with it, on this run's event loop.
    owned_client = openai.AsyncOpenAI() if model is None and offline_reason() is None else None
    if model is None:
        model, description = choose_model(openai_client=owned_client)
    else:
        description = _describe(model)
    emit = on_event or _ignore
    tool_calls: list[tuple[str, dict[str, Any]]] = []
    tool_names: dict[str, str] = {}
    reporting = _RUN_REPORTS_MODEL_ERRORS.set(True)
    try:
        async with contextlib.AsyncExitStack() as stack:
            if owned_client is not None:
                stack.push_async_callback(owned_client.close)
            server = await stack.enter_async_context(connect_shopping_server(url, key, ca_file=ca_file))
            run = Runner.run_streamed(
                build_agent(server, model),
                query,
                max_turns=MAX_TURNS,
                # Traces are exported with OPENAI_API_KEY to OpenAI; offline, don't try (or warn).
                run_config=RunConfig(tracing_disabled=offline_reason() is not None),
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
    finally:
        _RUN_REPORTS_MODEL_ERRORS.reset(reporting)
    emit(AgentEvent("answer", None, answer))
    return AgentRunResult(answer=answer, tool_calls=tool_calls, model_description=description)


# --- Turning SDK errors into one-line errors a learner can act on --------------------

# True while run_shopping_query runs (context variables follow the SDK's tasks). The model
# classes log "Error streaming response" before re-raising; the run reports the same error as
# one line, so that log record is dropped inside a run and kept everywhere else.
_RUN_REPORTS_MODEL_ERRORS: contextvars.ContextVar[bool] = contextvars.ContextVar("run_reports_model_errors")


# Set by show_agent_errors_in_one_line: in that notebook every SDK failure is shown by the handler.
_NOTEBOOK_REPORTS_MODEL_ERRORS = False


class _DropModelErrorsReportedByTheRun(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        reported = _NOTEBOOK_REPORTS_MODEL_ERRORS or _RUN_REPORTS_MODEL_ERRORS.get(False)
        return not (reported and record.levelno >= logging.ERROR)


logging.getLogger("openai.agents").addFilter(_DropModelErrorsReportedByTheRun())


def _translate(error: BaseException, url: str) -> AgentRunError | None:
    """The `AgentRunError` for `error`, or None to re-raise it as it is."""
    causes = list(_causes(error))
    for cause in causes:
        if isinstance(cause, KeyRejectedError):
            # A fresh instance, so the traceback starts here rather than deep in the SDK.
            return KeyRejectedError(cause.server_message, code=cause.code)
        if (rejected := _key_rejection(cause)) is not None:
            return rejected
        if isinstance(cause, MCPError) and cause.code == TOO_MANY_FAILED_ATTEMPTS:
            return ServerThrottledError(cause.message)
        if (model_error := _model_failure(cause)) is not None:
            return model_error
    for cause in causes:
        if (reason := _unreachable_reason(cause)) is not None:
            if url.startswith("https://") and reason.startswith("the connection failed"):
                reason += "; or its TLS certificate is not trusted here (pass ca_file=...)"
            return ServerUnreachableError(url, reason)
    return None


def show_agent_errors_in_one_line() -> bool:
    """In Jupyter/IPython, show the raw SDKs' model-endpoint and key failures as one line, as `run_shopping_query` does.

    For cells that call `Runner.run` directly (lesson 05): an `openai.APIConnectionError`, a
    refused key, or the `ExceptionGroup` around a 401 becomes the same line an `AgentRunError`
    would be; any other error keeps its usual traceback. Returns False outside IPython.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False

    def one_line(
        shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: int | None = None
    ) -> None:
        # IPython ignores a handler's return value here: show the error the way it shows any other.
        translated = _translate(value, "the MCP server's URL")
        if translated is None:
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        else:
            shell.showtraceback((type(translated), translated, None))

    global _NOTEBOOK_REPORTS_MODEL_ERRORS
    _NOTEBOOK_REPORTS_MODEL_ERRORS = True  # the SDK's "Error getting response" log line would repeat it
    shell.set_custom_exc((openai.APIError, UserError, MCPError, BaseExceptionGroup), one_line)
    return True


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
    recognise the error by its type and our server's auth codes (`lesson_code.errors`).
    """
    if isinstance(error, MCPError) and error.code in AUTH_ERROR_CODES:
        return KeyRejectedError(error.message, code=error.code)
    return None


def _model_failure(error: BaseException) -> AgentRunError | None:
    """`ModelUnreachableError` or `ModelRefusedError` for the OpenAI client's own error types."""
    base_url = model_base_url()
    if isinstance(error, openai.APITimeoutError):
        return ModelUnreachableError(base_url, "timed out")
    if isinstance(error, openai.APIConnectionError):
        return ModelUnreachableError(base_url, "no connection")
    if isinstance(error, openai.APIStatusError):
        return ModelRefusedError(base_url, error.status_code, _api_error_reason(error))
    return None


def _api_error_reason(error: openai.APIStatusError) -> str:
    """The endpoint's own short reason (e.g. "invalid_api_key"), never the message, which may echo the key."""
    return str(error.code or error.type or error.response.reason_phrase or "error")


def _unreachable_reason(error: BaseException) -> str | None:
    """Why the server could not be reached, if that is what `error` says.

    The Agents SDK replaces MCP transport errors with a `UserError` and deliberately drops the
    cause (it may hold the URL's credentials), so for those its message is all there is to go on.
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
    if isinstance(model, OpenAIResponsesModel):
        return f"OpenAI model {model.model}"
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
    return shorten(text, limit)


def _ignore(_event: AgentEvent) -> None:
    return None
