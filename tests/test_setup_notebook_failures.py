"""Failures a learner meets while running a notebook are one line that says what to do.

* Lesson 01: re-running an attack cell after the open server is stopped names the cell to run first
  (before: a ~60-line `ConnectError`).
* Lesson 05 online with an unreachable model endpoint, or one that refuses `OPENAI_API_KEY`: the
  raw-SDK cell and the `run_shopping_query` cell each show one line (before: ~100 lines of
  `APIConnectionError`).

Each runs the learner copy in a real kernel; the model endpoints are a closed local port and a
local app that answers 401.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lesson_code.background import BackgroundServer

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _run_until(path: Path, last_cell_id: str, env: dict[str, str], tmp_path: Path) -> dict[str, list[dict]]:
    """Run the notebook's cells in order up to `last_cell_id`, errors allowed; the outputs of each, by cell id."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    outputs: dict[str, list[dict]] = {}
    with client.setup_kernel(env=env, stderr=subprocess.DEVNULL):
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
                outputs[cell.id] = list(cell.outputs)
            if cell.id == last_cell_id:
                break
        if last_cell_id == "l01-rerun":  # lesson 01: the attack cell once more, after the clean-up cell
            attack = next(cell for cell in notebook.cells if cell.id == "l01-12")
            rerun = nbformat.v4.new_code_cell(attack.source)
            notebook.cells.append(rerun)
            client.execute_cell(rerun, len(notebook.cells) - 1)
            outputs["l01-rerun"] = list(rerun.outputs)
    return outputs


def _offline_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "COURSE_"))}


@pytest.mark.timeout(240)
def test_rerunning_lesson_01s_attack_after_the_clean_up_says_what_to_run_first(tmp_path: Path) -> None:
    outputs = _run_until(NOTEBOOKS / "01_threat_model.ipynb", "l01-rerun", _offline_env(), tmp_path)
    errors = [output for cell in outputs.values() for output in cell if output["output_type"] == "error"]
    assert len(errors) == 1, errors  # only the re-run
    assert [output["output_type"] for output in outputs["l01-rerun"]] == ["error"]
    (line,) = outputs["l01-rerun"][0]["traceback"]
    assert line == (
        '⏭ the lesson01 server is stopped (the clean-up cell stops it): run the cell under "1. Start the open server" '
        "again first, or Kernel → Restart Kernel and Run All"
    )


def _refuse(request: Request) -> JSONResponse:
    return JSONResponse({"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}, 401)


@pytest.fixture(params=["closed", "refusing"])
def failing_model_endpoint(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    if request.param == "closed":
        with socket.socket() as sock:  # bound, not listening: connections are refused
            sock.bind(("127.0.0.1", 0))
            yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1", "ModelUnreachableError: could not reach"
        return

    async def refuse(request: Request) -> JSONResponse:
        return _refuse(request)

    app = Starlette(routes=[Route("/{path:path}", refuse, methods=["GET", "POST"])])
    with BackgroundServer(app, name="test-setup-refusing-model") as server:
        yield server.url + "/v1", "ModelRefusedError: the model endpoint"


@pytest.mark.timeout(300)
def test_lesson_05_with_a_failing_model_endpoint_shows_one_line_per_agent_cell(
    failing_model_endpoint: tuple[str, str], tmp_path: Path
) -> None:
    base_url, expected = failing_model_endpoint
    env = {**_offline_env(), "OPENAI_API_KEY": "sk-test-not-a-real-key", "OPENAI_BASE_URL": base_url}
    outputs = _run_until(NOTEBOOKS / "05_configure_the_agent.ipynb", "l05-17", env, tmp_path)

    for cell_id in ("l05-10", "l05-17"):  # Runner.run directly, then run_shopping_query
        errors = [output for output in outputs[cell_id] if output["output_type"] == "error"]
        assert len(errors) == 1, (cell_id, outputs[cell_id])
        assert not [output for output in outputs[cell_id] if output.get("name") == "stderr"], outputs[cell_id]
        (line,) = errors[0]["traceback"]
        assert line.startswith(expected) and "COURSE_OFFLINE=1" in line, line
        assert "sk-test" not in line
