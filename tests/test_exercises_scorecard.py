"""Lesson 04 scores the learner's class against what lesson 03 asked, not against the package's extras."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lesson_code.attacks import CATALOGUE, run_attacks
from lesson_code.attacks.scorecard import AttackResult, Scorecard
from lesson_code.exercises import lesson03
from lesson_code.keys import generate_key, key_digest
from lesson_code.shopping_server import build_shopping_server
from lesson_code.store import ShoppingStore


def test_set_aside_marks_attacks_outside_the_task_and_leaves_them_uncounted() -> None:
    results = tuple(
        AttackResult(attack, "got through" if attack.id == "header-conflicting-bearer" else "stopped", "why")
        for attack in CATALOGUE
    )
    card = Scorecard(results)
    assert [r.id for r in card.failed] == ["header-conflicting-bearer"]
    scored = card.set_aside(lesson03.outside_the_task, lesson03.OUTSIDE_THE_TASK)
    assert scored.failed == [] and scored.all_stopped
    aside = [r for r in scored if r.outcome == "not in task"]
    assert {r.id for r in aside} >= {"header-conflicting-bearer", "header-bearer-wrong-key", "header-basic-scheme"}
    assert all(any(n.lower() == b"authorization" for n, _ in r.attack.headers) for r in aside)
    assert f"{len(aside)} set aside: not part of lesson 03's task" in scored.summary()
    stopped, run = scored.by_group()["header"]
    assert stopped == run == card.by_group()["header"][1] - len([r for r in aside if r.group == "header"])


def test_lesson03s_own_solution_gets_no_cross_in_lesson04(tmp_path: Path) -> None:
    """The reference (lesson 03's solution) meets lesson 03's task exactly: nothing may get past it."""
    key = generate_key()
    store = ShoppingStore(tmp_path / "yours.sqlite3")
    app = build_shopping_server(store).streamable_http_app()
    middleware = lesson03.ReferenceApiKeyMiddleware(app, {key_digest(key)})
    card = asyncio.run(run_attacks(middleware, store=store, valid_key=key))
    scored = card.set_aside(lesson03.outside_the_task, lesson03.OUTSIDE_THE_TASK)
    assert scored.failed == [], scored.table(failures_only=True)
    assert any(r.outcome == "not in task" for r in scored)
