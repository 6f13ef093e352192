"""Reading a server-sent events (SSE) body: the one `data:` parser in the package.

An MCP server may answer a POST with `text/event-stream` instead of plain JSON:
each event's `data:` lines carry one JSON-RPC message. The widgets (to show an
answer) and the attack scorecard (to quote the server's words) both need that
message, so both read it here, by the rules of the HTML standard's event-stream
format: lines end in LF, CR or CRLF, a blank line ends an event, one space after
`data:` is dropped, and several `data:` lines of one event join with a newline.
"""

from __future__ import annotations

import json
import re
from typing import Any

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FIELD_NAMES = ("data", "event", "id", "retry")


def event_data(stream: str) -> list[str]:
    """The data of each event in an event-stream body, in order; events without data are left out."""
    events: list[str] = []
    lines: list[str] = []
    for line in _LINE_BREAK.split(stream):
        if not line:
            if lines:
                events.append("\n".join(lines))
            lines = []
            continue
        name, colon, value = line.partition(":")
        if name == "data":
            lines.append(value[1:] if colon and value.startswith(" ") else value)
    if lines:  # a stream cut off before its final blank line still delivered this event
        events.append("\n".join(lines))
    return events


def looks_like_event_stream(body: str) -> bool:
    """True if `body` starts like an event stream (a field or a comment) rather than like JSON."""
    first = body.lstrip("\r\n").split("\n", 1)[0]
    return first.startswith(":") or first.partition(":")[0] in _FIELD_NAMES


def json_message(body: str, *, event_stream: bool | None = None) -> Any:
    """The JSON a response carries, or None if it carries none.

    A plain body is parsed as a whole. An event stream (`event_stream=True`, or
    None to decide by looking) gives the last event whose data is JSON: in MCP the
    answer to a request ends its stream, after any notifications sent before it.
    """
    if event_stream is None:
        event_stream = looks_like_event_stream(body)
    candidates = reversed(event_data(body)) if event_stream else [body]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None
