"""The checkers of lessons 04-06, against the notebooks themselves.

`tests/test_exercises.py` already runs every exercise cell of every solution
notebook twice (starting code ⏳, solution ✅) and compares each solution block
with its exercise's `solution_code`. This file adds, for lessons 04 to 06:

* typical wrong answers, each of which must get a ❌ with a specific reason;
* that every exercise of these lessons has at least one such case;
* that each reference answer (used by `solved_or_reference`) passes its own check;
* that the learner copies still run to the end: every `solved_or_reference`
  falls back to the reference, with the one line that says so.
"""

from __future__ import annotations

import importlib

import pytest
from exercise_harness import EXERCISE_CELLS, EXTRA_IMPORTS, cell_for, run_cell

from lesson_code.exercises import FALLBACK_LINE, ____, exercises_in

LESSONS = ("lesson04", "lesson05", "lesson06")

# (lesson, exercise, code that defines the answer under the name the notebook checks, expected words)
WRONG_ANSWERS = [
    # 04 q1: the layers
    (
        "lesson04",
        "q1",
        "def wrap(mcp_app, keyring):\n    return AuthContextMiddleware(ApiKeyMiddleware(mcp_app, keyring))",
        "Swap them",
    ),
    (
        "lesson04",
        "q1",
        "def wrap(mcp_app, keyring):\n    return ApiKeyMiddleware(mcp_app, keyring)",
        "AuthContextMiddleware is missing",
    ),
    ("lesson04", "q1", "def wrap(mcp_app, keyring):\n    return mcp_app", "still open"),
    (
        "lesson04",
        "q1",
        "def wrap(mcp_app, keyring):\n    return ApiKeyMiddleware(AuthContextMiddleware(mcp_app), KeyRing())",
        "different key ring",
    ),
    # 04 q2: default deny
    (
        "lesson04",
        "q2",
        'predicted = {"GET /health, no key": 200, "POST /mcp, no key": 401, "POST /mcp/, no key": 307,'
        ' "POST /MCP, no key": ____, "DELETE /health, no key": ____, "POST /mcp, valid key": ____}',
        "before the router",
    ),
    (
        "lesson04",
        "q2",
        'predicted = {"GET /health, no key": 401, "POST /mcp, no key": ____, "POST /mcp/, no key": ____,'
        ' "POST /MCP, no key": ____, "DELETE /health, no key": ____, "POST /mcp, valid key": ____}',
        "allow-list",
    ),
    (
        "lesson04",
        "q2",
        'predicted = {"GET /health, no key": 200, "POST /mcp, no key": 401, "POST /mcp/, no key": 401,'
        ' "POST /MCP, no key": 401, "DELETE /health, no key": 405, "POST /mcp, valid key": ____}',
        "Only GET (and HEAD)",
    ),
    (
        "lesson04",
        "q2",
        'predicted = {"GET /health, no key": "200", "POST /mcp, no key": ____, "POST /mcp/, no key": ____,'
        ' "POST /MCP, no key": ____, "DELETE /health, no key": ____, "POST /mcp, valid key": ____}',
        "without quotes",
    ),
    # 04 q3: session binding
    ("lesson04", "q3", "bob_gets = 401", "the key check lets him through"),
    ("lesson04", "q3", "bob_gets = 403", "admit the session exists"),
    ("lesson04", "q3", "bob_gets = 200", "remembers which key opened"),
    # 05 q1: the connection parameters
    (
        "lesson05",
        "q1",
        'def make_params(url, key):\n    return {"url": url, "x-api-key": key}',
        "inside params['headers']",
    ),
    (
        "lesson05",
        "q1",
        'def make_params(url, key):\n    return {"url": url, "headers": {"Authorization": key}}',
        "'Bearer ' + key",
    ),
    (
        "lesson05",
        "q1",
        'def make_params(url, key):\n    return {"url": url, "headers": {"x-api-key": generate_key()}}',
        "not the one passed in",
    ),
    (
        "lesson05",
        "q1",
        'def make_params(url, key):\n    return {"url": url.removesuffix("/mcp"), "headers": {"x-api-key": key}}',
        "ends in /mcp",
    ),
    (
        "lesson05",
        "q1",
        'def make_params(url, key):\n    return {"url": url, "headers": {"x_api_key": key}}',
        "dashes, not underscores",
    ),
    # 05 q2: show each event
    (
        "lesson05",
        "q2",
        'def show(event):\n    if event.kind == "call":\n        print(event.tool)',
        "The kinds are exactly",
    ),
    ("lesson05", "q2", "def show(event):\n    print(event.text)", "should name the tool"),
    # 05 q3: await, run_sync or asyncio.run
    ("lesson05", "q3", 'runs_in_a_cell = "a"', "already runs inside Jupyter's loop"),
    ("lesson05", "q3", 'runs_in_a_cell = "c"', "cannot be called from a running event loop"),
    ("lesson05", "q3", "runs_in_a_cell = 2", "one letter in quotes"),
    # 06 q1: where a key may travel
    ("lesson06", "q1", 'def safe_to_send_key(url):\n    return url.startswith("https")', "127.0.0.1 is this machine"),
    (
        "lesson06",
        "q1",
        'def safe_to_send_key(url):\n    return url.lower().startswith("https") or any('
        'host in url for host in ("localhost", "127.0.0.1", "::1"))',
        "never a substring",
    ),
    (
        "lesson06",
        "q1",
        'def safe_to_send_key(url):\n    return "https" in url or is_loopback(urlsplit(url).hostname or "")',
        "urlsplit(url).scheme",
    ),
    # 06 q2: rotation order
    ("lesson06", "q2", 'rotation_order = ["b", "a", "c", "d"]', "outage"),
    ("lesson06", "q2", 'rotation_order = ["b", "c", "a", "d"]', "audit log names the key"),
    ("lesson06", "q2", 'rotation_order = ["c", "b", "d", "a"]', "cannot come first"),
    ("lesson06", "q2", 'rotation_order = ["b", "c", "d"]', "exactly once"),
    # 06 q3: allowed tools
    ("lesson06", "q3", "def allowed_tools(role):\n    return set(ROLES[role])", "returned scopes"),
    ("lesson06", "q3", "def allowed_tools(role):\n    return set(TOOL_SCOPES)", "needs orders:write"),
    (
        "lesson06",
        "q3",
        'def allowed_tools(role):\n    return set(TOOL_SCOPES) if role == "shopper" else {"list_items", "list_orders"}',
        "new role",
    ),
    # 06 q4: refusals in the audit log
    (
        "lesson06",
        "q4",
        "def refusals(entries):\n    return collections.Counter(e['outcome'] for e in entries)",
        "not a refusal",
    ),
    (
        "lesson06",
        "q4",
        "def refusals(entries):\n"
        "    return collections.Counter(e['outcome'] for e in entries if e['outcome'] != 'allowed')",
        "count only entries whose event is 'auth'",
    ),
]


@pytest.mark.parametrize(("lesson", "name", "code", "words"), WRONG_ANSWERS, ids=lambda v: str(v)[:40])
def test_typical_wrong_answer_gets_a_specific_reason(lesson: str, name: str, code: str, words: str):
    cell = cell_for(lesson, name)
    namespace, _ = run_cell(cell.setup, EXTRA_IMPORTS + code)
    answer = eval(cell.answer, namespace)  # noqa: S307 - the expression from our own check() call
    result = cell.exercise.evaluate(answer)
    assert result.status == "incorrect", result
    assert words in result.message, result.message


def test_lessons_04_to_06_have_their_exercise_cells():
    found = {(cell.lesson, cell.name) for cell in EXERCISE_CELLS if cell.lesson in LESSONS}
    modules = {lesson: importlib.import_module(f"lesson_code.exercises.{lesson}") for lesson in LESSONS}
    expected = {(lesson, name) for lesson, module in modules.items() for name in exercises_in(module)}
    assert found == expected


def test_every_exercise_of_lessons_04_to_06_has_a_wrong_answer_case():
    covered = {(lesson, name) for lesson, name, _, _ in WRONG_ANSWERS}
    for cell in EXERCISE_CELLS:
        if cell.lesson in LESSONS:
            assert (cell.lesson, cell.name) in covered, str(cell)


@pytest.mark.parametrize("lesson", LESSONS)
def test_references_pass_their_own_checks(lesson: str, capsys: pytest.CaptureFixture):
    module = importlib.import_module(f"lesson_code.exercises.{lesson}")
    for name, exercise in exercises_in(module).items():
        if exercise.reference is None:
            continue
        assert exercise.evaluate(exercise.reference).correct, f"{lesson}.{name}"
        assert exercise.solved_or_reference(exercise.reference) is exercise.reference
        assert exercise.solved_or_reference(____) is exercise.reference
    assert FALLBACK_LINE in capsys.readouterr().out


def test_partial_predictions_report_progress():
    from lesson_code.exercises import lesson04

    partial = {request: ____ for request in lesson04.REQUESTS} | {"GET /health, no key": 200}
    result = lesson04.q2.evaluate(partial)
    assert result.status == "not_attempted"
    assert result.message.startswith("so far so good")


def test_allowed_tools_check_leaves_the_roles_table_as_it_was():
    from lesson_code.exercises import lesson06
    from lesson_code.roles import ROLES

    before = dict(ROLES)
    lesson06.q3.evaluate(lesson06.reference_allowed_tools)
    lesson06.q3.evaluate(lambda role: 1 / 0)
    assert dict(ROLES) == before
