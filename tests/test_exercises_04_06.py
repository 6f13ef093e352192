"""The checkers of lessons 04-06, against the notebooks themselves.

`tests/test_exercises.py` already runs every exercise cell of every solution
notebook twice (starting code ⏳, solution ✅) and compares each solution block
with its exercise's `solution_code`. This file adds, for lessons 04 to 06:

* that each reference answer (used by `solved_or_reference`) passes its own check;
* that the learner copies still run to the end: every `solved_or_reference`
  falls back to the reference, with the one line that says so.
"""

from __future__ import annotations

import importlib

import pytest
from exercise_harness import EXERCISE_CELLS

from lesson_code.exercises import FALLBACK_LINE, ____, exercises_in

LESSONS = ("lesson04", "lesson05", "lesson06")


def test_lessons_04_to_06_have_their_exercise_cells():
    found = {(cell.lesson, cell.name) for cell in EXERCISE_CELLS if cell.lesson in LESSONS}
    modules = {lesson: importlib.import_module(f"lesson_code.exercises.{lesson}") for lesson in LESSONS}
    expected = {(lesson, name) for lesson, module in modules.items() for name in exercises_in(module)}
    assert found == expected


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
