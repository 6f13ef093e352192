"""The auth playground (lesson 04): send one request with a chosen key and see what the server says.

Why it exists: the key check is easiest to understand by poking it. Pick a key
(valid, wrong, missing, revoked), pick a call, press Send, and compare the
status, the `WWW-Authenticate` challenge and the JSON-RPC error body; the
history table keeps every attempt side by side.

Keys are shown masked only; the request itself of course carries the full key.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from typing import Any, Final

import httpx
import ipywidgets as w

from lesson_code.masked_key import MaskedKey, key_hint, revealed
from lesson_code.raw_requests import list_tools, tool_call
from lesson_code.sse import json_message
from lesson_code.text import text_table
from lesson_code.widgets.display import DisplaysWidget, badge, html_table, one_line, pre
from lesson_code.widgets.exchange import (
    Exchange,
    Request,
    perform,
    perform_async,
    pretty_body,
    reason_phrase,
)
from lesson_code.widgets.scheduler import Scheduler

HEALTH_CALL: Final = "GET /health"
CALLS: Final[tuple[str, ...]] = ("tools/list", "add_item apples", "list_items", "place_order", HEALTH_CALL)
HISTORY_COLUMNS: Final = ("time", "key", "call", "status", "latency")
HISTORY_ROWS_SHOWN: Final = 20


@dataclass(frozen=True)
class PlaygroundResult:
    """One request and its answer, as the playground shows it (never the key, only its label)."""

    key_label: str
    call: str
    status: int | None
    latency_ms: float
    headers: list[tuple[str, str]]
    body: str
    time: str
    data: Any = None
    error: str | None = None

    def header(self, name: str) -> list[str]:
        """Every value of a shown response header (`www-authenticate` comes twice on a 401)."""
        return [value for header, value in self.headers if header == name.lower()]

    @property
    def latency(self) -> str:
        return f"{self.latency_ms:.0f} ms"

    def summary(self) -> str:
        return f"{self.key_label} → {self.call}: {reason_phrase(self.status)} in {self.latency}"

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f"  {name}: {value}" for name, value in self.headers]
        if self.error:
            lines.append(f"  {self.error}")
        if self.body:
            lines += ["  " + line for line in self.body.splitlines()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<PlaygroundResult {self.summary()}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def build_request(url: str, call: str, key: str | None) -> Request:
    """The HTTP request for one of `CALLS`, sending `key` in `x-api-key` unless it is None."""
    if call == HEALTH_CALL:
        health = str(httpx.URL(url).copy_with(path="/health", query=None))
        return Request("GET", health, headers={} if key is None else {"x-api-key": key})
    if call == "tools/list":
        spec = list_tools(api_key=key)
    elif call == "add_item apples":
        spec = tool_call("add_item", {"name": "apples", "quantity": 2}, api_key=key)
    elif call in ("list_items", "place_order"):
        spec = tool_call(call, {}, api_key=key)
    else:
        raise ValueError(f"unknown call {call!r}: choose one of {', '.join(CALLS)}")
    return Request("POST", url, json=spec["json"], headers=spec["headers"])


class AuthPlayground(DisplaysWidget):
    """Pick a key and a call, Send, and compare answers; `send()` does the same from code."""

    def __init__(self, url: str, keys: dict[str, str | MaskedKey | None]) -> None:
        if not keys:
            raise ValueError("give the playground at least one key, e.g. {'valid': KEY, 'missing': None}")
        self.url = url
        self._keys = {label: None if key is None else revealed(key) for label, key in keys.items()}
        self.history: list[PlaygroundResult] = []
        self._scheduler = Scheduler(self._show_failure)

        self.key_picker = w.Dropdown(
            options=[(f"{label} · {key_hint(key)}", label) for label, key in self._keys.items()], description="key"
        )
        self.call_picker = w.Dropdown(options=list(CALLS), description="call")
        self.send_button = w.Button(description="Send", button_style="primary", icon="paper-plane")
        self.response_view = w.HTML("<i>Pick a key and a call, then press Send.</i>")
        self.history_view = w.HTML("<i>No requests yet.</i>")
        self.widget = w.VBox(
            [
                w.HBox([self.key_picker, self.call_picker, self.send_button]),
                self.response_view,
                w.HTML("<b>History</b>"),
                self.history_view,
            ]
        )
        self.send_button.on_click(self._on_send_clicked)
        print(f"AuthPlayground ready: {len(self._keys)} keys × {len(CALLS)} calls against {url}")

    # -- what a learner does ---------------------------------------------------------------

    def send(self, key_label: str, call: str) -> PlaygroundResult:
        """Send `call` with the key labelled `key_label`, show the answer, and return it.

        Synchronous on purpose, so a cell can just call it: the server runs in its own
        thread (`BackgroundServer`), so waiting here cannot block it.
        """
        request = build_request(self.url, call, self._key(key_label))
        return self._record(key_label, call, perform(request))

    async def send_async(self, key_label: str, call: str) -> PlaygroundResult:
        """Like `send`, without blocking the kernel's event loop: what the Send button uses."""
        request = build_request(self.url, call, self._key(key_label))
        return self._record(key_label, call, await perform_async(request))

    async def wait_idle(self) -> None:
        """Wait until every request started by a click has been answered."""
        await self._scheduler.wait_idle()

    # -- state and display ------------------------------------------------------------------

    def __repr__(self) -> str:
        keys = ", ".join(label + (" (no key)" if key is None else "") for label, key in self._keys.items())
        lines = [f"AuthPlayground for {self.url}", f"keys: {keys}", f"calls: {', '.join(CALLS)}"]
        if not self.history:
            lines.append("history: no requests yet")
        else:
            lines.append(f"history ({len(self.history)} request{'s' if len(self.history) != 1 else ''}):")
            table = text_table(HISTORY_COLUMNS, (self._row(r) for r in self.history))
            lines += ["  " + line for line in table.splitlines()]
        return "\n".join(lines)

    def _key(self, key_label: str) -> str | None:
        if key_label not in self._keys:
            raise ValueError(f"unknown key label {key_label!r}: choose one of {', '.join(self._keys)}")
        return self._keys[key_label]

    def _record(self, key_label: str, call: str, exchange: Exchange) -> PlaygroundResult:
        result = PlaygroundResult(
            key_label=key_label,
            call=call,
            status=exchange.status,
            latency_ms=exchange.latency_ms,
            headers=exchange.headers,
            body=pretty_body(exchange.body) if exchange.body else "",
            time=time.strftime("%H:%M:%S"),  # local wall-clock time for the history rows
            data=json_message(exchange.body),  # plain JSON, or the message of an event stream
            error=exchange.error,
        )
        self.history.append(result)
        self.response_view.value = self._result_html(result)
        recent = self.history[-HISTORY_ROWS_SHOWN:]
        rows = (self._row(r, as_html=True) for r in recent)
        self.history_view.value = html_table(HISTORY_COLUMNS, rows, raw_html_column=3)
        return result

    @staticmethod
    def _row(result: PlaygroundResult, *, as_html: bool = False) -> list[str]:
        status = badge(result.status) if as_html else reason_phrase(result.status)
        return [result.time, result.key_label, result.call, status, result.latency]

    @staticmethod
    def _result_html(result: PlaygroundResult) -> str:
        what = html.escape(f"{result.key_label} → {result.call}")
        parts = [f"{badge(result.status)} &nbsp; <code>{result.latency}</code> &nbsp; {what}"]
        if result.headers:
            parts.append(pre("\n".join(f"{name}: {value}" for name, value in result.headers)))
        if result.error:
            parts.append(pre(result.error))
        if result.body:
            parts.append(pre(result.body))
        return "".join(parts)

    # -- callbacks -----------------------------------------------------------------------------

    def _on_send_clicked(self, _button: w.Button) -> None:
        key_label, call = self.key_picker.value, self.call_picker.value
        self.response_view.value = html.escape(f"sending {call} with the {key_label} key…")
        self._scheduler.run_soon(lambda: self.send_async(key_label, call))

    def _show_failure(self, error: BaseException) -> None:
        self.response_view.value = pre(f"the request could not be made: {one_line(error)}")
