"""Benchmark 3: how long the course takes to run, notebook by notebook and all together.

Each solution notebook (`solutions/*.ipynb`) is executed top to bottom with
nbclient in a fresh kernel of this environment, as `make notebook-test` does,
with its own folder as working directory, offline (no `OPENAI_API_KEY`, no
tracing). The wall time includes the kernel's start, which a learner pays too.

This one is not a comparison but a budget (the whole course in under
30 s), and one pass can take that long, so it runs as many passes as fit in
a small time budget (at least one) and reports the median per notebook.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from benchmarks.common import PROJECT_ROOT, Section, Table, Target, median
from benchmarks.machine import usable_cores

NAME: Final = "course"
SOLUTIONS: Final = PROJECT_ROOT / "solutions"
COURSE_TARGET_SECONDS: Final = 30.0
CELL_TIMEOUT_SECONDS: Final = 300


@dataclass(frozen=True)
class Settings:
    max_passes: int
    budget_seconds: float  # no new pass starts once this much time has gone


FULL = Settings(max_passes=3, budget_seconds=40.0)
QUICK = Settings(max_passes=1, budget_seconds=0.0)


@dataclass
class Execution:
    seconds: float
    code_cells: int
    error: str | None = None


def kernel_environment() -> dict[str, str]:
    """The environment for each kernel: offline and quiet, like the Makefile's notebook tests."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update(OPENAI_AGENTS_DISABLE_TRACING="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    return env


def execute(path: Path) -> Execution:
    """Run one notebook in a fresh `python3` kernel (this interpreter's ipykernel) and time it."""
    notebook = nbformat.read(path, as_version=4)
    code_cells = sum(cell.cell_type == "code" for cell in notebook.cells)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_SECONDS,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    try:
        # The kernel's own stderr is start-up chatter (ipykernel warns about TCP transport);
        # what a cell prints or raises arrives through the notebook protocol, not here.
        client.execute(env=kernel_environment(), stderr=subprocess.DEVNULL)
    except CellExecutionError as error:  # a cell raised (tagged `raises-exception` cells are allowed to)
        summary = f"{error.ename}: {error.evalue}"
    except (CellTimeoutError, DeadKernelError) as error:
        summary = f"{type(error).__name__}: {error}"
    else:
        return Execution(time.perf_counter() - start, code_cells)
    return Execution(time.perf_counter() - start, code_cells, " ".join(summary.split()).replace("|", "/")[:160])


def run(quick: bool = False, folder: Path = SOLUTIONS) -> Section:
    settings = QUICK if quick else FULL
    section = Section(NAME, "3. Course runtime: executing the solution notebooks")
    notebooks = sorted(folder.glob("*.ipynb"))
    target = f"the whole course under {COURSE_TARGET_SECONDS:g} s on 2 cores"
    if not notebooks:
        section.notes.append(f"No notebooks in {folder} yet: skipped.")
        section.targets.append(Target(target, None, "no notebooks to run"))
        return section

    passes: list[dict[Path, Execution]] = []
    start = time.perf_counter()
    while len(passes) < settings.max_passes and (not passes or time.perf_counter() - start < settings.budget_seconds):
        passes.append({path: execute(path) for path in notebooks})

    table = Table(
        f"Wall time per notebook, fresh kernel each (median of {len(passes)} pass{'es' if len(passes) > 1 else ''})",
        ["notebook", "code cells", "wall time", "outcome"],
        text_columns=(3,),
    )
    for path in notebooks:
        runs = [p[path] for p in passes]
        errors = [r.error for r in runs if r.error]
        table.rows.append(
            [
                f"`{path.name}`",
                str(runs[0].code_cells),
                f"{median([r.seconds for r in runs]):.1f} s",
                f"ERROR: {errors[0]}" if errors else "ok",
            ]
        )
    totals = [sum(e.seconds for e in p.values()) for p in passes]
    total = median(totals)
    table.rows.append(["**all, one after another**", "", f"**{total:.1f} s**", ""])
    section.tables.append(table)

    failed = sorted({path.name for p in passes for path, e in p.items() if e.error})
    if failed:
        section.notes.append(f"Notebooks that raised (timed up to the error): {', '.join(failed)}.")
    section.notes.append(
        f"Run with {usable_cores()} usable cores; kernels started from this interpreter's ipykernel, "
        "working directory = the notebook's folder, no OPENAI_API_KEY (the offline model)."
    )
    cores = usable_cores()
    figure = f"{total:.1f} s for {len(notebooks)} notebooks on {cores} core{'s' if cores != 1 else ''}"
    if failed:
        figure += f"; {len(failed)} notebook(s) raised, so the time is incomplete"
    section.targets.append(Target(target, total < COURSE_TARGET_SECONDS and not failed, figure))
    return section
