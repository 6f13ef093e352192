"""What a tool returned, decoded from the shapes the Agents SDK hands back as tool output.

Why its own module: both the agent (which shows each result as one short line) and the
offline stand-in model (which writes its answer from the results) need the decoded value,
and the decoding belongs to neither of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = ["parse_tool_output"]


def parse_tool_output(output: Any) -> Any:
    """The value a tool returned, from the shapes the Agents SDK uses for tool output.

    Accepts a plain string, a `{"type": "text"|"input_text", "text": ...}` part, or a list of
    such parts. Each text that is JSON is decoded; other text is kept as a string. A list of
    one part becomes that part's value; a longer list becomes a list of values.
    """
    if isinstance(output, str):
        return _json_or_text(output)
    if isinstance(output, dict):
        return _json_or_text(str(output.get("text", "")))
    if isinstance(output, Sequence):
        values = [parse_tool_output(part) for part in output]
        return values[0] if len(values) == 1 else values
    return output


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
