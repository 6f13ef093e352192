"""The shopping assistant's MCP server: five tools over a `ShoppingStore`, each guarded by one scope.

Who may do what is decided here, per tool call, from the identity our API-key
middleware puts on the HTTP request (`scope["user"]`, an `AuthenticatedUser`
whose access token carries the key's name and its role's scopes). The rules:

* every tool needs exactly one scope (`lesson_code.roles.TOOL_SCOPES`), checked
  by one helper before the store is touched, so a refused call changes nothing;
* a call with no authenticated user at all is allowed: that is the deliberately
  open server of lesson 01. Once the middleware is in front, every call has a user;
* `tools/list` shows every tool to everyone. The tool list is not a secret, and a
  clear "permission denied: ... needs orders:write" teaches a model (and a
  learner) more than a tool that silently is not there.

The identity is read from the request, not only from the SDK's context variable:
the request is handed to the tool on both protocol paths (the stateful
`initialize` session and the sessionless 2026-07-28 one), whereas the context
variable is only set when the SDK's `AuthContextMiddleware` runs around the app.

Every call can be written to an `AuditLog` (who, from where, which tool, outcome)
without its arguments, so nothing a caller typed ends up in the log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal, TypeVar

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse
from typing_extensions import TypedDict

from lesson_code import __version__
from lesson_code.audit import AuditLog
from lesson_code.roles import TOOL_SCOPES
from lesson_code.store import MAX_NAME_LENGTH, MAX_QUANTITY, Item, Order, ShoppingError, ShoppingStore

T = TypeVar("T")

INSTRUCTIONS = f"""\
A shopping assistant. Keep the user's shopping list with add_item and remove_item,
show it with list_items, turn it into an order with place_order (this empties the
list) and show past orders with list_orders. Item names match case-insensitively
and may be up to {MAX_NAME_LENGTH} characters; a quantity is a whole number from 1 to
{MAX_QUANTITY}. If a tool answers "permission denied", the key in use does not allow
that action: tell the user instead of retrying."""

ItemName = Annotated[
    str, Field(description=f"What to buy, e.g. 'oat milk' (case-insensitive, up to {MAX_NAME_LENGTH} characters).")
]
# strict: a JSON `true` is not a quantity (pydantic would otherwise turn it into 1).
Quantity = Annotated[int, Field(strict=True, description=f"How many, a whole number from 1 to {MAX_QUANTITY}.")]


# Lists are wrapped in an object: MCPServer would otherwise send one content block
# per element, and an empty list as no content at all, which a model reads poorly.
class ShoppingList(TypedDict):
    items: list[Item]


class OrderHistory(TypedDict):
    orders: list[Order]


def _caller(ctx: Context) -> tuple[AccessToken | None, str | None]:
    """The caller's access token (None when unauthenticated) and its "ip:port" (None off HTTP)."""
    try:
        request = ctx.request_context.request  # a Starlette Request over HTTP, None in-process or over stdio
    except ValueError:  # no request at all: the tool was called directly, `await server.call_tool(...)`
        request = None
    user = request.scope.get("user") if isinstance(request, Request) else None
    token = user.access_token if isinstance(user, AuthenticatedUser) else get_access_token()
    peer = request.client if isinstance(request, Request) else None
    return token, (f"{peer.host}:{peer.port}" if peer else None)


class PermissionDenied(ToolError):
    """The caller's role does not grant the scope a tool needs."""


def require_scope(token: AccessToken | None, tool: str) -> None:
    """Refuse the call unless the caller's role grants the tool's scope; an unauthenticated caller may do anything."""
    needed = TOOL_SCOPES[tool]
    if token is not None and needed not in token.scopes:
        raise PermissionDenied(f'permission denied: this key\'s role does not grant "{needed}", which {tool} needs')


def build_shopping_server(
    store: ShoppingStore,
    *,
    audit: AuditLog | None = None,
    name: str = "shopping-assistant",
    token_verifier: TokenVerifier | None = None,
    auth: AuthSettings | None = None,
) -> MCPServer:
    """An MCP server exposing `store` as five scope-checked tools, plus a public `/health` route.

    `token_verifier` and `auth` switch on the SDK's own Bearer-token check instead of our
    middleware (see `lesson_code.sdk_bearer`); the tools and their scope checks are the same.
    """
    server = MCPServer(
        name,
        instructions=INSTRUCTIONS,
        version=__version__,  # serverInfo.version: clients and logs can tell which course release answered
        log_level="WARNING",
        token_verifier=token_verifier,
        auth=auth,
    )

    def guarded(ctx: Context, tool: str, action: Callable[[], T]) -> T:
        """Check the scope, run `action`, turn store refusals into tool errors, and audit the outcome."""
        token, client = _caller(ctx)

        def record(outcome: Literal["ok", "denied", "error"], detail: str | None) -> None:
            if audit is not None:
                key = token.client_id if token is not None else "anonymous"
                audit.record_tool_call(key, client, tool, outcome, detail)

        try:
            require_scope(token, tool)
            result = action()
        except PermissionDenied as exc:
            record("denied", str(exc))
            raise
        except ShoppingError as exc:
            record("error", str(exc))
            raise ToolError(str(exc)) from exc
        except Exception as exc:
            record("error", f"internal error ({type(exc).__name__})")  # the client sees only a generic message
            raise
        record("ok", None)
        return result

    # Tools are plain functions: MCPServer runs them in a worker thread, so SQLite's
    # fsync and the audit file write never block the event loop.
    @server.tool(
        description="Add an item to the shopping list, or raise its quantity if it is already there. "
        "Returns the item with its new total.",
        annotations=ToolAnnotations(title="Add item", read_only_hint=False, destructive_hint=False),
    )
    def add_item(ctx: Context, name: ItemName, quantity: Quantity = 1) -> Item:
        return guarded(ctx, "add_item", lambda: store.add_item(name, quantity))

    @server.tool(
        description="Remove an item from the shopping list: leave out quantity to remove it entirely, "
        "or give a quantity to remove only that many. Returns what is left (quantity 0 when gone).",
        annotations=ToolAnnotations(title="Remove item", read_only_hint=False, destructive_hint=True),
    )
    def remove_item(ctx: Context, name: ItemName, quantity: Quantity | None = None) -> Item:
        return guarded(ctx, "remove_item", lambda: store.remove_item(name, quantity))

    @server.tool(
        description="Show the shopping list: every item and its quantity, sorted by name.",
        annotations=ToolAnnotations(title="List items", read_only_hint=True),
    )
    def list_items(ctx: Context) -> ShoppingList:
        return guarded(ctx, "list_items", lambda: ShoppingList(items=store.list_items()))

    @server.tool(
        description="Order everything on the shopping list and empty the list. Fails if the list is empty. "
        "Returns the order id, the time it was placed (UTC) and the items ordered.",
        annotations=ToolAnnotations(title="Place order", read_only_hint=False, destructive_hint=False),
    )
    def place_order(ctx: Context) -> Order:
        return guarded(ctx, "place_order", store.place_order)

    @server.tool(
        description="Show every order placed so far, oldest first, with its items.",
        annotations=ToolAnnotations(title="List orders", read_only_hint=True),
    )
    def list_orders(ctx: Context) -> OrderHistory:
        return guarded(ctx, "list_orders", lambda: OrderHistory(orders=store.list_orders()))

    @server.custom_route("/health", methods=["GET"])
    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "server": name})

    return server
