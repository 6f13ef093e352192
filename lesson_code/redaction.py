"""Keep keys out of anything a person or a log file will see.

Two kinds of text need scrubbing. Anything shaped like one of our keys
(`sk-mcp-...`) is masked wherever it appears: widget output, log messages from
the SDK that quote a header value. And a request path is reduced before it is
logged, because a confused client may put its key in the URL
(`POST /mcp/sk-mcp-...`) and paths are attacker-chosen text.
"""

from __future__ import annotations

import logging
import re
from typing import Final

from lesson_code.keys import KEY_PREFIX, mask

KEY_SHAPE: Final = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9_\-]{8,}")
_LONG_TOKEN: Final = re.compile(r"[A-Za-z0-9_\-.~%+/=]{16,}")
KNOWN_PATHS: Final = frozenset({"/mcp", "/health"})
MAX_LOGGED_PATH: Final = 100

# SDK loggers that quote request headers or ids in their messages.
SDK_LOGGERS: Final = (
    "mcp.server.transport_security",
    "mcp.server.streamable_http_manager",
    "mcp.server.streamable_http",
)


def redact(text: str) -> str:
    """`text` with every key-shaped string masked."""
    return KEY_SHAPE.sub(lambda match: mask(match.group(0)), text)


def loggable_path(path: str) -> str:
    """A request path safe to log: known routes as they are, otherwise long tokens hidden."""
    if path in KNOWN_PATHS:
        return path
    return _LONG_TOKEN.sub("[redacted]", path)[:MAX_LOGGED_PATH]


class RedactingFilter(logging.Filter):
    """A logging filter that masks key-shaped strings and long header values in records."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.name == "mcp.server.transport_security":
            # "Invalid Origin header: <value>": the value is attacker- or client-chosen; keep its length only.
            head, sep, value = cleaned.partition(": ")
            cleaned = f"{head}{sep}<{len(value)} characters>" if sep else cleaned
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    """Attach the filter to the SDK loggers that quote request data (idempotent)."""
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
