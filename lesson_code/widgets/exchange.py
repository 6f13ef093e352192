"""One HTTP exchange for the widgets: a request built once, sent sync or async, read the same way.

The sync path (`perform`) is for methods called from a cell; it is safe because
`BackgroundServer` serves from its own thread, so blocking the kernel's loop for a
few milliseconds cannot deadlock it. Button callbacks use the async path
(`perform_async`) so a slow or absent server never freezes the kernel while the
learner clicks. Every body is redacted before anything can display it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final

import httpx

from lesson_code.redaction import redact
from lesson_code.sse import event_data, json_message, looks_like_event_stream

HTTP_TIMEOUT_SECONDS: Final = 10.0
SHOWN_HEADERS: Final = ("content-type", "www-authenticate", "retry-after")
BODY_LINES_SHOWN: Final = 30
BODY_CHARS_SHOWN: Final = 3000


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


def pretty_body(body: str, *, max_lines: int = BODY_LINES_SHOWN, max_chars: int = BODY_CHARS_SHOWN) -> str:
    """A body as indented JSON when it is JSON (or an event stream carrying JSON), cut to a readable size."""
    data = json_message(body)
    if data is not None:
        text = json.dumps(data, indent=2, ensure_ascii=False)
    elif looks_like_event_stream(body):
        text = "\n".join(event_data(body))
    else:
        text = body.strip()
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
