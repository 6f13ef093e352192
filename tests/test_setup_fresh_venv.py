"""The learner's setup, without make: a fresh venv, `pip install -r requirements.txt`, and every notebook runs.

Why this test exists: the README promises that three plain commands (`python -m venv`,
`pip install -r requirements.txt`, `jupyter lab`) give a working course on any OS. This test
does exactly that in a temporary copy of the project (so the checkout is not touched) and then
executes every learner notebook in `notebooks/` with a kernel from that venv, and checks that
`jupyter lab --version` runs there. Nothing is skipped: a missing package or tool fails the test
with pip's or the notebook's own message.

It is also the suite's one run of the untouched learner copies (running them a second time in
the development venv cost `make test` about 25 s of CPU for the same outputs), so it reads what
they print as a learner would see it: no cell raises, every exercise says "not attempted yet",
nothing says it is solved, and where a later cell needs an answer the learner has not written,
the notebook says it uses the reference implementation instead of failing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
# What a fresh clone does not have (or what the test must not copy): environments, caches, build output.
NOT_COPIED = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".tools",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    ".ipynb_checkpoints",
    "screenshots",
    ".course-data",
    ".artifacts",
    "*.sqlite3*",
)
PROBE = "kernel_probe_setup.ipynb"
CHECK = re.compile(r"^lesson\d\d\.q\d+\.check\(", re.MULTILINE)


def _run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    finished = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert finished.returncode == 0, (
        f"`{' '.join(command)}` failed with exit status {finished.returncode}:\n{finished.stdout}\n{finished.stderr}"
    )
    return finished


class _Started:
    """A command started in the background, its output going to files (two pipes left unread could fill)."""

    def __init__(self, command: list[str], *, cwd: Path, env: dict[str, str], logs: Path) -> None:
        self.command = command
        self.stdout_path, self.stderr_path = logs.with_suffix(".out"), logs.with_suffix(".err")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err)

    def finish(self, timeout: float) -> str:
        """Wait for the command; its stdout if it succeeded, else the test fails with both outputs."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        stdout = self.stdout_path.read_text(errors="replace")
        assert self.process.returncode == 0, (
            f"`{' '.join(self.command)}` failed with exit status {self.process.returncode}:\n{stdout}\n"
            + self.stderr_path.read_text(errors="replace")
        )
        return stdout


def _clean_env(venv: Path, home: Path) -> dict[str, str]:
    """The environment a learner's shell would have after activating the venv: no course keys, no other venv."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "JUPYTER", "PYTHON", "COURSE_", "MCP_")) and key != "VIRTUAL_ENV"
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    # Kernel specs, config and runtime files from this temporary "home" only, so that a kernel
    # registered elsewhere on the machine cannot stand in for the venv's own.
    for name in ("JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR"):
        env[name] = str(home / name.lower())
    env["OPENAI_AGENTS_DISABLE_TRACING"] = "1"
    return env


def outputs_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def _halves(names: list[str]) -> tuple[list[str], list[str]]:
    """Two lists of about equal work: the lessons, highest number first (the longer ones), dealt out in turn."""
    ordered = sorted(names, reverse=True)
    return ordered[0::2], ordered[1::2]


def untouched_learner_run_problems(notebook: nbformat.NotebookNode) -> list[str]:
    """What is wrong with an executed, untouched learner copy; an empty list when it ran as a learner should see it."""
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    problems = [
        f"cell {index}: {output.get('ename')}: {output.get('evalue')}"
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    if not any(cell.get("execution_count") for cell in code_cells):
        problems.append("no cell ran")
    exercise_cells = [
        cell
        for cell in code_cells
        if CHECK.search(cell.source) and ("____" in cell.source or "NotImplementedError" in cell.source)
    ]
    if len(exercise_cells) < 2:
        problems.append(f"{len(exercise_cells)} unanswered exercise cells; every lesson has 2 to 4 exercises")
    problems += [
        f"an exercise does not say it is not attempted yet:\n{cell.source}"
        for cell in exercise_cells
        if "⏳ Not attempted yet" not in outputs_text(cell)
    ]
    everything = "".join(outputs_text(cell) for cell in code_cells)
    if "✅ Correct" in everything:
        problems.append("an exercise says it is solved, though the learner has written nothing")
    if "solved_or_reference(" in "".join(cell.source for cell in code_cells) and (
        "Using the reference implementation from lesson_code" not in everything
    ):
        problems.append("a cell needs an unwritten answer but does not say it uses the reference implementation")
    return problems


@pytest.mark.timeout(1200)
def test_a_fresh_venv_with_requirements_txt_runs_every_learner_notebook(tmp_path: Path) -> None:
    started = time.monotonic()
    project = tmp_path / "course"
    shutil.copytree(ROOT, project, ignore=NOT_COPIED)
    venv = tmp_path / "venv"
    env = _clean_env(venv, tmp_path / "home")
    python = str(venv / "bin" / "python")

    _run([sys.executable, "-m", "venv", str(venv)], cwd=project, env=env, timeout=120)
    _run(
        [python, "-m", "pip", "install", "--quiet", "--no-compile", "-r", "requirements.txt"],
        cwd=project,
        env=env,
        timeout=900,
    )
    installed = time.monotonic()

    # A probe notebook proves which Python the kernel runs: the venv's, not one found elsewhere.
    probe = nbformat.v4.new_notebook()
    probe.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)"))
    probe.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(probe, project / "notebooks" / PROBE)

    learner_notebooks = sorted(path.name for path in (project / "notebooks").glob("*.ipynb") if path.name != PROBE)
    assert len(learner_notebooks) >= 7, learner_notebooks
    out = tmp_path / "executed"
    # `jupyter lab --version` and two halves of the notebooks run at once, each notebook in its own
    # kernel as before (the lessons already run side by side elsewhere: nbval and the browser tests use two
    # workers): in `make test` a chain of one process at a time gets a small share of the two cores.
    started_runs = [
        _Started(
            [
                str(venv / "bin" / "jupyter"),
                "nbconvert",
                "--log-level",
                "WARN",
                "--to",
                "notebook",
                "--execute",
                "--ExecutePreprocessor.timeout=300",
                "--ExecutePreprocessor.kernel_name=python3",
                "--output-dir",
                str(out),
                *names,
            ],
            cwd=project / "notebooks",
            env=env,
            logs=tmp_path / f"nbconvert-{half}",
        )
        for half, names in enumerate(_halves([PROBE, *learner_notebooks]))
    ]
    lab = _Started([str(venv / "bin" / "jupyter"), "lab", "--version"], cwd=project, env=env, logs=tmp_path / "lab")
    lab_version = lab.finish(timeout=120)
    assert lab_version.strip()[:1].isdigit(), lab_version
    for run in started_runs:
        run.finish(timeout=900)

    executed = nbformat.read(out / PROBE, as_version=4)
    kernel_prefix = executed.cells[0].outputs[0]["text"].strip()
    assert Path(kernel_prefix).resolve() == venv.resolve(), f"the kernel ran {kernel_prefix}, not the fresh venv"

    problems = {
        name: untouched_learner_run_problems(nbformat.read(out / name, as_version=4)) for name in learner_notebooks
    }
    assert not any(problems.values()), "\n".join(
        f"{name} in the fresh venv:\n  " + "\n  ".join(found) for name, found in problems.items() if found
    )

    timing = {"install_s": round(installed - started, 1), "total_s": round(time.monotonic() - started, 1)}
    print(json.dumps(timing))
