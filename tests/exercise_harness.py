"""The one harness every exercise test uses: find the exercise cells, run an answer, get its verdict.

Every exercise cell in solutions/*.ipynb (a code cell with solution markers and
a `lessonNN.qK.check(answer)` call) becomes an `ExerciseCell`. `verdict_for`
runs code in a fresh namespace after the notebook's setup cell (plus the
imports other cells of that notebook make), evaluates the expression the cell
passes to `check()`, and returns the checker's `Result`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat

from lesson_code.exercises import Exercise, Result

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
ANSWERS = Path(__file__).resolve().parent / "exercises_answers"

CHECK_CALL = re.compile(r"^(lesson\d\d)\.(q\d+)\.check\((.*)\)\s*$", re.MULTILINE)
VERDICT = re.compile(r"^(⏳ Not attempted yet|❌|✅ Correct)", re.MULTILINE)

# Names wrong and right answers use that the notebooks import in cells other than the setup cell.
EXTRA_IMPORTS = """
import collections
import hashlib
import hmac
import json
import secrets
import time
import uuid
from urllib.parse import urlsplit
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from lesson_code import errors
from lesson_code.auth import ApiKeyMiddleware
from lesson_code.net import is_loopback
from lesson_code.keys import KeyRing, generate_key, key_digest
from lesson_code.roles import ROLES, TOOL_SCOPES
"""


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_learner_notebooks", ROOT / "scripts/make_learner_notebooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = load_script()


@dataclass(frozen=True)
class ExerciseCell:
    notebook: str
    index: int
    lesson: str
    name: str
    answer: str  # the expression passed to check()
    setup: str
    learner: str
    solution: str
    solution_blocks: tuple[str, ...]

    @property
    def exercise(self) -> Exercise:
        return getattr(importlib.import_module(f"lesson_code.exercises.{self.lesson}"), self.name)

    def __str__(self) -> str:
        return f"{self.notebook}:{self.lesson}.{self.name}"


def _exercise_cells() -> list[ExerciseCell]:
    found = []
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        code_cells = [c for c in nb.cells if c.cell_type == "code"]
        if not code_cells:
            continue
        setup = code_cells[0].source
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not script.has_markers(cell.source):
                continue
            match = CHECK_CALL.search(cell.source)
            if match is None:
                continue
            learner, solution, blocks, _ = script.split_cell(cell.source)
            found.append(
                ExerciseCell(path.name, index, match[1], match[2], match[3], setup, learner, solution, tuple(blocks))
            )
    return found


EXERCISE_CELLS = _exercise_cells()


def run_cell(setup: str, cell: str) -> tuple[dict[str, Any], str]:
    """Execute the setup cell and then one cell in a fresh namespace; return it and the printed text."""
    namespace: dict[str, Any] = {"__name__": "__exercise_cell__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(setup, "<setup cell>", "exec"), namespace)  # noqa: S102 - our own notebooks
        exec(compile(cell, "<exercise cell>", "exec"), namespace)  # noqa: S102
    return namespace, out.getvalue()


def verdict_line(text: str) -> str:
    lines = [line for line in text.splitlines() if VERDICT.match(line)]
    assert lines, f"no verdict printed in:\n{text}"
    return lines[-1]


def cell_for(lesson: str, name: str) -> ExerciseCell:
    return next(cell for cell in EXERCISE_CELLS if cell.lesson == lesson and cell.name == name)


def verdict_for(lesson: str, name: str, code: str) -> Result:
    """Run `code` (which defines the answer under the notebook's name) and check that answer."""
    cell = cell_for(lesson, name)
    namespace, _ = run_cell(cell.setup, EXTRA_IMPORTS + code)
    answer = eval(cell.answer, namespace)  # noqa: S307 - the expression from our own check() call
    return cell.exercise.evaluate(answer)


def takes_code(exercise: Exercise) -> bool:
    """An exercise whose answer is a function or a class (not a value to fill in)."""
    return "def " in exercise.solution_code or "class " in exercise.solution_code
