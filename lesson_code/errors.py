"""JSON-RPC 2.0 error responses sent straight from ASGI middleware.

MCP speaks JSON-RPC, so a refusal should too: a client that parses the body
finds `error.code` and `error.message` where it expects them, and `id` is
`null` because the middleware refuses before reading which request it was.

The codes sit in the range the MCP specification leaves to implementations
(-32000 to -32019). We avoid -32000 (CONNECTION_CLOSED) and -32001
(REQUEST_TIMEOUT): the SDK's client reads those as transport failures and
retries, which would turn "your key is wrong" into a slow, confusing hang.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from starlette.types import Send

MISSING_API_KEY: Final = -32010
INVALID_API_KEY: Final = -32011
TOO_MANY_FAILED_ATTEMPTS: Final = -32012
REQUEST_REJECTED: Final = -32013
# -32014 (HTTP 503): a cluster replica lost its shared key store for longer than its grace, so it
# fails closed (lesson_code.redis_sync). Not in ERROR_CODES, which lists the key check's own refusals
# (lesson 03 prints that table); the README's table has it.
KEY_STORE_UNAVAILABLE: Final = -32014

ERROR_CODES: Final[dict[int, str]] = {
    MISSING_API_KEY: "no API key was sent (HTTP 401)",
    INVALID_API_KEY: "the API key is not valid, or credentials conflict (HTTP 401)",
    TOO_MANY_FAILED_ATTEMPTS: "too many failed attempts from this address (HTTP 429)",
    REQUEST_REJECTED: "the request's headers are malformed or too large (HTTP 400/431)",
}


def error_body(code: int, message: str) -> bytes:
    """The JSON-RPC 2.0 error object, serialised."""
    payload = {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": None}
    return json.dumps(payload, separators=(",", ":")).encode()


@dataclass(frozen=True)
class PreparedError:
    """A complete error response, serialised once and sent as often as needed.

    Refusals are the hot path under attack, so the fixed ones (missing key,
    invalid key) are built when the module loads, not per request, and the
    429s once per distinct `Retry-After` value (`lesson_code.auth`).
    """

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]

    async def send(self, send: Send) -> None:
        # Fresh message dicts and header list each time: later middleware may modify them.
        await send({"type": "http.response.start", "status": self.status, "headers": list(self.headers)})
        await send({"type": "http.response.body", "body": self.body})


def prepare_error(
    status: int, code: int, message: str, extra_headers: Iterable[tuple[bytes, bytes]] = ()
) -> PreparedError:
    """Build the response for one JSON-RPC error: status, JSON body and headers."""
    body = error_body(code, message)
    headers = (
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *extra_headers,
    )
    return PreparedError(status, body, headers)


async def send_error(
    send: Send,
    status: int,
    code: int,
    message: str,
    extra_headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Send a complete JSON-RPC error response through a raw ASGI `send`."""
    await prepare_error(status, code, message, extra_headers).send(send)
