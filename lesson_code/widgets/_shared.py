"""What the three widgets share: key hygiene, one HTTP exchange, tables, badges, scheduling.

Why one helper module: each widget must obey the same rules, and a rule written
once is a rule kept.

* No full key ever reaches the screen or a saved notebook. Everything a widget
  shows goes through `redact`, and keys handed back to Python are `MaskedKey`s
  whose repr is masked, so `km.create("alice")` left on a cell's last line does
  not store the key in the notebook's output.
* One HTTP exchange (`Exchange`), done sync (`perform`) or async (`perform_async`)
  with the same request and the same reading of the answer. The sync path is for
  methods called from a cell; it is safe because `BackgroundServer` serves from
  its own thread, so blocking the kernel's loop for a few milliseconds cannot
  deadlock it. Callbacks use the async path so a slow or absent server never
  freezes the kernel while the learner clicks.
* Callbacks run in the kernel's event loop; `Scheduler.run_soon` turns a click
  into a task on that loop and keeps a strong reference to it (asyncio holds
  tasks weakly, so an unreferenced task can vanish mid-run).
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final

import httpx

from lesson_code.keys import mask
from lesson_code.redaction import redact

HTTP_TIMEOUT_SECONDS: Final = 10.0
SHOWN_HEADERS: Final = ("content-type", "www-authenticate", "retry-after")

# A key-shaped string: the repo's leak check flags the prefix followed by 20+ key characters.


# --- keys -----------------------------------------------------------------------------


class MaskedKey(str):
    """A key that works as a normal `str` but whose repr is masked.

    The full value is there for code (`headers={"x-api-key": key}`, `print(key)` if
    you really mean it); only the automatic echo of a cell's last expression, which
    Jupyter saves into the notebook, shows `mask(key)`.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"MaskedKey({mask(str(self))!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def key_hint(key: str | None) -> str:
    """How a key is named on screen: its mask, or that none is sent."""
    return "no key sent" if key is None else mask(key)


# --- one HTTP exchange --------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """An HTTP request, built once and sent by either `perform` or `perform_async`."""

    method: str
    url: str
    json: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Exchange:
    """What came back: status (None if nothing answered), chosen headers, body, latency."""

    status: int | None
    headers: list[tuple[str, str]]
    body: str
    latency_ms: float
    error: str | None = None


def perform(request: Request) -> Exchange:
    """Send `request` and wait; fine from a cell because the server runs in its own thread."""
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS) as client:
            response = client.request(request.method, request.url, json=request.json, headers=request.headers)
    except httpx.HTTPError as error:
        return _failed(request, error, started)
    return _read(response, started)


async def perform_async(request: Request) -> Exchange:
    """Send `request` without blocking the kernel's event loop (for button callbacks)."""
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as client:
            response = await client.request(request.method, request.url, json=request.json, headers=request.headers)
    except httpx.HTTPError as error:
        return _failed(request, error, started)
    return _read(response, started)


def _read(response: httpx.Response, started: float) -> Exchange:
    latency = (time.perf_counter() - started) * 1000
    headers = [(name, value) for name in SHOWN_HEADERS for value in response.headers.get_list(name)]
    return Exchange(response.status_code, headers, redact(response.text), latency)


def _failed(request: Request, error: httpx.HTTPError, started: float) -> Exchange:
    latency = (time.perf_counter() - started) * 1000
    reason = f"no answer from {request.url}: {type(error).__name__}" + (f" ({error})" if str(error) else "")
    return Exchange(None, [], "", latency, error=redact(reason))


def _unwrap_sse(body: str) -> str:
    """The JSON carried by a streamed (SSE) answer, or the body unchanged."""
    text = body.strip()
    if text.startswith(("event:", "data:", "id:")):
        text = "\n".join(line[5:].strip() for line in text.splitlines() if line.startswith("data:"))
    return text


def body_json(body: str) -> Any:
    """The body parsed as JSON (plain or SSE), or None if it is not JSON."""
    try:
        return json.loads(_unwrap_sse(body))
    except ValueError:
        return None


def pretty_body(body: str, *, max_lines: int = 30, max_chars: int = 3000) -> str:
    """A body as indented JSON when it is JSON (or SSE carrying JSON), cut to a readable size."""
    data = body_json(body)
    text = _unwrap_sse(body) if data is None else json.dumps(data, indent=2, ensure_ascii=False)
    lines = text.splitlines()
    if len(lines) > max_lines:
        text = "\n".join(lines[:max_lines]) + f"\n… ({len(lines) - max_lines} more lines)"
    if len(text) > max_chars:
        text = text[:max_chars] + f"… ({len(text) - max_chars} more characters)"
    return text


def reason_phrase(status: int | None) -> str:
    """`401 Unauthorized`, or `no answer` when the server did not reply."""
    if status is None:
        return "no answer"
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


# --- display ------------------------------------------------------------------------------


def badge(status: int | None) -> str:
    """An HTML status badge coloured by outcome: green 2xx, red 401/403, amber 429, grey no answer."""
    if status is None:
        colour = "#6b7280"
    elif 200 <= status < 300:
        colour = "#15803d"
    elif status in (401, 403):
        colour = "#b91c1c"
    elif status == 429:
        colour = "#b45309"
    elif status < 500:
        colour = "#c2410c"
    else:
        colour = "#7e22ce"
    return (
        f'<span style="background:{colour};color:white;border-radius:4px;padding:1px 8px;'
        f'font-weight:bold;font-family:monospace">{html.escape(reason_phrase(status))}</span>'
    )


def text_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A plain-text table with aligned columns, for reprs and non-browser runs."""
    grid = [list(headers), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in grid) for i in range(len(headers))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in grid)
    return "\n".join(line.rstrip() for line in lines)


def html_table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, raw_html_column: int | None = None) -> str:
    """An HTML table; every cell is escaped except `raw_html_column` (used for a badge we built)."""
    head = "".join(f'<th style="text-align:left;padding:2px 10px">{html.escape(h)}</th>' for h in headers)
    body = []
    for row in rows:
        cells = [cell if i == raw_html_column else html.escape(str(cell)) for i, cell in enumerate(row)]
        body.append("<tr>" + "".join(f'<td style="padding:2px 10px">{c}</td>' for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def pre(text: str) -> str:
    """Escaped preformatted text."""
    return f'<pre style="margin:4px 0;white-space:pre-wrap">{html.escape(text)}</pre>'


class DisplaysWidget:
    """Show `.widget` when displayed, with this object's own summary as the text/plain.

    `_repr_mimebundle_` (not `_ipython_display_`) so that `display(obj)` and a bare
    `obj` on a cell's last line both give the live widget in a browser and a readable
    `__repr__` everywhere else (nbval compares text/plain, plain consoles print it).
    """

    widget: Any

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = repr(self)
        return bundle


# --- scheduling callbacks -------------------------------------------------------------------


class Scheduler:
    """Runs a widget's coroutines from button callbacks and remembers them until done."""

    def __init__(self, on_error: Callable[[BaseException], None]) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_error = on_error

    def run_soon(self, make: Callable[[], Coroutine[Any, Any, Any]]) -> asyncio.Task[Any] | None:
        """Start `make()` as a task on the running loop (the kernel's, inside a callback).

        With no loop running (a plain script calling `button.click()`), run it to the end
        right here instead, so a click always does something.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self._guarded(make()))
            return None
        task = loop.create_task(self._guarded(make()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait_idle(self) -> None:
        """Wait for every task started by `run_soon` (tests and notebooks use this after a click)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _guarded(self, coro: Coroutine[Any, Any, Any]) -> None:
        # A failing callback task would otherwise only log "Task exception was never retrieved".
        try:
            await coro
        except Exception as error:
            self._on_error(error)


def one_line(error: BaseException) -> str:
    """An exception as one readable line, never a traceback."""
    text = " ".join(str(error).split()) or type(error).__name__
    return redact(text)


def clock() -> str:
    """Local wall-clock time, HH:MM:SS, for history rows."""
    return time.strftime("%H:%M:%S")
