"""Running lesson 04's cells a second time, in the same kernel, shows the same outputs (issue 10 item 7).

Each cell that adds data starts from a fresh store or tidies up first, so a
re-run never reports "changed ... from 7 to 8". Ports and masked keys differ
between runs and are ignored.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from exercise_harness import SOLUTIONS
from nbclient import NotebookClient


def _text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        parts.append(output.get("text") or str(data.get("text/plain", "")) or f"{output.get('ename')}")
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", "".join(parts))
    return re.sub(r"sk-mcp-\S{4}…", "sk-mcp-XXXX…", text)


def test_lesson04_runs_the_same_twice_in_one_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    nb = nbformat.read(SOLUTIONS / "04_secure_the_endpoint.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3")
    codes = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    cleanup = [i for i in codes if "workdir.cleanup()" in nb.cells[i].source]
    body = [i for i in codes if i not in cleanup]
    with client.setup_kernel():
        for i in body:
            client.execute_cell(nb.cells[i], i)
        first = {i: _text(nb.cells[i]) for i in body}
        for i in body[1:]:
            client.execute_cell(nb.cells[i], i)
        again = {i: _text(nb.cells[i]) for i in body}
        for i in cleanup:
            client.execute_cell(nb.cells[i], i)
    assert "from 1 to" not in "".join(again.values())
    assert {i: again[i] for i in body[1:]} == {i: first[i] for i in body[1:]}
