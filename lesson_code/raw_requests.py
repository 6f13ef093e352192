"""Hand-built MCP requests: the one place that knows their wire shape.

The 2026-07-28 MCP protocol is sessionless over HTTP: every POST carries the
protocol version and the client's capabilities in `params._meta`, and repeats
the method (and tool name) in `Mcp-Method` / `Mcp-Name` headers so proxies and
middleware can route or refuse a request without parsing its body.

Everything that builds an MCP request uses `mcp_body` and `mcp_headers`: the
notebooks, the widgets, `exercises.wire`, the attack catalogue (as raw bytes,
`mcp_header_pairs`), the benchmarks and `serve`'s example curl command.
"""

from __future__ import annotations

import itertools
import json
import shlex
from typing import Any, Final

PROTOCOL_VERSION: Final = "2026-07-28"
_ids = itertools.count(1)


def mcp_body(method: str, params: dict[str, Any] | None = None, *, request_id: int | None = None) -> dict[str, Any]:
    """A JSON-RPC 2.0 request with the protocol's required `_meta` envelope."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": PROTOCOL_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    return {
        "jsonrpc": "2.0",
        "id": next(_ids) if request_id is None else request_id,
        "method": method,
        "params": {**(params or {}), "_meta": meta},
    }


def mcp_headers(method: str, *, tool: str | None = None, api_key: str | None = None) -> dict[str, str]:
    """The HTTP headers for `method` (and `tool` for tools/call), plus the key if given."""
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": PROTOCOL_VERSION,
        "mcp-method": method,
    }
    if tool is not None:
        headers["mcp-name"] = tool
    if api_key is not None:
        headers["x-api-key"] = api_key
    return headers


def mcp_header_pairs(method: str, *, tool: str | None = None) -> tuple[tuple[bytes, bytes], ...]:
    """`mcp_headers` as (name, value) byte pairs, in order, for requests written byte by byte."""
    return tuple((name.encode(), value.encode()) for name, value in mcp_headers(method, tool=tool).items())


def tool_call(tool: str, arguments: dict[str, Any] | None = None, *, api_key: str | None = None) -> dict[str, Any]:
    """Everything `httpx.post(url, **tool_call(...))` needs for one tools/call."""
    body = mcp_body("tools/call", {"name": tool, "arguments": arguments or {}})
    return {"json": body, "headers": mcp_headers("tools/call", tool=tool, api_key=api_key)}


def list_tools(*, api_key: str | None = None) -> dict[str, Any]:
    """Everything `httpx.post(url, **list_tools(...))` needs for one tools/list."""
    return {"json": mcp_body("tools/list"), "headers": mcp_headers("tools/list", api_key=api_key)}


def curl_command(url: str, key_placeholder: str = "$MCP_API_KEY") -> str:
    """A one-line curl that lists the tools, for people who like to see the raw request."""
    request = list_tools()
    parts = ["curl", "-s", url]
    for name, value in request["headers"].items():
        parts += ["-H", f"{name}: {value}"]
    quoted = " ".join(shlex.quote(p) for p in parts)
    body = json.dumps(request["json"], separators=(",", ":"))
    return f'{quoted} -H "x-api-key: {key_placeholder}" -d {shlex.quote(body)}'
