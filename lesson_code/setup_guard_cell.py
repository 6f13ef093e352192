"""The lines every notebook's first code cell starts with: a one-line answer to a broken setup.

Why this module exists: the guard must work when `lesson_code` itself is missing, so it is
plain code in the notebook, not an import; this module holds its one true text, so that
`tests/test_setup_first_cell.py` can check every notebook carries it and a script can add it.
"""

from __future__ import annotations

from typing import Final

__all__ = ["FIRST_CELL_GUARD", "with_guard"]

FIRST_CELL_GUARD: Final = """\
try:  # the course's package; if it is missing, say how to install it in one line
    from lesson_code.setup_check import require_course_packages
except ModuleNotFoundError:

    class SetupError(Exception):
        def _render_traceback_(self):  # Jupyter shows this one line instead of a traceback
            return [str(self)]

    raise SetupError(
        "❌ lesson_code is not installed for this kernel: in the course folder run "
        "`pip install -r requirements.txt`, then pick that environment's kernel and restart."
    ) from None
require_course_packages()  # a missing package: one line with the fix, not a traceback
"""


def with_guard(source: str) -> str:
    """`source` (a first cell) starting with the guard; unchanged if it already does."""
    if source.startswith(FIRST_CELL_GUARD):
        return source
    return FIRST_CELL_GUARD + "\n" + source
