"""Roles and the permissions (scopes) each one grants.

A key carries one role. The middleware turns the role into a list of scopes on
the caller's identity, and every tool names the one scope it needs. Keeping the
mapping in one small table makes a review of "who may do what" a one-screen job.
"""

from __future__ import annotations

from typing import Final

LIST_READ: Final = "list:read"
LIST_WRITE: Final = "list:write"
ORDERS_READ: Final = "orders:read"
ORDERS_WRITE: Final = "orders:write"

ROLES: Final[dict[str, frozenset[str]]] = {
    # Everything the shopping assistant offers.
    "shopper": frozenset({LIST_READ, LIST_WRITE, ORDERS_READ, ORDERS_WRITE}),
    # Look, don't touch: a dashboard or a support agent.
    "viewer": frozenset({LIST_READ, ORDERS_READ}),
}

DEFAULT_ROLE: Final = "shopper"

# The single scope each tool requires.
TOOL_SCOPES: Final[dict[str, str]] = {
    "add_item": LIST_WRITE,
    "remove_item": LIST_WRITE,
    "list_items": LIST_READ,
    "place_order": ORDERS_WRITE,
    "list_orders": ORDERS_READ,
}


def scopes_for(role: str) -> frozenset[str]:
    """The scopes a role grants; an unknown role is a configuration error."""
    try:
        return ROLES[role]
    except KeyError:
        known = ", ".join(sorted(ROLES))
        raise ValueError(f"unknown role {role!r}: choose one of {known}") from None
