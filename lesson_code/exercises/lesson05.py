"""Exercises for 05_configure_the_agent: give the agent its key, watch its calls, run it inside Jupyter."""

from __future__ import annotations

import contextlib
import io
from typing import Any, Final

from lesson_code.agent import AgentEvent
from lesson_code.exercises.core import Exercise, Incorrect, call
from lesson_code.exercises.references import reference_make_params, reference_show
from lesson_code.keys import KEY_PREFIX, generate_key

__all__ = ["CHECK_URL", "CHOICES", "KNOWN_PARAMS", "q1", "q2", "q3", "reference_make_params", "reference_show"]

# -- q1: the connection parameters --------------------------------------------------------------

CHECK_URL: Final = "http://127.0.0.1:8765/mcp"
# What MCPServerStreamableHttp reads from `params`; anything else is silently ignored.
KNOWN_PARAMS: Final = frozenset(
    {"url", "headers", "timeout", "sse_read_timeout", "terminate_on_close", "httpx_client_factory", "auth"}
)


class MakeParams(Exercise):
    todo = 'write make_params(url, key) so that it returns the params dict, e.g. {"url": ..., "headers": ...}.'
    hint_text = (
        "MCPServerStreamableHttp reads a few known entries of params (url, headers, timeout, ...) and silently "
        "ignores the rest. Which says where the server is, and which travels with every request?"
    )
    solution_code = """def make_params(url: str, key: str) -> dict:
    return {"url": url, "headers": {"x-api-key": key}}"""
    reference = staticmethod(reference_make_params)

    def _check(self, make_params: object) -> str:
        key = generate_key()
        params = call(make_params, CHECK_URL, key, shown_args=f"{CHECK_URL!r}, key")
        if not isinstance(params, dict):
            raise Incorrect(f"make_params returned {type(params).__name__}; return a dict such as {{'url': ...}}.")
        top = {str(name).lower(): name for name in params}
        if "x-api-key" in top or "authorization" in top:
            raise Incorrect(
                "the key sits at the top of params. The SDK reads only known entries there and ignores the rest, "
                "so no key would be sent: put it inside params['headers']."
            )
        if "url" not in params:
            raise Incorrect("params has no 'url': the SDK would not know where the MCP server is.")
        if params["url"] != CHECK_URL:
            raise Incorrect(
                f"make_params({CHECK_URL!r}, key) gave url {params['url']!r}. Pass the url through unchanged: "
                "it already ends in /mcp, the MCP endpoint."
            )
        unknown = sorted(str(name) for name in params if name not in KNOWN_PARAMS)
        if unknown:
            raise Incorrect(
                f"MCPServerStreamableHttp has no parameter {join_quoted(unknown)}, and ignores it silently. "
                f"It knows: {', '.join(sorted(KNOWN_PARAMS))}."
            )
        headers = params.get("headers")
        if headers is None:
            raise Incorrect("params has no 'headers', so the agent sends no key and the server answers 401.")
        if not isinstance(headers, dict):
            raise Incorrect(f"params['headers'] should be a dict of header name → value, not {type(headers).__name__}.")
        by_name = {str(name).lower(): value for name, value in headers.items()}
        if "x_api_key" in by_name:
            raise Incorrect(
                "use dashes, not underscores: x-api-key. Proxies such as nginx drop header names with underscores."
            )
        if "authorization" in by_name and "x-api-key" not in by_name:
            value = by_name["authorization"]
            if value == key:
                raise Incorrect(
                    "Authorization needs a scheme before the key: 'Bearer ' + key. Or use the x-api-key header, "
                    "as this course does."
                )
            if value == f"Bearer {key}":
                return "Authorization: Bearer works too. The course's server accepts both; the lessons use x-api-key."
        if "x-api-key" not in by_name:
            names = ", ".join(repr(str(n)) for n in headers) or "none"
            raise Incorrect(f"params['headers'] has no x-api-key header (it has: {names}), so the server answers 401.")
        value = by_name["x-api-key"]
        if value != key:
            if isinstance(value, str) and value.startswith(KEY_PREFIX):
                raise Incorrect(
                    "the x-api-key header holds a key, but not the one passed in. Did you paste a key into the code? "
                    "Use the key argument: keys belong in the environment, never in a notebook."
                )
            raise Incorrect(f"headers['x-api-key'] should be the key argument itself, not {value!r}.")
        return "the key rides in the x-api-key header of every request the agent's MCP client sends."


def join_quoted(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


# -- q2: watch the calls ----------------------------------------------------------------------------

_EVENTS: Final = (
    AgentEvent("tool_call", "add_item", '{"name": "pears", "quantity": 3}'),
    AgentEvent("tool_result", "add_item", '{"name": "pears", "quantity": 3}'),
    AgentEvent("tool_call", "list_items", "{}"),
    AgentEvent("tool_result", "list_items", '{"items": [{"name": "pears", "quantity": 3}]}'),
    AgentEvent("answer", None, "Your list: 3 × pears."),
)


def _printed(show: object, event: AgentEvent) -> tuple[str, Any]:
    """What `show(event)` printed, and what it returned."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        returned = call(show, event, shown_args=f"AgentEvent({event.kind!r}, ...)")
    return buffer.getvalue(), returned


class ShowEvent(Exercise):
    todo = "write show(event) so that it prints one line for each kind of event."
    hint_text = (
        "Look at event.kind first: 'tool_call' (event.tool is the tool, event.text its arguments), "
        "'tool_result' (event.text is what it returned) or 'answer' (event.text is the final answer)."
    )
    solution_code = """def show(event: AgentEvent) -> None:
    if event.kind == "tool_call":
        print(f"→ {event.tool} {event.text}")
    elif event.kind == "tool_result":
        print(f"  ← {event.text}")
    else:
        print(f"answer: {event.text}")"""
    reference = staticmethod(reference_show)

    def _check(self, show: object) -> str:
        if not callable(show):
            raise Incorrect(f"show should be a function that takes one event; got {type(show).__name__}.")
        lines: list[str] = []
        for event in _EVENTS:
            printed, returned = _printed(show, event)
            if not printed.strip() and isinstance(returned, str) and returned.strip():
                raise Incorrect(
                    f"show returned the line ({returned!r}) instead of printing it. The agent's loop ignores what "
                    "show returns: call print(...) inside show."
                )
            if not printed.strip():
                raise Incorrect(
                    f"nothing was printed for a {event.kind!r} event. The kinds are exactly 'tool_call', "
                    "'tool_result' and 'answer'."
                )
            if event.kind == "tool_call":
                if (event.tool or "") not in printed:
                    raise Incorrect(f"the line for a tool call should name the tool (event.tool); it was {printed!r}.")
                if event.text != "{}" and "pears" not in printed:
                    raise Incorrect(
                        f"the line for a tool call should show its arguments (event.text); it was {printed!r}."
                    )
            elif event.kind == "tool_result":
                if event.text not in printed:
                    raise Incorrect(
                        f"the line for a tool result should show what the tool returned (event.text); "
                        f"it was {printed!r}."
                    )
            elif event.text not in printed:
                raise Incorrect(f"the answer should be printed (event.text); the line was {printed!r}.")
            lines.append(printed.rstrip("\n"))
        if lines[0] == lines[1]:
            raise Incorrect("a tool call and its result printed the same line: make them look different.")
        return "every call, every result and the answer, each as it arrives."


# -- q3: running the agent inside Jupyter -------------------------------------------------------------

CHOICES: Final = {
    "a": "Runner.run_sync(agent, query)",
    "b": "await Runner.run(agent, query)",
    "c": "asyncio.run(Runner.run(agent, query))",
}
_CHOICE_WHY: Final = {
    "a": (
        "run_sync needs a thread where no event loop runs yet, so that it can run one of its own and wait. "
        "A notebook cell already runs inside Jupyter's loop, so it raises RuntimeError (the cell below shows it)."
    ),
    "c": (
        "asyncio.run also refuses to start inside a running loop: 'asyncio.run() cannot be called from a "
        "running event loop'. nest_asyncio would patch that, for every loop in the process."
    ),
}


def _letter(answer: object) -> str | None:
    """The choice a person meant: "b", " B ", "b)", "(b)", "b.", "option b", or the line itself."""
    if not isinstance(answer, str):
        return None
    text = " ".join(answer.strip().lower().split())
    for line_letter, line in CHOICES.items():
        if text == line.lower() or (text.endswith(line.lower()) and len(text) - len(line) <= 4):
            return line_letter
    text = text.removeprefix("option").removeprefix("answer").strip(" :")
    text = text.strip("()[]{}.,;:!'\" ")
    return text if text in CHOICES else None


class RunInJupyter(Exercise):
    todo = 'set runs_in_a_cell to the letter of the line that works in a notebook cell: "a", "b" or "c".'
    hint_text = (
        "A notebook cell already runs inside an event loop. Which of the three joins that loop "
        "instead of trying to start a new one?"
    )
    solution_code = 'runs_in_a_cell = "b"'

    def _check(self, answer: object) -> str:
        letter = _letter(answer)
        if letter is None:
            raise Incorrect(f'answer with one letter in quotes: "a", "b" or "c"; got {answer!r}.')
        if letter == "b":
            return "a cell can `await` directly: the coroutine runs on Jupyter's own loop, no tricks needed."
        raise Incorrect(f"not {letter}: {CHOICES[letter]}. {_CHOICE_WHY[letter]}")


q1 = MakeParams()
q2 = ShowEvent()
q3 = RunInJupyter()
