"""Every solution notebook, run in JupyterLab in a real browser: no errors, every widget drawn.

A lesson that starts servers is then restarted and run again, as an instructor does between
classes: the same outputs, no errors (ports, ids and times blanked by nbval's sanitize rules).
The first run is a Run All in a fresh kernel and the second a Restart Kernel and Run All after
a complete run, the same two situations as restarting a freshly opened notebook twice, for two
notebook runs instead of three.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_driver import (
    PROJECT,
    LabServer,
    NotebookState,
    open_notebook,
    restart_and_run_all,
    run_all,
    sanitize,
    screenshot,
)
from playwright.sync_api import Page

SOLUTIONS = sorted(p.name for p in (PROJECT / "solutions").glob("*.ipynb"))
SERVER_LESSONS = [
    path.name
    for path in sorted((PROJECT / "solutions").glob("*.ipynb"))
    if any(starter in path.read_text(encoding="utf-8") for starter in ("serve_in_background(", "BackgroundServer("))
]


def test_there_are_eight_lessons() -> None:
    assert len(SOLUTIONS) == 8, SOLUTIONS


def test_the_lessons_that_start_servers_are_found() -> None:
    assert {"01_threat_model.ipynb", "04_secure_the_endpoint.ipynb"} <= set(SERVER_LESSONS)


def assert_ran_cleanly(name: str, result: NotebookState, shot: Path) -> None:
    assert result.errors == [], f"{name}: cells raised {result.errors} (see {shot})"
    assert result.executed == result.code_cells
    assert result.widget_failures == 0, f"{name}: a widget failed to display (see {shot})"
    assert result.rendered_widgets == result.widget_outputs, (
        f"{name}: {result.widget_outputs} widget outputs but {result.rendered_widgets} drawn (see {shot})"
    )


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", SOLUTIONS)
def test_solution_notebook_runs_cleanly_in_jupyterlab(page: Page, lab: LabServer, name: str) -> None:
    open_notebook(page, lab, f"solutions/{name}")
    first = run_all(page)
    shot = screenshot(page, Path(name).stem)
    assert_ran_cleanly(name, first, shot)
    if name not in SERVER_LESSONS:
        return
    second = restart_and_run_all(page)
    assert_ran_cleanly(f"{name} after Restart Kernel and Run All", second, shot)
    assert normalise(first.text) == normalise(second.text)


def normalise(outputs: list[str]) -> list[str]:
    """Outputs with what legitimately changes between runs (ports, ids, times) blanked out,
    using the same rules as nbval (tests/nbval_sanitize.cfg)."""
    return [sanitize(text) for text in outputs]
