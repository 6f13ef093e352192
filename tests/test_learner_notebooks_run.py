"""A learner who opens a notebook and runs it untouched sees it run to the end.

nbval (in `make test`) proves the learner copies raise no errors; this test
reads what they print: every exercise says "not attempted yet", and where a
later cell needs an answer the learner has not written, the notebook says it
uses the reference implementation instead of failing.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHECK = re.compile(r"^lesson\d\d\.q\d+\.check\(", re.MULTILINE)


def outputs_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_an_untouched_learner_notebook_runs_to_the_end(path: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=env, stderr=subprocess.DEVNULL)

    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [o for cell in code_cells for o in cell.outputs if o.output_type == "error"]
    assert errors == [], [f"{e.ename}: {e.evalue}" for e in errors]

    exercise_cells = [
        cell
        for cell in code_cells
        if CHECK.search(cell.source) and ("____" in cell.source or "NotImplementedError" in cell.source)
    ]
    assert len(exercise_cells) >= 2, "every lesson has 2 to 4 exercises"
    for cell in exercise_cells:
        assert "⏳ Not attempted yet" in outputs_text(cell), cell.source

    everything = "".join(outputs_text(cell) for cell in code_cells)
    assert "✅ Correct" not in everything  # nothing is solved for them
    if "solved_or_reference(" in "".join(cell.source for cell in code_cells):
        assert "Using the reference implementation from lesson_code" in everything
