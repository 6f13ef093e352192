"""Tell a missing third-party package apart from a bug, with the standard library only.

`python -m lesson_code` run outside the course's environment fails with
`ModuleNotFoundError`; the user needs one line with the fix. The same
exception raised by a bug (a mistyped module of our own, a package that is
installed but imports something that is not) must keep its traceback, or the
bug hides behind advice that cannot help. This module imports nothing from
the course, so `__main__` can use it before anything else can fail.
"""

from __future__ import annotations

import importlib.util
import sys

INSTALL_ADVICE = "pip install -r requirements.txt"


def missing_package_line(exc: ModuleNotFoundError) -> str | None:
    """The one line to print for a third-party package absent from this Python, or None for a bug."""
    top = (exc.name or "").partition(".")[0]
    if not top or top == "lesson_code":
        return None
    try:
        absent = importlib.util.find_spec(top) is None
    except (ImportError, ValueError):
        absent = True
    if not absent:
        return None
    return (
        f"error: the package {top!r} is not installed for {sys.executable}: "
        f"run `{INSTALL_ADVICE}` with this Python (or activate the course's .venv)"
    )
