"""The API-key check: pure ASGI middleware in front of the MCP app.

This is where the key check lives. Every HTTP request is refused with a
JSON-RPC 2.0 error and HTTP 401 unless it carries a valid key, except a short
allow-list of public paths (`GET /health`). Because the rule is "deny unless
allowed" rather than "protect /mcp", no path spelling (`/mcp/`, `//mcp`,
`/MCP`, `%2Fmcp`) and no method can slip past it.

Pure ASGI (not Starlette's `BaseHTTPMiddleware`) so the MCP app's streamed
(SSE) responses pass through untouched: on success we simply `await` the inner
app, the counterpart of `next()` in Express-style middleware.

A request without a valid key is answered with a prepared response (built once,
when this module loads) and costs O(1) memory: `find_credential` returns the
credential or a `Refusal` value; nothing is raised, so no traceback ever keeps a
refused request's frame (its scope, its presented key) alive. With a throttle,
failures are counted per address, and an address past its limit gets 429 with
`Retry-After` for requests without a valid key. A valid key is always served
and never touches the throttle (see `lesson_code/throttle.py` for why that is
safe); that is also the hot path, so it does as little as possible.

On success the caller is identified to the MCP SDK the way its own auth does:
`scope["user"]` is an `AuthenticatedUser` whose `client_id` is the key's name
and whose scopes come from the key's role. The SDK then binds each session to
that identity, and tools can ask who is calling.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import anyio
import anyio.to_thread
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lesson_code import errors
from lesson_code.audit import AuditLog
from lesson_code.keys import KeyRecord, KeyRing
from lesson_code.redaction import loggable_path
from lesson_code.throttle import FailedAttemptThrottle, client_key

API_KEY_HEADER: Final = "x-api-key"
PUBLIC_PATHS: Final = frozenset({"/health"})
PUBLIC_METHODS: Final = frozenset({"GET", "HEAD"})
MAX_HEADER_BYTES: Final = 8 * 1024

CHALLENGE_HEADERS: Final = (
    (b"www-authenticate", b'ApiKey realm="mcp", header="x-api-key"'),
    (b"www-authenticate", b'Bearer realm="mcp"'),
)
WEBSOCKET_POLICY_VIOLATION: Final = {"type": "websocket.close", "code": 1008}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: HTTP status, JSON-RPC code, message, audit outcome, and the prepared response.

    An immutable value, defined once per reason and returned (never raised) for
    every refused request: refusing is what the server does most under attack,
    so it costs next to nothing and keeps nothing of the request.
    """

    status: int
    code: int
    message: str
    outcome: str
    response: errors.PreparedError = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        challenge = CHALLENGE_HEADERS if self.status == 401 else ()
        object.__setattr__(self, "response", errors.prepare_error(self.status, self.code, self.message, challenge))


MISSING: Final = Refusal(
    401, errors.MISSING_API_KEY, "Unauthorized: missing API key. Send it in the x-api-key header.", "missing"
)
INVALID: Final = Refusal(401, errors.INVALID_API_KEY, "Unauthorized: invalid API key.", "invalid")
DUPLICATE: Final = Refusal(
    401,
    errors.INVALID_API_KEY,
    "Unauthorized: send exactly one API key (duplicate or conflicting credentials).",
    "conflicting",
)
WRONG_SCHEME: Final = Refusal(
    401,
    errors.INVALID_API_KEY,
    "Unauthorized: unsupported Authorization scheme; use x-api-key or Bearer.",
    "wrong_scheme",
)
HEADERS_TOO_LARGE: Final = Refusal(
    431, errors.REQUEST_REJECTED, "Request header fields too large.", "headers_too_large"
)


def find_credential(headers: Iterable[tuple[bytes, bytes]], header: bytes = b"x-api-key") -> bytes | Refusal:
    """The one credential a request presents, from `header` or `Authorization: Bearer`, or why there is none.

    Returns a `Refusal` when there is none, more than one, they disagree, or the
    headers are oversized. Header names are compared lower-cased, as HTTP says
    they are case-insensitive.
    """
    api_key: bytes | None = None
    authorization: bytes | None = None
    repeated = False
    size = 0
    for name, value in headers:
        size += len(name) + len(value)
        name = name.lower()
        if name == header:
            repeated = repeated or api_key is not None
            api_key = value.strip(b" \t")
        elif name == b"authorization":
            repeated = repeated or authorization is not None
            authorization = value.strip(b" \t")
    if size > MAX_HEADER_BYTES:
        return HEADERS_TOO_LARGE
    if repeated:
        return DUPLICATE
    bearer = None
    if authorization is not None:
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() == b"bearer":
            bearer = token.strip(b" \t")
        elif api_key is None:
            return WRONG_SCHEME
    if api_key is not None:
        if bearer is not None and api_key != bearer:
            return DUPLICATE
        return api_key
    return MISSING if bearer is None else bearer


@functools.lru_cache(maxsize=512)
def throttled_response(wait: int) -> errors.PreparedError:
    """The 429 for "try again in `wait` s": one prepared response per distinct wait (at most one per second)."""
    message = f"Too many failed attempts from this address: try again in {wait} s."
    return errors.prepare_error(429, errors.TOO_MANY_FAILED_ATTEMPTS, message, [(b"retry-after", str(wait).encode())])


class ApiKeyMiddleware:
    """Refuse every HTTP request without a valid API key, except public paths.

    Optional parts, each off when `None`: a failed-attempt throttle and an audit log.
    The audit log is closed (everything buffered written) when the app's lifespan
    shuts down.
    """

    def __init__(
        self,
        app: ASGIApp,
        keyring: KeyRing,
        *,
        header: str = API_KEY_HEADER,
        public_paths: Iterable[str] = PUBLIC_PATHS,
        throttle: FailedAttemptThrottle | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.app = app
        self.keyring = keyring
        self.header = header.lower().encode("ascii")
        self.public_paths = frozenset(public_paths)
        self.throttle = throttle
        self.audit = audit
        self._identities: dict[str, tuple[KeyRecord, AuthenticatedUser, AuthCredentials]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["path"] in self.public_paths and scope["method"] in PUBLIC_METHODS:
                await self.app(scope, receive, send)
                return
        elif scope["type"] == "lifespan":  # nothing to authenticate; close the audit log at shutdown
            await self.app(scope, receive, self._closing_audit_at_shutdown(send))
            return
        elif scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return

        credential = find_credential(scope["headers"], self.header)
        if isinstance(credential, Refusal):
            await self._refuse(scope, send, credential)
            return
        record = self.keyring.lookup(credential)
        if record is None:
            await self._refuse(scope, send, INVALID)
            return

        self._record(scope, "allowed", record)
        user, credentials = self._identity_for(record)
        scope = {**scope, "user": user, "auth": credentials}  # a copy, as the ASGI spec asks of middleware
        if scope["type"] == "http" and scope["method"] == "GET":
            await self._serve_stream(scope, receive, send, record)
        else:
            await self.app(scope, receive, send)

    async def _serve_stream(self, scope: Scope, receive: Receive, send: Send, record: KeyRecord) -> None:
        """Serve a long-lived GET (an SSE stream) and end it if the key is revoked meanwhile."""

        async def watch(cancel: anyio.CancelScope) -> None:
            while True:
                await anyio.sleep(self.keyring.reload_interval)
                if not self.keyring.is_valid_digest(record.sha256):
                    self._record(scope, "revoked_during_stream", record)
                    cancel.cancel()
                    return

        async with anyio.create_task_group() as group:
            group.start_soon(watch, group.cancel_scope)
            await self.app(scope, receive, send)
            group.cancel_scope.cancel()

    def _identity_for(self, record: KeyRecord) -> tuple[AuthenticatedUser, AuthCredentials]:
        """The SDK identity and Starlette credentials for a key, built once per key (both immutable).

        The cache holds at most about twice the ring's size: keys rotated or revoked over a long run
        do not pile up in it.
        """
        cached = self._identities.get(record.sha256)
        if cached is not None and cached[0] is record:
            return cached[1], cached[2]
        token = AccessToken(
            token=record.fingerprint,  # never the key itself
            client_id=record.name,
            scopes=sorted(record.scopes),
            subject=record.fingerprint,
        )
        user, credentials = AuthenticatedUser(token), AuthCredentials(sorted(record.scopes))
        if len(self._identities) >= 2 * len(self.keyring) + 16:  # rotated and revoked keys: start afresh
            self._identities.clear()
        self._identities[record.sha256] = (record, user, credentials)
        return user, credentials

    async def _refuse(self, scope: Scope, send: Send, refusal: Refusal) -> None:
        """Answer a request without a valid key: 429 if its address is throttled, else count it and refuse."""
        if refusal.status == 401 and self.throttle is not None:
            address = _client_address(scope)[0]
            wait = await self.throttle.retry_after(address)
            if wait:
                if self.audit is not None:
                    key = client_key(address)
                    self.audit.record_throttled(key, client=key, method=_method(scope), path=_path(scope))
                await self._send(scope, send, throttled_response(wait))
                return
            await self.throttle.record_failure(address)
        self._record(scope, refusal.outcome, None)
        await self._send(scope, send, refusal.response)

    async def _send(self, scope: Scope, send: Send, response: errors.PreparedError) -> None:
        if scope["type"] == "websocket":
            await send(dict(WEBSOCKET_POLICY_VIOLATION))
        else:
            await response.send(send)

    def _record(self, scope: Scope, outcome: str, record: KeyRecord | None) -> None:
        audit = self.audit
        if audit is None:
            return
        client = scope.get("client")
        audit.record_auth(
            outcome,
            f"{client[0]}:{client[1]}" if client else "unknown:0",
            _method(scope),
            _path(scope),
            record.name if record is not None else None,
            record.fingerprint if record is not None else None,
        )

    def _closing_audit_at_shutdown(self, send: Send) -> Send:
        """Wrap the lifespan's `send` so the audit log is closed (flushed) before shutdown completes."""
        audit = self.audit
        if audit is None:
            return send

        async def send_then_close(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await anyio.to_thread.run_sync(audit.close)
            await send(message)

        return send_then_close


def _client_address(scope: Scope) -> tuple[str, int]:
    client = scope.get("client")
    return (str(client[0]), int(client[1])) if client else ("unknown", 0)


def _method(scope: Scope) -> str:
    return str(scope.get("method", "WEBSOCKET"))


def _path(scope: Scope) -> str:
    return loggable_path(scope.get("path", ""))
