"""The exercise checkers, tested against the notebooks themselves.

Every exercise cell in solutions/*.ipynb (a code cell with solution markers
and a `lessonNN.qK.check(answer)` call) is run twice, each time after the
notebook's first code cell (its setup cell), in a fresh namespace:

* as the learner gets it (placeholder in place): the verdict must be ⏳;
* as the solution notebook has it: the verdict must be ✅.

Its solution block must also equal the exercise's `solution_code`, so that
`qK.solution()` shows what the notebook shows. Typical wrong answers live as
data in tests/exercises_answers/ (see test_exercises_answers.py).

The rest tests the framework itself: placeholders, verdict texts, the
fallback to a reference, the doctor, the wire helpers and the middleware
battery of lesson 03.
"""

from __future__ import annotations

import asyncio
import importlib
import re

import mcp_types
import pytest
from exercise_harness import EXERCISE_CELLS, SOLUTIONS, ExerciseCell, cell_for, run_cell, verdict_line

from lesson_code import errors
from lesson_code.exercises import (
    FALLBACK_LINE,
    PLACEHOLDER,
    Exercise,
    Incorrect,
    NotAttempted,
    ____,
    call,
    doctor,
    exercises_in,
    is_placeholder,
    lesson03,
    run_coroutine,
    wire,
)
from lesson_code.exercises.core import table_markdown
from lesson_code.text import text_table

_run, _verdict, _cell_for = run_cell, verdict_line, cell_for


def test_the_notebooks_have_exercise_cells():
    lessons = {cell.lesson for cell in EXERCISE_CELLS}
    assert {"lesson00", "lesson01", "lesson02", "lesson03"} <= lessons


@pytest.mark.parametrize("cell", EXERCISE_CELLS, ids=str)
def test_starting_code_is_not_attempted(cell: ExerciseCell):
    _, printed = _run(cell.setup, cell.learner)
    assert _verdict(printed).startswith("⏳ Not attempted yet: ")


@pytest.mark.parametrize("cell", EXERCISE_CELLS, ids=str)
def test_solution_is_correct(cell: ExerciseCell):
    _, printed = _run(cell.setup, cell.solution)
    assert _verdict(printed).startswith("✅ Correct: ")


@pytest.mark.parametrize("cell", EXERCISE_CELLS, ids=str)
def test_solution_shown_matches_the_notebook(cell: ExerciseCell):
    assert len(cell.solution_blocks) == 1, "one solution block per exercise cell"
    assert cell.solution_blocks[0].strip() == cell.exercise.solution_code.strip()


def test_every_exercise_is_in_its_notebook():
    notebooks = {path.name[:2]: path.name for path in SOLUTIONS.glob("*.ipynb")}
    for number, notebook in notebooks.items():
        try:
            module = importlib.import_module(f"lesson_code.exercises.lesson{number}")
        except ModuleNotFoundError:
            continue
        in_notebook = {cell.name for cell in EXERCISE_CELLS if cell.lesson == f"lesson{number}"}
        assert set(exercises_in(module)) == in_notebook, notebook


# -- typical wrong answers: tests/exercises_answers/ (one module per exercise), run by test_exercises_answers.py --


# -- lesson 03's middleware battery ------------------------------------------------------------------


class _Lazy:
    """Refuses nothing: the open door."""

    def __init__(self, app, valid_digests):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


def _variant(**changes: str) -> type:
    """The reference middleware with some of its source lines replaced: a typical mistake."""
    source = lesson03.q3.solution_code
    for old, new in changes.items():
        assert old in source, old
        source = source.replace(old, new)
    namespace = {"hashlib": __import__("hashlib"), "json": __import__("json"), "errors": errors}
    exec(source, namespace)  # noqa: S102 - built from our own reference
    return namespace["MyApiKeyMiddleware"]


MIDDLEWARE_MISTAKES = [
    (_Lazy, "reached the app"),
    (
        _variant(**{'if scope["type"] == "lifespan":': 'if scope["type"] == "never":'}),
        "lifespan event",
    ),
    (_variant(**{'"status": 401': '"status": 403'}), "got 403"),
    (_variant(**{'name.lower() == b"x-api-key"': 'name == b"x-api-key"'}), "name.lower()"),
    (
        _variant(**{"hashlib.sha256(keys[0]).hexdigest() in self.valid_digests": "keys[0] in self.valid_digests"}),
        "hash the presented bytes",
    ),
    (_variant(**{'scope["path"] == "/health"': 'scope["path"] == "/healthz"'}), "GET /health"),
    (
        _variant(**{'(b"www-authenticate", b\'ApiKey realm="mcp", header="x-api-key"\'),': ""}),
        "www-authenticate",
    ),
    (
        _variant(
            **{
                '        await send({"type": "http.response.body", "body": body})': (
                    '        await send({"type": "http.response.body", "body": body})\n'
                    "        await self.app(scope, receive, send)"
                )
            }
        ),
        "then called the app too",
    ),
    (
        _variant(**{'if scope["type"] != "http":  # a websocket': 'if scope["type"] == "websocket":  # a websocket'}),
        None,  # a websocket that gets nothing is fine, whichever way it is written
    ),
    (
        _variant(
            **{
                'if scope["type"] != "http":  # a websocket, say: this server offers none, so it gets nothing\n'
                "            return": 'if scope["type"] != "http":\n            await self.app(scope, receive, send)\n'
                "            return"
            }
        ),
        "websocket connection without a key reached the app",
    ),
    (
        _variant(**{'if scope["method"] == "GET" and scope["path"] == "/health":': 'if scope["path"] != "/mcp":'}),
        "POST /health without a key reached the app",
    ),
    (_variant(**{'json.dumps({"jsonrpc"': 'repr({"jsonrpc"'}), "not JSON"),
    (
        _variant(**{'"id": None}).encode()': '"id": 7}).encode()'}),
        '"id" should be null',
    ),
]


@pytest.mark.parametrize(("cls", "words"), MIDDLEWARE_MISTAKES, ids=lambda v: str(v)[:30])
def test_middleware_mistakes_are_named(cls: type, words: str | None):
    result = lesson03.q3.evaluate(cls)
    if words is None:
        assert result.correct, result
        return
    assert result.status == "incorrect", result
    assert words in result.message, result.message
    assert any(line.startswith("✗") for line in result.details)


def test_middleware_battery_passes_the_reference():
    outcomes = lesson03.run_cases(lesson03.ReferenceApiKeyMiddleware)
    cases = {o.case for o in outcomes}
    assert {"two x-api-key headers, valid then wrong → 401", "POST /health without a key → 401"} <= cases
    assert {"GET /healthz without a key → 401", "OPTIONS /mcp without a key → 401"} <= cases
    assert len(outcomes) == len(cases) >= 18
    assert all(o.passed for o in outcomes), [o.reason for o in outcomes if not o.passed]


def test_middleware_stub_and_wrong_signature():
    class Stub:
        def __init__(self, app, valid_digests):
            self.app = app

        async def __call__(self, scope, receive, send):
            raise NotImplementedError

    class NoDigests:
        def __init__(self, app):
            self.app = app

    assert lesson03.q3.evaluate(Stub).status == "not_attempted"
    assert lesson03.q3.evaluate(____).status == "not_attempted"
    wrong = lesson03.q3.evaluate(NoDigests)
    assert wrong.status == "incorrect" and "__init__(self, app, valid_digests)" in wrong.message
    assert "the class itself" in lesson03.q3.evaluate(lesson03.ReferenceApiKeyMiddleware(None, set())).message


def test_solved_or_reference(capsys):
    assert lesson03.q3.solved_or_reference(lesson03.ReferenceApiKeyMiddleware) is lesson03.ReferenceApiKeyMiddleware
    assert capsys.readouterr().out == ""
    assert lesson03.q3.solved_or_reference(____) is lesson03.q3.reference
    assert lesson03.q3.solved_or_reference(_Lazy) is lesson03.q3.reference
    assert capsys.readouterr().out == f"{FALLBACK_LINE}\n{FALLBACK_LINE}\n"


# -- the framework ------------------------------------------------------------------------------------


class _Echo(Exercise):
    todo = "do the thing."
    hint_text = "think."
    solution_code = "answer = 42"
    checks_partial_answers = False

    def _check(self, answer):
        if answer == 0:
            raise Incorrect("zero is not it", ["detail one"])
        if answer == 1:
            raise NotAttempted("one is a start.")
        if answer == 2:
            return "two", ["a detail"]
        if callable(answer):
            return f"called: {call(answer, 5)}"
        return "fine"


def test_placeholder_is_one_falsy_sentinel():
    assert ____ is PLACEHOLDER
    assert repr(____) == "____"
    assert not ____
    assert is_placeholder(____)
    assert is_placeholder({____}) and is_placeholder([1, (2, ____)]) and is_placeholder({"a": ____})
    assert not is_placeholder({"a": 1}) and not is_placeholder("____") and not is_placeholder(None)


def test_verdict_texts(capsys):
    exercise = _Echo()
    exercise.check(____)
    exercise.check(0)
    exercise.check(3)
    exercise.check(2)
    exercise.check(1)
    exercise.hint()
    exercise.solution()
    assert capsys.readouterr().out.splitlines() == [
        "⏳ Not attempted yet: do the thing.",
        "❌ zero is not it",
        "   detail one",
        "✅ Correct: fine",
        "✅ Correct: two",
        "   a detail",
        "⏳ Not attempted yet: one is a start.",
        "💡 Hint: think.",
        "📖 Solution:",
        "answer = 42",
    ]


def test_check_returns_nothing_so_a_cell_shows_only_the_verdict(capsys):
    assert _Echo().check(3) is None


def test_learner_functions_stubs_and_crashes():
    exercise = _Echo()

    def stub(x):
        raise NotImplementedError

    def returns_placeholder(x):
        return ____

    def crashes(x):
        return 1 / 0

    assert exercise.evaluate(stub).status == "not_attempted"
    assert exercise.evaluate(returns_placeholder).status == "not_attempted"
    crashed = exercise.evaluate(crashes)
    assert crashed.status == "incorrect"
    assert crashed.message == "crashes(5) raised ZeroDivisionError: division by zero"
    assert exercise.evaluate(lambda x: x * 2).message == "called: 10"
    assert exercise.evaluate(lambda x: x * 2).correct


def test_a_checker_bug_or_odd_answer_never_raises():
    class Fragile(_Echo):
        def _check(self, answer):
            return answer["missing"]

    result = Fragile().evaluate({})
    assert result.status == "incorrect" and "KeyError" in result.message


def test_run_coroutine_works_inside_a_running_loop():
    async def inner():
        await asyncio.sleep(0)
        return "done"

    async def outer():
        return run_coroutine(inner)  # as check() does inside Jupyter's loop

    assert asyncio.run(outer()) == "done"


def test_run_coroutine_passes_errors_and_times_out():
    async def boom():
        raise ValueError("nope")

    async def slow():
        await asyncio.sleep(5)

    with pytest.raises(ValueError, match="nope"):
        run_coroutine(boom)
    with pytest.raises(TimeoutError):
        run_coroutine(slow, timeout=0.1)


def test_tables_align_and_render():
    text = text_table(["Check", "Result"], [["✅ Python", "3.11"], ["❌ mcp", "not installed"]], rule=True)
    assert text.splitlines() == [
        "Check     Result",
        "--------  -------------",
        "✅ Python  3.11",
        "❌ mcp     not installed",
    ]
    assert table_markdown(["a", "b"], [["1", "x|y"]]).splitlines() == ["| a | b |", "| --- | --- |", "| 1 | x\\|y |"]


# -- the doctor ---------------------------------------------------------------------------------------


def test_doctor_rows():
    rows = doctor.rows(environ={})
    names = [row.check for row in rows]
    assert names == ["Python", "mcp", "openai-agents", "jupyterlab", "ipywidgets", "Free port", "Agent"]
    assert all(row.ok for row in rows), rows
    assert rows[-1].detail.startswith("offline:")
    online = doctor.agent_row({"OPENAI_API_KEY": "sk-test"}, timeout=0.5)  # the probe itself: test_setup_model_mode
    assert online.detail.startswith("online") and "sk-test" not in online.detail
    assert re.fullmatch(r"port \d+ on 127\.0\.0\.1 is free for the lesson servers", rows[5].detail)


def test_doctor_flags_old_or_missing_packages():
    assert not doctor.version_row("mcp", "99.0").ok
    assert "99.0 or newer" in doctor.version_row("mcp", "99.0").detail
    missing = doctor.version_row("surely-not-installed-package", "1.0")
    assert not missing.ok and "pip install" in missing.detail


def test_doctor_report(capsys):
    doctor.report(environ={})
    out = capsys.readouterr().out
    assert "✅ Python" in out and out.rstrip().endswith("✅ All set: this machine is ready for the course.")


# -- the wire helpers -----------------------------------------------------------------------------------


def test_tool_call_matches_the_protocol_constants():
    headers, body = wire.tool_call_parts("add_item", {"name": "milk"}, request_id=7)
    assert headers["mcp-protocol-version"] == wire.PROTOCOL_VERSION
    assert headers["mcp-method"] == body["method"] == "tools/call"
    assert headers["mcp-name"] == body["params"]["name"] == "add_item"
    meta = body["params"]["_meta"]
    assert set(meta) == {mcp_types.PROTOCOL_VERSION_META_KEY, mcp_types.CLIENT_CAPABILITIES_META_KEY}
    assert body["id"] == 7 and body["jsonrpc"] == "2.0"
    assert "x-api-key" not in headers


def test_describe_reads_results_errors_and_tool_errors():
    import httpx

    ok = httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "result": {"structuredContent": {"items": []}}})
    refused = httpx.Response(401, content=errors.error_body(errors.MISSING_API_KEY, "Unauthorized: missing API key."))
    tool_error = httpx.Response(
        200, json={"jsonrpc": "2.0", "id": 1, "result": {"isError": True, "content": [{"type": "text", "text": "no"}]}}
    )
    assert wire.describe(ok) == '200: {"items": []}'
    assert wire.describe(refused) == "401: JSON-RPC error -32010: Unauthorized: missing API key."
    assert wire.describe(tool_error) == "200: the tool refused: no"
    assert wire.describe(httpx.Response(421, text="Invalid Host header")) == "421: Invalid Host header"
