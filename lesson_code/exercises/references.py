# mypy: allow-untyped-defs
# (ReferenceApiKeyMiddleware is shown to learners, by `q3.solution()`, exactly as the notebook's untyped
# starting code spells it; check_untyped_defs still checks its body, and every other function here is typed.)
"""The reference answers: one working answer per exercise that takes code.

Kept apart from the checkers (as learntools keeps its solutions apart), so a
lesson module holds only its exercises. Later cells of a notebook use these
through `qK.solved_or_reference(answer)` when the learner's own version is not
finished yet; each is also the answer `qK.solution()` prints, give or take
the name.

Only lesson 04's `reference_wrap` needs the server stack (the MCP SDK's auth
context and the package's middleware); it imports them when called, so that
the other lessons' exercises load without them.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from lesson_code import errors
from lesson_code.net import is_loopback
from lesson_code.roles import ROLES, TOOL_SCOPES

if TYPE_CHECKING:
    from lesson_code.agent import AgentEvent
    from lesson_code.auth import ApiKeyMiddleware
    from lesson_code.keys import KeyRing

# -- lesson 02 ----------------------------------------------------------------------------------------------


def reference_is_valid_key(presented: str, valid_digests: set[str]) -> bool:
    """02 q3: one hash and one set lookup."""
    return hashlib.sha256(presented.encode()).hexdigest() in valid_digests


# -- lesson 03 ----------------------------------------------------------------------------------------------


class ReferenceApiKeyMiddleware:
    """Pass a request on to `app` only if it carries a valid x-api-key; GET /health is public."""

    def __init__(self, app, valid_digests):
        self.app = app
        self.valid_digests = valid_digests

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":  # start-up and shut-down: no request, nothing to check
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # a websocket, say: this server offers none, so it gets nothing
            return
        if scope["method"] == "GET" and scope["path"] == "/health":  # public: health checks carry no key
            await self.app(scope, receive, send)
            return
        keys = [value for name, value in scope["headers"] if name.lower() == b"x-api-key"]
        if len(keys) == 1 and hashlib.sha256(keys[0]).hexdigest() in self.valid_digests:
            await self.app(scope, receive, send)  # the counterpart of next(): pass the request on
            return
        if keys:
            code, message = errors.INVALID_API_KEY, "Unauthorized: invalid API key."
        else:
            code, message = errors.MISSING_API_KEY, "Unauthorized: missing API key. Send it in the x-api-key header."
        body = json.dumps({"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": None}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"www-authenticate", b'ApiKey realm="mcp", header="x-api-key"'),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# -- lesson 04 ----------------------------------------------------------------------------------------------


def reference_wrap(mcp_app: Any, keyring: KeyRing) -> ApiKeyMiddleware:
    """04 q1: the key check outside, the SDK's auth context inside it."""
    from mcp.server.auth.middleware.auth_context import AuthContextMiddleware

    from lesson_code.auth import ApiKeyMiddleware

    return ApiKeyMiddleware(AuthContextMiddleware(mcp_app), keyring)


# -- lesson 05 ----------------------------------------------------------------------------------------------


def reference_make_params(url: str, key: str) -> dict[str, Any]:
    """05 q1: the key rides in the x-api-key header."""
    return {"url": url, "headers": {"x-api-key": key}}


def reference_show(event: AgentEvent) -> None:
    """05 q2: one line per event."""
    if event.kind == "tool_call":
        print(f"→ {event.tool} {event.text}")
    elif event.kind == "tool_result":
        print(f"  ← {event.text}")
    else:
        print(f"answer: {event.text}")


# -- lesson 06 ----------------------------------------------------------------------------------------------


def reference_safe_to_send_key(url: str) -> bool:
    """06 q1: HTTPS anywhere, plain HTTP only to this machine."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or ""))


def reference_allowed_tools(role: str) -> set[str]:
    """06 q3: the tools whose scope the role grants."""
    return {tool for tool, scope in TOOL_SCOPES.items() if scope in ROLES[role]}


def reference_refusals(entries: list[dict[str, Any]]) -> dict[str, int]:
    """06 q4: how many requests the key check refused, by outcome."""
    counts: dict[str, int] = {}
    for entry in entries:
        if entry.get("event") == "auth" and entry.get("outcome") != "allowed":
            counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
    return counts
