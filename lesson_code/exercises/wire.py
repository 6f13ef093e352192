"""MCP tool calls as they travel over HTTP, for the notebooks to show and send.

The MCP client of protocol 2026-07-28 needs no handshake: one tool call is one
HTTP POST to /mcp carrying one JSON-RPC 2.0 request. A few headers repeat what
the body says (the protocol version, the method and the tool's name) so that
proxies and gateways can route the request without parsing JSON.

Nothing here authenticates: `api_key`, when given, is just one more header.
That is the point of lesson 01.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from lesson_code.raw_requests import PROTOCOL_VERSION, mcp_body, mcp_headers

__all__ = ["PROTOCOL_VERSION", "call_tool", "describe", "tool_call_parts"]


def tool_call_parts(
    name: str, arguments: dict[str, Any] | None = None, *, request_id: int = 1
) -> tuple[dict[str, str], dict[str, Any]]:
    """The HTTP headers and the JSON-RPC body of one MCP tool call, as a pair to show or send.

    Built by `lesson_code.raw_requests` (the one place that knows the shape); unlike
    `raw_requests.tool_call`, which returns `httpx.post` keyword arguments, this
    returns the two parts separately, so a notebook can print each.
    """
    headers = mcp_headers("tools/call", tool=name)
    headers.pop("content-type")  # httpx sets it for `json=`; the notebooks show only what the protocol adds
    body = mcp_body("tools/call", {"name": name, "arguments": arguments or {}}, request_id=request_id)
    return headers, body


async def call_tool(
    client: httpx.AsyncClient,
    url: str,
    name: str,
    arguments: dict[str, Any] | None = None,
    *,
    api_key: str | None = None,
    request_id: int = 1,
) -> httpx.Response:
    """POST one tool call to `url` (the server's /mcp) and return the HTTP response."""
    headers, body = tool_call_parts(name, arguments, request_id=request_id)
    if api_key is not None:
        headers["x-api-key"] = api_key
    return await client.post(url, headers=headers, json=body)


def describe(response: httpx.Response) -> str:
    """One calm line for a response: status, then the tool's result or the error's message."""
    try:
        payload = response.json()
    except ValueError:
        return f"{response.status_code}: {response.text[:120]}"
    if not isinstance(payload, dict):
        return f"{response.status_code}: {json.dumps(payload)[:120]}"
    if "error" in payload:
        error = payload["error"]
        return f"{response.status_code}: JSON-RPC error {error.get('code')}: {error.get('message')}"
    result = payload.get("result", {})
    if result.get("isError"):
        text = " ".join(block.get("text", "") for block in result.get("content", []))
        return f"{response.status_code}: the tool refused: {text}"
    shown = result.get("structuredContent", result)
    return f"{response.status_code}: {json.dumps(shown, ensure_ascii=False)}"
