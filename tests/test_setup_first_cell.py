"""The first code cell of every notebook turns a broken setup into one line with the fix.

Two failures a learner meets in the first cell: the kernel is not the course's environment
(`lesson_code` is missing), or a package is missing from it. Each must be one line, no
traceback, and "Run All" must stop there. Both are simulated in a real kernel: a `None` in
`sys.modules` makes `lesson_code` unimportable, and a patched `importlib.metadata` hides one
installed package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest

from lesson_code.setup_check import CourseSetupError, require_course_packages
from lesson_code.setup_guard_cell import FIRST_CELL_GUARD, with_guard

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted([*ROOT.glob("solutions/0*.ipynb"), *ROOT.glob("notebooks/0*.ipynb")])


def _first_code_cell(path: Path) -> str:
    notebook = nbformat.read(path, as_version=4)
    return next(cell.source for cell in notebook.cells if cell.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_every_notebook_starts_with_the_guard(path: Path) -> None:
    assert _first_code_cell(path).startswith(FIRST_CELL_GUARD), f"{path.name}: run the first-cell guard script"


def test_with_guard_adds_it_once() -> None:
    once = with_guard("import os\n")
    assert once == FIRST_CELL_GUARD + "\nimport os\n"
    assert with_guard(once) == once


def _run_first_cell(preparation: str) -> list[dict[str, Any]]:
    """Outputs of lesson 00's first cell, and of the cell after it, in a fresh kernel prepared by `preparation`."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(preparation),
        nbformat.v4.new_code_cell(_first_code_cell(ROOT / "notebooks" / "00_start_here.ipynb")),
        nbformat.v4.new_code_cell("print('the next cell ran')"),
    ]
    # Like Run All: stop at the first error.
    with pytest.raises(nbclient.exceptions.CellExecutionError):
        nbclient.NotebookClient(notebook, kernel_name="python3", timeout=120).execute()
    assert notebook.cells[2].outputs == []
    return list(notebook.cells[1].outputs)


def test_a_kernel_without_lesson_code_gets_one_line() -> None:
    outputs = _run_first_cell('import sys\nsys.modules["lesson_code"] = None  # as if it were not installed')
    assert [output["output_type"] for output in outputs] == ["error"]
    (line,) = outputs[0]["traceback"]
    assert line.startswith("❌ lesson_code is not installed for this kernel: in the course folder run ")
    assert "`pip install -r requirements.txt`" in line and "\n" not in line


def test_a_missing_package_gets_one_line_naming_it() -> None:
    hide_mcp = (
        "import importlib.metadata as metadata\n"
        "real = metadata.distribution\n"
        "def distribution(name):\n"
        "    if name == 'mcp':\n"
        "        raise metadata.PackageNotFoundError(name)\n"
        "    return real(name)\n"
        "metadata.distribution = distribution\n"
    )
    outputs = _run_first_cell(hide_mcp)
    assert [output["output_type"] for output in outputs] == ["error"]
    assert outputs[0]["ename"] == "CourseSetupError"
    (line,) = outputs[0]["traceback"]
    assert line.startswith("❌ missing package(s) for the course: mcp: in the course folder, run ")
    assert "\n" not in line


def test_require_course_packages_is_quiet_here_and_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    require_course_packages()  # this environment has everything
    monkeypatch.setattr("lesson_code.setup_check.declared_requirements", lambda: ["mcp>=2", "no-such-package-xyz>=1"])
    with pytest.raises(CourseSetupError, match=r"^missing package\(s\) for the course: no-such-package-xyz: "):
        require_course_packages()
    monkeypatch.setattr("lesson_code.setup_check.declared_requirements", lambda: None)
    with pytest.raises(CourseSetupError, match=r"^lesson_code is importable but not installed: "):
        require_course_packages()
