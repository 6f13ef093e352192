"""Names and limits the attack modules share: groups, placeholders, and how much to send and read."""

from __future__ import annotations

from typing import Final

Header = tuple[bytes, bytes]

GROUPS: Final[dict[str, str]] = {
    "header": "the key header itself: missing, malformed, duplicated, look-alike or in the wrong header",
    "path": "other spellings of the path, hoping the check only guards '/mcp'",
    "method": "every HTTP method, hoping the check only guards POST",
    "body": "abusive bodies sent without a key: the check must refuse before reading them",
    "origin-host": "a valid key from a foreign web page (Origin) or a rebinding DNS name (Host)",
    "identity": "keys that exist but may not do this: revoked, read-only, or two keys at once",
}

# Placeholders an attack may use in its target, headers or body; the runner fills them in.
VALID: Final = b"{valid}"
SECOND: Final = b"{second}"
VIEWER: Final = b"{viewer}"
REVOKED: Final = b"{revoked}"
RANDOM: Final = b"{random}"
HOST: Final = b"{host}"
PORT: Final = b"{port}"
OPTIONAL_KEYS: Final = {SECOND: "second_key", VIEWER: "viewer_key", REVOKED: "revoked_key"}
MAX_BODY_KEPT: Final = 256 * 1024  # of a response, enough to judge it; a stream could be endless
STREAM_GRACE_SECONDS: Final = 0.5  # how long to read a GET event stream that got through
SEND_CHUNK: Final = 64 * 1024
EXPECT_CONTINUE_OVER: Final = 64 * 1024  # bigger bodies wait for "100 Continue", as curl's do
CONTINUE_WAIT_SECONDS: Final = 1.0
SHOWN_FAILURES: Final = 15  # notebook views stay short; table() has everything
# Loggers that warn about each rejected Origin/Host/session: expected noise while attacking on purpose.
NOISY_LOGGERS: Final = ("mcp.server.transport_security", "mcp.server.streamable_http_manager")
