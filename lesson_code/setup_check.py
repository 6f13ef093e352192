"""The first cell of every notebook: is this kernel's environment the course's?

Why this module exists: a learner who opens a notebook with the wrong kernel, or who skipped
`pip install -r requirements.txt`, would otherwise meet a `ModuleNotFoundError` traceback deep
in some import. `require_course_packages()` checks every package `lesson_code` declares
(pyproject.toml's dependencies) before anything is imported, and raises `CourseSetupError`,
which IPython and Jupyter show as one line with the fix instead of a traceback.

(A missing `lesson_code` itself cannot be reported from here; the first cell guards that
import with its own one-line `SystemExit`.)
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

__all__ = ["FIX", "CourseSetupError", "declared_requirements", "missing_packages", "require_course_packages"]

DISTRIBUTION = "lesson-code"
FIX = (
    "in the course folder, run `pip install -r requirements.txt` with this kernel's Python "
    f"({sys.executable}), then Kernel → Restart Kernel"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


class CourseSetupError(RuntimeError):
    """The environment lacks something the course needs; `str()` is one line with the fix."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this list instead of a traceback.
        return [f"❌ {self}"]


def declared_requirements() -> list[str] | None:
    """lesson_code's runtime requirements: pyproject.toml beside the package (a checkout), else its metadata.

    None when neither is there, that is, when lesson_code is importable but not installed.
    """
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        with pyproject.open("rb") as file:
            dependencies = tomllib.load(file).get("project", {}).get("dependencies")
        if isinstance(dependencies, list):
            return [str(entry) for entry in dependencies]
    try:
        return metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return None


def missing_packages() -> list[str] | None:
    """The declared requirements that are not installed in this environment, in order; None if lesson_code is not."""
    requirements = declared_requirements()
    if requirements is None:
        return None
    missing = []
    for requirement in requirements:
        if ";" in requirement and "extra ==" in requirement:
            continue  # optional extras are not needed
        match = _NAME.match(requirement)
        if match is None:
            continue
        try:
            metadata.distribution(match.group())
        except metadata.PackageNotFoundError:
            missing.append(match.group())
    return missing


def require_course_packages() -> None:
    """Return quietly if every package the course needs is installed; else raise `CourseSetupError`."""
    missing = missing_packages()
    if missing is None:
        raise CourseSetupError(f"lesson_code is importable but not installed: {FIX}.") from None
    if missing:
        raise CourseSetupError(f"missing package(s) for the course: {', '.join(missing)}: {FIX}.") from None
