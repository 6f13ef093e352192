"""The API-key check: pure ASGI middleware in front of the MCP app.

This is where the key check lives. Every HTTP request is refused with a
JSON-RPC 2.0 error and HTTP 401 unless it carries a valid key, except a short
allow-list of public paths (`GET /health`). Because the rule is "deny unless
allowed" rather than "protect /mcp", no path spelling (`/mcp/`, `//mcp`,
`/MCP`, `%2Fmcp`) and no method can slip past it.

Pure ASGI (not Starlette's `BaseHTTPMiddleware`) so the MCP app's streamed
(SSE) responses pass through untouched: on success we simply `await` the inner
app, the counterpart of `next()` in Express-style middleware.

On success the caller is identified to the MCP SDK the way its own auth does:
`scope["user"]` is an `AuthenticatedUser` whose `client_id` is the key's name
and whose scopes come from the key's role. The SDK then binds each session to
that identity, and tools can ask who is calling.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Receive, Scope, Send

from lesson_code import errors
from lesson_code.audit import AuditLog
from lesson_code.keys import KeyRecord, KeyRing
from lesson_code.redaction import loggable_path
from lesson_code.throttle import FailedAttemptThrottle

API_KEY_HEADER: Final = "x-api-key"
PUBLIC_PATHS: Final = frozenset({"/health"})
PUBLIC_METHODS: Final = frozenset({"GET", "HEAD"})
MAX_HEADER_BYTES: Final = 8 * 1024

CHALLENGE_HEADERS: Final = (
    (b"www-authenticate", b'ApiKey realm="mcp", header="x-api-key"'),
    (b"www-authenticate", b'Bearer realm="mcp"'),
)


class Refusal(Exception):
    """Why a request is refused: HTTP status, JSON-RPC code, message, audit outcome.

    The response is prepared once, when the refusal is defined: refusing is what
    the server does most under attack, so it should cost next to nothing.
    """

    def __init__(self, status: int, code: int, message: str, outcome: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.outcome = status, code, message, outcome
        self.response = errors.prepare_error(status, code, message, CHALLENGE_HEADERS if status == 401 else ())


MISSING = Refusal(
    401, errors.MISSING_API_KEY, "Unauthorized: missing API key. Send it in the x-api-key header.", "missing"
)
INVALID = Refusal(401, errors.INVALID_API_KEY, "Unauthorized: invalid API key.", "invalid")
DUPLICATE = Refusal(
    401, errors.INVALID_API_KEY, "Unauthorized: send exactly one API key (duplicate or conflicting credentials).",
    "conflicting",
)
WRONG_SCHEME = Refusal(
    401, errors.INVALID_API_KEY, "Unauthorized: unsupported Authorization scheme; use x-api-key or Bearer.",
    "wrong_scheme",
)
HEADERS_TOO_LARGE = Refusal(431, errors.REQUEST_REJECTED, "Request header fields too large.", "headers_too_large")


def find_credential(headers: Iterable[tuple[bytes, bytes]], header: bytes = b"x-api-key") -> bytes:
    """The one credential a request presents, from `header` or `Authorization: Bearer`.

    Raises `Refusal` when there is none, more than one, they disagree, or the
    headers are oversized. Header names are compared lower-cased, as HTTP says
    they are case-insensitive.
    """
    api_keys: list[bytes] = []
    authorizations: list[bytes] = []
    size = 0
    for name, value in headers:
        size += len(name) + len(value)
        name = name.lower()
        if name == header:
            api_keys.append(value.strip(b" \t"))
        elif name == b"authorization":
            authorizations.append(value.strip(b" \t"))
    if size > MAX_HEADER_BYTES:
        raise HEADERS_TOO_LARGE
    if len(api_keys) > 1 or len(authorizations) > 1:
        raise DUPLICATE
    bearer = None
    if authorizations:
        scheme, _, token = authorizations[0].partition(b" ")
        if scheme.lower() == b"bearer":
            bearer = token.strip(b" \t")
        elif not api_keys:
            raise WRONG_SCHEME
    if api_keys and bearer is not None and api_keys[0] != bearer:
        raise DUPLICATE
    credential = api_keys[0] if api_keys else bearer
    if credential is None:
        raise MISSING
    return credential


class ApiKeyMiddleware:
    """Refuse every HTTP request without a valid API key, except public paths.

    Optional parts, each off when `None`: a failed-attempt throttle and an audit log.
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
        if scope["type"] not in ("http", "websocket"):  # lifespan: nothing to authenticate
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"] in self.public_paths and scope["method"] in PUBLIC_METHODS:
            await self.app(scope, receive, send)
            return

        client = _client_address(scope)
        try:
            if self.throttle is not None and (wait := self.throttle.retry_after(client[0])):
                await self._refuse_throttled(scope, send, client, wait)
                return
            credential = find_credential(scope["headers"], self.header)
            record = self.keyring.lookup(credential)
            if record is None:
                raise INVALID
        except Refusal as refusal:
            if self.throttle is not None and refusal.status == 401:
                self.throttle.record_failure(client[0])
            self._record(scope, client, refusal.outcome, None)
            await self._refuse(scope, send, refusal)
            return

        self._record(scope, client, "allowed", record)
        user, credentials = self._identity_for(record)
        scope = {**scope, "user": user, "auth": credentials}
        if scope.get("method") == "GET" and scope["type"] == "http":
            await self._serve_stream(scope, receive, send, record)
        else:
            await self.app(scope, receive, send)

    async def _serve_stream(self, scope: Scope, receive: Receive, send: Send, record: KeyRecord) -> None:
        """Serve a long-lived GET (an SSE stream) and end it if the key is revoked meanwhile."""

        async def watch(cancel: anyio.CancelScope) -> None:
            while True:
                await anyio.sleep(self.keyring.reload_interval)
                if not self.keyring.is_valid_digest(record.sha256):
                    self._record(scope, _client_address(scope), "revoked_during_stream", record)
                    cancel.cancel()
                    return

        async with anyio.create_task_group() as group:
            group.start_soon(watch, group.cancel_scope)
            await self.app(scope, receive, send)
            group.cancel_scope.cancel()

    def _identity_for(self, record: KeyRecord) -> tuple[AuthenticatedUser, AuthCredentials]:
        """The SDK identity and Starlette credentials for a key, built once per key (both immutable)."""
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
        self._identities[record.sha256] = (record, user, credentials)
        return user, credentials

    async def _refuse(self, scope: Scope, send: Send, refusal: Refusal) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await refusal.response.send(send)

    async def _refuse_throttled(self, scope: Scope, send: Send, client: tuple[str, int], wait: int) -> None:
        self._record(scope, client, "throttled", None)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        message = f"Too many failed attempts from this address: try again in {wait} s."
        await errors.send_error(
            send, 429, errors.TOO_MANY_FAILED_ATTEMPTS, message, [(b"retry-after", str(wait).encode())]
        )

    def _record(self, scope: Scope, client: tuple[str, int], outcome: str, record: KeyRecord | None) -> None:
        if self.audit is None:
            return
        self.audit.record(
            "auth",
            outcome=outcome,
            key=record.name if record else None,
            fingerprint=record.fingerprint if record else None,
            client=f"{client[0]}:{client[1]}",
            method=scope.get("method", "WEBSOCKET"),
            path=loggable_path(scope.get("path", "")),
        )


def _client_address(scope: Scope) -> tuple[str, int]:
    client = scope.get("client")
    return (str(client[0]), int(client[1])) if client else ("unknown", 0)
