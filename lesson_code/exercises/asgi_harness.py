"""Run a middleware class in-process, with no server, and record exactly what it did.

The checkers of lessons 03 and 04 need to know more than a status code: did the
request reach the app, how many times, who sent which message (the middleware
itself or the app behind it), and did anything raise. `drive()` answers all of
that for one scope, against a stand-in app that records every call.

Scopes look like what uvicorn builds: header names lower-cased, the usual
headers of an MCP client around the ones a case is about.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

#: The headers an MCP client sends with every request (uvicorn hands them over lower-cased).
CLIENT_HEADERS: Final = (
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"python-httpx/0.28.1"),
    (b"accept", b"application/json, text/event-stream"),
    (b"content-type", b"application/json"),
    (b"mcp-protocol-version", b"2026-07-28"),
)


def http_scope(
    headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...] = (),
    method: str = "POST",
    path: str = "/mcp",
) -> dict[str, Any]:
    """An HTTP scope as uvicorn builds it, with `headers` after the client's usual ones."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [*CLIENT_HEADERS, *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


def websocket_scope(headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...] = ()) -> dict[str, Any]:
    """A websocket scope for /mcp, without a key unless `headers` carries one."""
    return {**http_scope(headers, method="GET"), "type": "websocket", "scheme": "ws", "subprotocols": []}


def lifespan_scope() -> dict[str, Any]:
    return {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}


@dataclass
class Exchange:
    """What happened to one scope: the app's calls and every message sent, with who sent it."""

    app_calls: int = 0
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # ("app" | "middleware", message)
    error: BaseException | None = None
    timed_out: bool = False
    inside_app: int = 0

    @property
    def reached_app(self) -> bool:
        return self.app_calls > 0

    def by(self, sender: str) -> list[dict[str, Any]]:
        return [message for who, message in self.sent if who == sender]

    @property
    def starts(self) -> list[dict[str, Any]]:
        return [m for _, m in self.sent if m.get("type") == "http.response.start"]

    @property
    def status(self) -> int | None:
        return self.starts[0].get("status") if self.starts else None

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.starts[0].get("headers", []) if self.starts else []:
            if bytes(key).lower() == name:
                return bytes(value)
        return None

    @property
    def body(self) -> bytes:
        return b"".join(bytes(m.get("body", b"")) for _, m in self.sent if m.get("type") == "http.response.body")


def recording_app(exchange: Exchange) -> Callable[..., Any]:
    """A stand-in for the MCP app: counts its calls and answers 200 (or completes the lifespan start-up).

    While it runs, `exchange.inside_app` is true, so messages that reach the
    outer `send` are known to be the app's, even through a middleware's wrapper.
    """

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        exchange.app_calls += 1
        exchange.inside_app += 1
        try:
            if scope["type"] == "lifespan":
                message = await receive()
                if message.get("type") == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
            elif scope["type"] == "http":
                headers = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": b'{"reached": "the app"}'})
            elif scope["type"] == "websocket":
                await send({"type": "websocket.accept"})
        finally:
            exchange.inside_app -= 1

    return app


async def drive(cls: type, digests: set[str], scope: dict[str, Any], timeout: float = 2.0) -> Exchange:
    """Build `cls(app, digests)` around a recording app, hand it `scope`, and record what it did."""
    exchange = Exchange()

    async def send(message: dict[str, Any]) -> None:
        exchange.sent.append(("app" if exchange.inside_app else "middleware", message))

    app = recording_app(exchange)

    async def receive() -> dict[str, Any]:
        if scope["type"] == "lifespan":
            return {"type": "lifespan.startup"}
        if scope["type"] == "websocket":
            return {"type": "websocket.connect"}
        return {"type": "http.request", "body": b"{}", "more_body": False}

    middleware = cls(app, digests)
    try:
        await asyncio.wait_for(middleware(scope, receive, send), timeout)
    except NotImplementedError:
        raise
    except TimeoutError:
        exchange.timed_out = True
    except Exception as exc:
        exchange.error = exc
    return exchange
