"""Checked exercises for the course notebooks, in the style of Kaggle Learn.

    from lesson_code.exercises import ____, lesson02

    def is_valid_key(presented, valid_digests):
        return ____                      # the learner's starting code

    lesson02.q3.check(is_valid_key)      # ⏳ Not attempted yet: ...
    lesson02.q3.hint()                   # 💡 Hint: ...
    lesson02.q3.solution()               # 📖 Solution: ...

One module per lesson (`lesson00` ... ), each with exercises `q1`, `q2`, ...
The framework lives in `core` (`Exercise`, and `DictExercise` for dicts filled in
entry by entry); the reference answers in `references`; `asgi_harness` runs a
middleware in-process and records what it did; `doctor` checks the learner's
setup and `wire` shows MCP requests exactly as they travel over HTTP.
"""

from lesson_code.exercises.core import (
    FALLBACK_LINE,
    PLACEHOLDER,
    Exercise,
    Incorrect,
    NotAttempted,
    Result,
    ____,
    call,
    exercises_in,
    is_placeholder,
    run_coroutine,
    show_table,
)

__all__ = [
    "FALLBACK_LINE",
    "PLACEHOLDER",
    "Exercise",
    "Incorrect",
    "NotAttempted",
    "Result",
    "____",
    "call",
    "exercises_in",
    "is_placeholder",
    "run_coroutine",
    "show_table",
]
