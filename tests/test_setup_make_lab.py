"""`make lab` with a Python that is too old (or absent) says in one line which version is needed.

Run in a temporary folder holding copies of the Makefile and the files its install rule
depends on, with a stand-in `python` that reports 3.9: nothing is installed, and no `.venv`
may appear.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OLD_PYTHON = """#!/bin/sh
if [ "$1" = "--version" ]; then echo "Python 3.9.2"; exit 0; fi
echo 0
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    assert shutil.which("make"), "make is not installed"
    for name in ("Makefile", "requirements.txt", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    old = tmp_path / "python3.9"
    old.write_text(OLD_PYTHON)
    old.chmod(0o755)
    return tmp_path


@pytest.mark.parametrize(("python", "found"), [("./python3.9", "Python 3.9.2"), ("/nonexistent/python3", "not found")])
def test_make_lab_with_an_unusable_python_prints_one_line(project: Path, python: str, found: str) -> None:
    finished = subprocess.run(
        ["make", "lab", f"PYTHON={python}"], cwd=project, capture_output=True, text=True, timeout=60, check=False
    )
    assert finished.returncode != 0
    output = (finished.stdout + finished.stderr).strip().splitlines()
    assert len(output) == 1, output
    assert f"The course needs Python 3.11 or newer, and {python} is {found}: install a newer Python" in output[0]
    assert not (project / ".venv").exists()


def test_make_lab_with_this_python_goes_on_to_create_the_venv(project: Path) -> None:
    dry_run = subprocess.run(
        ["make", "-n", "lab", f"PYTHON={sys.executable}"], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert dry_run.returncode == 0, dry_run.stderr
    assert dry_run.stdout.splitlines()[0] == f"{sys.executable} -m venv .venv"
