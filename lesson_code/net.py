"""Small, pure facts about network addresses, with no server imports.

A leaf module: exercises, the CLI and the app all ask "is this host this
machine?", and none of them should have to import the server stack (mcp,
starlette, SQLite) to get the answer.
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True if `host` names this machine: `localhost`, 127.0.0.0/8 or ::1 (brackets allowed)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
