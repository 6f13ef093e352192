"""Wrong answers get their specific ❌, right answers written another way get ✅ (tests/exercises_answers/).

Every exercise has a data module `tests/exercises_answers/lessonNN_qK.py` with
wrong answers; one that takes code (a function or a class) has at least two
(five for lesson 03's middleware) and at least one right answer written
differently from the solution. No ❌, ✅ or ⏳ line may show a whole key.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from exercise_harness import ANSWERS, EXERCISE_CELLS, ROOT, takes_code, verdict_for

from lesson_code.exercises import lesson03, lesson06
from lesson_code.redaction import KEY_SHAPE

CODE_EXERCISES = sorted({(cell.lesson, cell.name) for cell in EXERCISE_CELLS if takes_code(cell.exercise)})
MINIMUM_WRONG = {("lesson03", "q3"): 5}


def _answers(lesson: str, name: str) -> ModuleType:
    return importlib.import_module(f"exercises_answers.{lesson}_{name}")


def _cases(kind: str) -> list[tuple[str, str, str, str, str]]:
    cases = []
    for path in sorted(ANSWERS.glob("lesson*_q*.py")):
        lesson, name = path.stem.split("_")
        module = _answers(lesson, name)
        if kind == "wrong":
            cases += [(lesson, name, label, code, fragment) for label, code, fragment in module.WRONG]
        else:
            cases += [(lesson, name, label, code, "") for label, code in module.RIGHT]
    return cases


def _id(case: tuple[str, str, str, str, str]) -> str:
    return f"{case[0]}.{case[1]}: {case[2]}"


def test_every_exercise_has_wrong_answers() -> None:
    for cell in EXERCISE_CELLS:
        assert (ANSWERS / f"{cell.lesson}_{cell.name}.py").exists(), f"{cell} has no answers file"
        assert len(_answers(cell.lesson, cell.name).WRONG) >= 1, str(cell)


def test_every_exercise_that_takes_code_has_wrong_and_right_answers() -> None:
    assert ("lesson03", "q3") in CODE_EXERCISES and ("lesson06", "q4") in CODE_EXERCISES
    for lesson, name in CODE_EXERCISES:
        assert (ANSWERS / f"{lesson}_{name}.py").exists(), f"{lesson}.{name} has no answers file"
        module = _answers(lesson, name)
        assert len(module.WRONG) >= MINIMUM_WRONG.get((lesson, name), 2), f"{lesson}.{name}"
        assert len(module.RIGHT) >= 1, f"{lesson}.{name}"
        solution = " ".join(module_solution(lesson, name).split())
        for _, code in module.RIGHT:
            assert " ".join(code.split()) != solution, "a right answer must differ from the solution"


def module_solution(lesson: str, name: str) -> str:
    return getattr(importlib.import_module(f"lesson_code.exercises.{lesson}"), name).solution_code


@pytest.mark.parametrize("case", _cases("wrong"), ids=_id)
def test_wrong_answer_gets_its_specific_reason(case: tuple[str, str, str, str, str]) -> None:
    lesson, name, _, code, fragment = case
    result = verdict_for(lesson, name, code)
    assert result.status == "incorrect", result
    assert fragment in str(result), str(result)
    assert not KEY_SHAPE.search(str(result)), "feedback shows a whole key"


@pytest.mark.parametrize("case", _cases("right"), ids=_id)
def test_right_answer_written_differently_passes(case: tuple[str, str, str, str, str]) -> None:
    lesson, name, _, code, _ = case
    result = verdict_for(lesson, name, code)
    assert result.correct, str(result)


def test_middleware_battery_sends_lower_case_names_except_in_its_capitals_case() -> None:
    """Uvicorn lower-cases header names; only the one case about capitals sends anything else."""
    from lesson_code.exercises import asgi_harness

    seen: list[list[bytes]] = []

    class Recorder:
        def __init__(self, app: object, valid_digests: set[str]) -> None:
            self.app = app

        async def __call__(self, scope: dict[str, Any], receive: object, send: object) -> None:
            if scope["type"] == "http":
                seen.append([name for name, _ in scope["headers"]])

    lesson03.run_cases(Recorder)
    upper = [names for names in seen if any(name != name.lower() for name in names)]
    assert len(seen) > 10 and upper == [[*(n for n, _ in asgi_harness.CLIENT_HEADERS), b"X-API-Key"]]


def test_audit_outcomes_of_the_server_are_all_in_the_generated_logs() -> None:
    """Every outcome the server writes besides 'allowed' appears in the logs q4 checks against."""
    written: set[str] = set()
    for module in ("auth.py", "audit.py"):
        tree = ast.parse((ROOT / "lesson_code" / module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                if name == "Refusal" and len(node.args) >= 4 and isinstance(node.args[3], ast.Constant):
                    written.add(str(node.args[3].value))
                values: list[str] = []
                if name in ("_record", "record", "record_auth"):
                    outcomes = node.args[1:] if name == "record" else node.args  # record's first argument is the event
                    values += [
                        str(a.value) for a in outcomes if isinstance(a, ast.Constant) and isinstance(a.value, str)
                    ]
                values += [
                    str(k.value.value)
                    for k in node.keywords
                    if k.arg == "outcome" and isinstance(k.value, ast.Constant)
                ]
                written |= {v for v in values if v.isidentifier() and v.islower() and v not in ("auth", "allowed")}
    assert written, "found no outcomes in the server's code"
    assert written <= set(lesson06.REFUSAL_OUTCOMES), sorted(written - set(lesson06.REFUSAL_OUTCOMES))
    logs = lesson06.audit_logs(seed=1)
    assert {e["outcome"] for e in logs[0] if e["event"] == "auth"} >= set(lesson06.REFUSAL_OUTCOMES)
    assert lesson06.audit_logs() != lesson06.audit_logs(), "each check makes fresh logs"


def test_answers_folder_is_found() -> None:
    assert Path(ANSWERS).is_dir()
