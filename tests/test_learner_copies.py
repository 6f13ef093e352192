"""notebooks/ must be exactly what scripts/make_learner_notebooks.py makes from solutions/.

Also: no learner copy holds a solution, an output or a marker, and no
notebook anywhere holds a whole API key.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "make_learner_notebooks.py"
FULL_KEY = re.compile(r"sk-mcp-[A-Za-z0-9_-]{20,}")


def _load_script():
    spec = importlib.util.spec_from_file_location("make_learner_notebooks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = _load_script()
SOLUTION_NOTEBOOKS = sorted((ROOT / "solutions").glob("*.ipynb"))


def test_learner_notebooks_are_up_to_date():
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("solution", SOLUTION_NOTEBOOKS, ids=lambda p: p.name)
def test_learner_copy_has_no_solutions_outputs_or_markers(solution: Path):
    copy = ROOT / "notebooks" / solution.name
    assert copy.exists(), f"notebooks/{solution.name} is missing: run python scripts/make_learner_notebooks.py"
    learner = nbformat.read(copy, as_version=4)
    source = nbformat.read(solution, as_version=4)
    assert [c.id for c in learner.cells] == [c.id for c in source.cells]
    learner_code = "\n".join(c.source for c in learner.cells if c.cell_type == "code")
    for cell in learner.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert not script.has_markers(cell.source)
    for cell in source.cells:
        if cell.cell_type != "code" or not script.has_markers(cell.source):
            continue
        _, _, solution_blocks, placeholders = script.split_cell(cell.source)
        for block, placeholder in zip(solution_blocks, [*placeholders, *[""] * len(solution_blocks)], strict=False):
            assert block.strip() not in learner_code or block.strip() == placeholder.strip()


@pytest.mark.parametrize(
    "notebook",
    [*SOLUTION_NOTEBOOKS, *sorted((ROOT / "notebooks").glob("*.ipynb"))],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_no_notebook_holds_a_whole_key(notebook: Path):
    assert not FULL_KEY.search(notebook.read_text(encoding="utf-8")), "print keys with lesson_code.keys.mask(key)"


def test_check_names_stale_copies(tmp_path, monkeypatch):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "# BEGIN PLACEHOLDER\n# x = ____\n# END PLACEHOLDER\n# BEGIN SOLUTION\nx = 1\n# END SOLUTION"
        )
    ]
    nbformat.write(nb, tmp_path / "solutions" / "99_demo.ipynb")
    (tmp_path / "notebooks" / "98_orphan.ipynb").write_text("{}")
    monkeypatch.setattr(script, "ROOT", tmp_path)
    monkeypatch.setattr(script, "SOLUTIONS", tmp_path / "solutions")
    monkeypatch.setattr(script, "NOTEBOOKS", tmp_path / "notebooks")
    assert script.stale_copies() == [
        "notebooks/99_demo.ipynb (missing)",
        "notebooks/98_orphan.ipynb (no solutions/98_orphan.ipynb to build it from)",
    ]
    assert script.main(["--check"]) == 1
    script.main(["99_demo"])
    written = nbformat.read(tmp_path / "notebooks" / "99_demo.ipynb", as_version=4)
    assert written.cells[0].source == "x = ____"
    assert script.stale_copies(["99_demo"]) == []


@pytest.mark.parametrize(
    ("source", "learner", "solution"),
    [
        (
            "a = 1\n# BEGIN PLACEHOLDER\n# b = ____\n# END PLACEHOLDER\n"
            "# BEGIN SOLUTION\nb = 2\n# END SOLUTION\nprint(b)",
            "a = 1\nb = ____\nprint(b)",
            "a = 1\nb = 2\nprint(b)",
        ),
        (
            "def f():\n    # BEGIN PLACEHOLDER\n    # return ____\n    #\n    # END PLACEHOLDER\n"
            "    # BEGIN SOLUTION\n    return 2\n    # END SOLUTION",
            "def f():\n    return ____\n",
            "def f():\n    return 2",
        ),
        ("x = 1\n# BEGIN SOLUTION\nsecret = 2\n# END SOLUTION", "x = 1", "x = 1\nsecret = 2"),
    ],
)
def test_split_cell(source: str, learner: str, solution: str):
    assert script.split_cell(source)[:2] == (learner, solution)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("# BEGIN SOLUTION\nx = 1", "not closed"),
        ("# END SOLUTION", "without its BEGIN"),
        ("# BEGIN PLACEHOLDER\n# x = ____\n# END PLACEHOLDER\nprint(1)", "followed directly"),
        ("# BEGIN PLACEHOLDER\nx = ____\n# END PLACEHOLDER\n# BEGIN SOLUTION\n# END SOLUTION", "not a comment"),
        ("# BEGIN PLACEHOLDER\n# x = ____\n# END PLACEHOLDER", "no solution block"),
    ],
)
def test_split_cell_rejects_broken_markers(source: str, problem: str):
    with pytest.raises(script.MarkerError, match=problem):
        script.split_cell(source)
