"""How the widgets look: status badges, escaped HTML tables and text, one-line errors, and the display hook.

Every cell that is not HTML we built ourselves is escaped, and every error shown is
one redacted line, never a traceback or a key.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

from lesson_code.redaction import redact
from lesson_code.widgets.exchange import reason_phrase


def badge(status: int | None) -> str:
    """An HTML status badge coloured by outcome: green 2xx, red 401/403, amber 429, grey no answer."""
    if status is None:
        colour = "#6b7280"
    elif 200 <= status < 300:
        colour = "#15803d"
    elif status in (401, 403):
        colour = "#b91c1c"
    elif status == 429:
        colour = "#b45309"
    elif status < 500:
        colour = "#c2410c"
    else:
        colour = "#7e22ce"
    return (
        f'<span style="background:{colour};color:white;border-radius:4px;padding:1px 8px;'
        f'font-weight:bold;font-family:monospace">{html.escape(reason_phrase(status))}</span>'
    )


def html_table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, raw_html_column: int | None = None) -> str:
    """An HTML table; every cell is escaped except `raw_html_column` (used for a badge we built)."""
    head = "".join(f'<th style="text-align:left;padding:2px 10px">{html.escape(h)}</th>' for h in headers)
    body = []
    for row in rows:
        cells = [cell if i == raw_html_column else html.escape(str(cell)) for i, cell in enumerate(row)]
        body.append("<tr>" + "".join(f'<td style="padding:2px 10px">{c}</td>' for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def pre(text: str) -> str:
    """Escaped preformatted text."""
    return f'<pre style="margin:4px 0;white-space:pre-wrap">{html.escape(text)}</pre>'


def one_line(error: BaseException) -> str:
    """An exception as one readable, redacted line, never a traceback."""
    text = " ".join(str(error).split()) or type(error).__name__
    return redact(text)


class DisplaysWidget:
    """Show `.widget` when displayed, with this object's own summary as the text/plain.

    `_repr_mimebundle_` (not `_ipython_display_`) so that `display(obj)` and a bare
    `obj` on a cell's last line both give the live widget in a browser and a readable
    `__repr__` everywhere else (nbval compares text/plain, plain consoles print it).
    """

    widget: Any

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = repr(self)
        return bundle
