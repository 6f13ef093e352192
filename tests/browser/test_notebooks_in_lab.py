"""Every solution notebook, run in JupyterLab in a real browser: no errors, every widget drawn."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_driver import PROJECT, open_notebook, run_all, screenshot

SOLUTIONS = sorted(p.name for p in (PROJECT / "solutions").glob("*.ipynb"))


def test_there_are_seven_lessons():
    assert len(SOLUTIONS) == 7, SOLUTIONS


@pytest.mark.parametrize("name", SOLUTIONS)
def test_solution_notebook_runs_cleanly_in_jupyterlab(page, lab, name):
    open_notebook(page, lab, f"solutions/{name}")
    result = run_all(page)
    shot = screenshot(page, Path(name).stem)
    assert result.errors == [], f"{name}: cells raised {result.errors} (see {shot})"
    assert result.executed == result.code_cells
    assert result.widget_failures == 0, f"{name}: a widget failed to display (see {shot})"
    assert result.rendered_widgets == result.widget_outputs, (
        f"{name}: {result.widget_outputs} widget outputs but {result.rendered_widgets} drawn (see {shot})"
    )
