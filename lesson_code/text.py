"""Small text helpers for calm, readable output: one of each, used everywhere.

Notebooks, widgets, the attack scorecard, the agent's transcript and the
exercise checks all shorten long values, list a few words, and print small
tables. Written once here, the same value always looks the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

ELLIPSIS = "…"


def shorten(text: str, limit: int) -> str:
    """`text` on one line (runs of whitespace become one space), cut to `limit` characters with `…`."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


def join_words(words: Iterable[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(words)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def text_table(columns: Sequence[str], rows: Iterable[Sequence[object]], *, rule: bool = False) -> str:
    """A plain-text table with aligned columns (no trailing spaces); `rule=True` adds a dashed line under the head.

    For reprs, plain consoles and the text/plain side of a displayed table.
    """
    grid = [list(columns), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in grid) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in grid]
    if rule:
        lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
