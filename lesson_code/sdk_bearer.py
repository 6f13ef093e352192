"""The MCP SDK's own authentication path, for comparison with our middleware.

The SDK can check `Authorization: Bearer <token>` itself: give `MCPServer` a
`TokenVerifier` and `AuthSettings`. It is built for OAuth (it serves protected
resource metadata and answers 401 with an OAuth-style JSON body, not JSON-RPC),
and it reads only the Bearer header. Our API keys fit it too: the verifier
below checks a presented token against the same `KeyRing`.

Lesson 06 shows both side by side; the benchmarks measure both.
"""

from __future__ import annotations

from pathlib import Path

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl
from starlette.types import ASGIApp

from lesson_code.app import MAX_REQUEST_BODY_BYTES, transport_security_for
from lesson_code.keys import KeyRing
from lesson_code.shopping_server import build_shopping_server
from lesson_code.store import ShoppingStore


class KeyRingTokenVerifier:
    """A `TokenVerifier` (the SDK's protocol) that accepts our API keys as Bearer tokens."""

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    async def verify_token(self, token: str) -> AccessToken | None:
        record = self.keyring.lookup(token)
        if record is None:
            return None
        return AccessToken(
            token=record.fingerprint, client_id=record.name, scopes=sorted(record.scopes), subject=record.fingerprint
        )


def create_sdk_bearer_app(
    keyring: KeyRing, db_path: str | Path, *, base_url: str = "http://127.0.0.1:8000"
) -> tuple[ASGIApp, ShoppingStore]:
    """The shopping assistant protected by the SDK's Bearer check instead of our middleware."""
    store = ShoppingStore(db_path)
    # Our keys are not OAuth tokens issued for a resource, so there is no audience to check.
    settings = AuthSettings(
        issuer_url=AnyHttpUrl(base_url),
        resource_server_url=AnyHttpUrl(f"{base_url}/mcp"),
        required_scopes=[],
        validate_token_resource=False,
    )
    server = build_shopping_server(store, token_verifier=KeyRingTokenVerifier(keyring), auth=settings)
    app = server.streamable_http_app(
        transport_security=transport_security_for("127.0.0.1"), max_request_body_size=MAX_REQUEST_BODY_BYTES
    )
    return app, store
