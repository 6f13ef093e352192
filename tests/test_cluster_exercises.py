"""Lesson 07's checked exercises: every wrong answer in tests/exercises_answers/lesson07_q*.py gets its
specific ❌, every right answer written another way gets ✅, and the starting code is "not attempted".

The answers are run against `lesson_code.exercises.lesson07` directly, so these tests hold whether or
not the notebook is there; tests/test_exercises_answers.py runs the same data through the notebook's cells.
"""

from __future__ import annotations

import importlib

import pytest

from lesson_code.exercises import ____, lesson07

NAMES = {"q1": "must_share", "q2": "client_address", "q3": "retried"}


def _answer(name: str, code: str) -> object:
    namespace: dict[str, object] = {"____": ____}
    exec(compile(code, f"<lesson07.{name}>", "exec"), namespace)  # noqa: S102 - our own test data
    return namespace[NAMES[name]]


def _cases(kind: str) -> list[tuple[str, str, str, str]]:
    cases = []
    for name in NAMES:
        module = importlib.import_module(f"exercises_answers.lesson07_{name}")
        if kind == "wrong":
            cases += [(name, label, code, fragment) for label, code, fragment in module.WRONG]
        else:
            cases += [(name, label, code, "") for label, code in module.RIGHT]
    return cases


@pytest.mark.parametrize("case", _cases("wrong"), ids=lambda c: f"{c[0]}: {c[1]}")
def test_each_wrong_answer_gets_its_specific_reason(case: tuple[str, str, str, str]) -> None:
    name, _, code, fragment = case
    result = getattr(lesson07, name).evaluate(_answer(name, code))
    assert result.status == "incorrect", result
    assert fragment in result.message, result.message


@pytest.mark.parametrize("case", _cases("right"), ids=lambda c: f"{c[0]}: {c[1]}")
def test_a_right_answer_written_another_way_passes(case: tuple[str, str, str, str]) -> None:
    name, _, code, _ = case
    result = getattr(lesson07, name).evaluate(_answer(name, code))
    assert result.correct, result


@pytest.mark.parametrize("name", NAMES)
def test_the_solution_passes_and_the_starting_code_is_not_attempted(name: str) -> None:
    exercise = getattr(lesson07, name)
    assert exercise.evaluate(_answer(name, exercise.solution_code)).correct
    assert exercise.evaluate(____).status == "not_attempted"
    stub = "def client_address(peer, forwarded_for, trusted_proxies):\n    return ____"
    if name == "q2":
        assert exercise.evaluate(_answer(name, stub)).status == "not_attempted"


def test_every_exercise_has_at_least_two_wrong_answers_and_one_right() -> None:
    for name in NAMES:
        module = importlib.import_module(f"exercises_answers.lesson07_{name}")
        assert len(module.WRONG) >= 2 and len(module.RIGHT) >= 1, name
    assert set(NAMES) == set(vars(lesson07)) & set(NAMES)
