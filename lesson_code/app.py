"""Build the shopping assistant as an ASGI app: secured (the default) or open.

The secured app is three layers, outermost first:

    ApiKeyMiddleware        refuses requests without a valid key (401)
    AuthContextMiddleware   the SDK's: makes the caller visible to tools
    MCP Starlette app       /mcp (the tools) and GET /health

The order matters: the key check must run before anything else reads the
request, and the SDK's context middleware needs `scope["user"]`, which only
the key check sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from lesson_code.audit import AuditLog
from lesson_code.auth import ApiKeyMiddleware
from lesson_code.keys import KeyRing
from lesson_code.net import is_loopback as is_loopback  # re-exported: lesson 06 and the CLI import it from here
from lesson_code.redaction import install_log_redaction
from lesson_code.shopping_server import build_shopping_server
from lesson_code.store import ShoppingStore
from lesson_code.throttle import FailedAttemptThrottle

MAX_REQUEST_BODY_BYTES = 1024 * 1024  # tool calls are small; the SDK's default is 4 MiB


@dataclass
class ShoppingApp:
    """The ASGI app plus the parts a notebook or test wants to look at."""

    asgi: ASGIApp
    store: ShoppingStore
    keyring: KeyRing | None
    audit: AuditLog | None
    throttle: FailedAttemptThrottle | None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.asgi(scope, receive, send)


def create_secured_app(
    keyring: KeyRing,
    db_path: str | Path,
    *,
    audit: AuditLog | None = None,
    throttle: FailedAttemptThrottle | None = None,
    host: str = "127.0.0.1",
    allowed_hosts: Sequence[str] = (),
    stateless: bool = False,
) -> ShoppingApp:
    """The shopping assistant behind the API-key check.

    `host` is the address the server will bind; `allowed_hosts` adds
    `Host` header values (for example `shop.example.com:443`) accepted on top
    of loopback, for the SDK's DNS-rebinding protection.
    """
    install_log_redaction()
    if audit is None:
        audit = AuditLog()
    store = ShoppingStore(db_path)
    mcp_app = _mcp_app(store, audit, host, allowed_hosts, stateless)
    asgi = ApiKeyMiddleware(AuthContextMiddleware(mcp_app), keyring, throttle=throttle, audit=audit)
    return ShoppingApp(asgi=asgi, store=store, keyring=keyring, audit=audit, throttle=throttle)


def create_open_app_for_threat_model(db_path: str | Path, *, host: str = "127.0.0.1") -> ShoppingApp:
    """The shopping assistant with NO authentication, for lesson 01 only.

    It refuses to be built for anything but a loopback address, so the open
    version can never be reachable from another machine.
    """
    if not is_loopback(host):
        raise ValueError(f"the open (unauthenticated) server may only bind to loopback, not {host!r}")
    store = ShoppingStore(db_path)
    mcp_app = _mcp_app(store, None, host, (), False)
    return ShoppingApp(asgi=mcp_app, store=store, keyring=None, audit=None, throttle=None)


def transport_security_for(host: str, allowed_hosts: Sequence[str] = ()) -> TransportSecuritySettings:
    """Host/Origin checks against DNS rebinding: loopback always, plus `allowed_hosts`."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *allowed_hosts]
    if not is_loopback(host) and host not in ("0.0.0.0", "::"):
        hosts.append(f"{host}:*")
    origins = [f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def _mcp_app(
    store: ShoppingStore, audit: AuditLog | None, host: str, allowed_hosts: Sequence[str], stateless: bool
) -> ASGIApp:
    # A fresh MCPServer and Starlette app every time: the SDK's session manager runs once per app.
    server = build_shopping_server(store, audit=audit)
    return server.streamable_http_app(
        transport_security=transport_security_for(host, allowed_hosts),
        host=host,
        stateless_http=stateless,
        max_request_body_size=MAX_REQUEST_BODY_BYTES,
    )
