"""The exercise framework: checks, hints and solutions for the notebooks.

A lesson module (`lesson02.py`) defines one `Exercise` subclass per exercise
and creates it as `q1`, `q2`, ... A notebook then calls:

    lesson02.q1.check(my_answer)   # prints ⏳ / ❌ / ✅ and a reason
    lesson02.q1.hint()             # prints a nudge
    lesson02.q1.solution()         # prints one correct answer (code)

Feedback is printed as plain text, so it reads the same in JupyterLab, in a
terminal and in a stored notebook, and nbval can compare it. The emoji carry
the colour: ⏳ not attempted yet, ❌ not right yet (with the specific reason),
✅ correct.

Writing a checker: subclass `Exercise`, set `todo`, `hint_text` and
`solution_code`, and implement `_check(answer) -> str`. Return the success
message; raise `Incorrect("why")` for a wrong answer and `NotAttempted()` for
an untouched one. Call learner functions through `call()`, which turns a stub
(`raise NotImplementedError` or `return ____`) into "not attempted" and an
unexpected exception into a clear "❌ ... raised ...".

An answer that is a dict with fixed keys, filled in one entry at a time (as in
learntools' equality-check problems), subclasses `DictExercise` instead and
implements only `check_entry(key, value)`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, TypeVar

from lesson_code.redaction import redact
from lesson_code.text import join_words as join_words  # re-exported: the lesson modules import it from here
from lesson_code.text import text_table

T = TypeVar("T")

Status = Literal["not_attempted", "incorrect", "correct"]

FALLBACK_LINE: Final = "Using the reference implementation from lesson_code (your version is not finished yet)"


class _Placeholder:
    """The `____` in a learner's starting code: a value that means "fill me in"."""

    _instance: ClassVar[_Placeholder | None] = None

    def __new__(cls) -> _Placeholder:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "____"

    def __bool__(self) -> bool:
        return False


PLACEHOLDER: Final = _Placeholder()
____ = PLACEHOLDER  # the spelling learners see in their starting code


def is_placeholder(value: object) -> bool:
    """True for `____` itself, or a list/tuple/set/dict that still holds `____` anywhere inside."""
    if value is PLACEHOLDER:
        return True
    if isinstance(value, Mapping):
        return any(is_placeholder(v) for v in (*value.keys(), *value.values()))
    if isinstance(value, list | tuple | set | frozenset):
        return any(is_placeholder(v) for v in value)
    return False


class NotAttempted(Exception):
    """Raised by a checker when the answer is still the starting code."""


class Incorrect(Exception):
    """Raised by a checker with the specific reason an answer is wrong."""

    def __init__(self, reason: str, details: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = list(details)


@dataclass(frozen=True)
class Result:
    """The outcome of checking one answer; `str(result)` is what `check()` prints."""

    status: Status
    message: str
    details: list[str] = field(default_factory=list)

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        first = {
            "not_attempted": f"⏳ Not attempted yet: {self.message}",
            "incorrect": f"❌ {self.message}",
            "correct": f"✅ Correct: {self.message}",
        }[self.status]
        return "\n".join([first, *(f"   {line}" for line in self.details)])


class Exercise:
    """One checked exercise. Subclasses set the texts and implement `_check`."""

    #: What the learner should do, shown when the answer is still `____`.
    todo: ClassVar[str] = "replace ____ with your answer, then run the cell again."
    #: A nudge that does not give the answer away.
    hint_text: ClassVar[str] = ""
    #: One correct answer, exactly as it stands between the solution markers in the notebook.
    solution_code: ClassVar[str] = ""
    #: A working answer for `solved_or_reference` (functions and classes), if the exercise has one.
    reference: Any = None
    #: True if `_check` handles answers that still hold some `____` (e.g. a dict filled in part by part).
    checks_partial_answers: ClassVar[bool] = False

    def _check(self, answer: Any) -> str | tuple[str, Sequence[str]]:
        """Return the success message (optionally with detail lines), or raise `Incorrect` / `NotAttempted`."""
        raise NotImplementedError

    # -- what learners call ---------------------------------------------------------

    def check(self, answer: Any = PLACEHOLDER) -> None:
        """Check an answer and print the verdict (returns nothing, so a cell shows only the verdict)."""
        print(self.evaluate(answer))

    def hint(self) -> None:
        """Print a nudge."""
        print(f"💡 Hint: {self.hint_text}")

    def solution(self) -> None:
        """Print one correct answer."""
        print("📖 Solution:\n" + self.solution_code.strip("\n"))

    def solved_or_reference(self, answer: Any) -> Any:
        """The learner's answer if it passes the check, else the reference (with one line saying so)."""
        if self.reference is None:
            raise TypeError(f"{type(self).__name__} has no reference implementation")
        if self.evaluate(answer).correct:
            return answer
        print(FALLBACK_LINE)
        return self.reference

    # -- what tests and other code call ---------------------------------------------

    def evaluate(self, answer: Any = PLACEHOLDER) -> Result:
        """Check an answer and return the verdict without printing it."""
        try:
            if answer is PLACEHOLDER or (is_placeholder(answer) and not self.checks_partial_answers):
                raise NotAttempted
            verdict = self._check(answer)
        except NotAttempted as exc:
            return Result("not_attempted", redact(str(exc) or self.todo))
        except Incorrect as exc:
            return Result("incorrect", redact(exc.reason), [redact(line) for line in exc.details])
        except NotImplementedError:
            return Result("not_attempted", self.todo)
        except Exception as exc:  # a learner's answer must never crash the checker
            return Result("incorrect", redact(f"checking your answer raised {type(exc).__name__}: {exc}"))
        # Feedback never shows a whole key, whatever a checker or a learner's answer put in it.
        if isinstance(verdict, tuple):
            message, details = verdict
            return Result("correct", redact(message), [redact(line) for line in details])
        return Result("correct", redact(verdict))

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: check(answer), hint(), solution()>"


class DictExercise(Exercise):
    """A dict with fixed keys whose entries are checked one by one, so a partial answer reports progress.

    Subclasses set `variable` (the dict's name in the notebook), `keys`, `success`
    and `check_entry`. Entries still `____` are skipped; a wrong entry is a ❌
    with its own reason; a right but unfinished answer says "so far so good".
    """

    checks_partial_answers = True
    #: The dict's name in the notebook, e.g. "threat_of".
    variable: ClassVar[str] = "answer"
    #: The keys the dict must keep, in the order they are checked.
    keys: ClassVar[tuple[str, ...]] = ()
    #: What one key is called in the progress line ("scenario" → "scenarios c and d still hold ____.").
    entry_noun: ClassVar[str] = ""
    #: Quote the keys in the progress line (for keys with spaces, such as "POST /mcp, no key").
    quote_keys: ClassVar[bool] = False
    #: The message for a complete, correct answer.
    success: ClassVar[str] = ""

    def check_entry(self, key: str, value: Any) -> None:
        """Raise `Incorrect` with the reason if `value` is wrong for `key`."""
        raise NotImplementedError

    def _check(self, answer: object) -> str:
        shown_keys = join_words(map(repr, self.keys))
        if not isinstance(answer, Mapping):
            raise Incorrect(f"{self.variable} should stay a dict with the keys {shown_keys}; got {answer!r}.")
        if set(answer) != set(self.keys):
            raise Incorrect(f"keep the keys of {self.variable} as given ({shown_keys}); fill in only the values.")
        if all(is_placeholder(answer[key]) for key in self.keys):
            raise NotAttempted
        for key in self.keys:
            if not is_placeholder(answer[key]):
                self.check_entry(key, answer[key])
        open_keys = [key for key in self.keys if is_placeholder(answer[key])]
        if open_keys:
            shown = [repr(key) if self.quote_keys else key for key in open_keys]
            raise NotAttempted(f"so far so good; {still_open(self.entry_noun, shown)}")
        return self.success


class LetterSetExercise(Exercise):
    """Pick the right letters from a lettered list: the answer is a set of letters, checked as a whole.

    Subclasses set `variable` (the set's name in the notebook), `options` (letter -> text),
    `right` (the letters to pick), `why_wrong` (for each letter that must not be picked, why),
    `why_missing` (for each letter that must be picked, why) and `success`. A wrong pick is
    explained before a missing one, each in letter order.
    """

    #: The set's name in the notebook, e.g. "must_share".
    variable: ClassVar[str] = "answer"
    #: The lettered options, letter -> what it stands for.
    options: ClassVar[Mapping[str, str]] = {}
    #: The letters a right answer picks.
    right: ClassVar[frozenset[str]] = frozenset()
    #: Why each letter outside `right` is wrong to pick.
    why_wrong: ClassVar[Mapping[str, str]] = {}
    #: Why each letter of `right` must be picked.
    why_missing: ClassVar[Mapping[str, str]] = {}
    #: The message for a correct answer.
    success: ClassVar[str] = ""

    def _check(self, answer: object) -> str:
        if isinstance(answer, str) or not isinstance(answer, set | frozenset | list | tuple):
            raise Incorrect(f'{self.variable} should be a set of letters, like {{"a", "c"}}; got {answer!r}.')
        letters = {str(x).strip().lower() for x in answer}
        unknown = sorted(letters - set(self.options))
        if unknown:
            raise Incorrect(
                f"{', '.join(map(repr, unknown))} is not one of the letters {min(self.options)} to {max(self.options)}."
            )
        for letter in sorted(letters - self.right):
            raise Incorrect(self.why_wrong[letter])
        for letter in sorted(self.right - letters):
            raise Incorrect(self.why_missing[letter])
        return self.success


def still_open(noun: str, keys: Sequence[str]) -> str:
    """'scenario c still holds ____.' / 'scenarios c and d still hold ____.'"""
    many = len(keys) > 1
    lead = f"{noun}{'s' if many else ''} " if noun else ""
    return f"{lead}{join_words(keys)} still hold{'' if many else 's'} ____."


# -- helpers for checkers --------------------------------------------------------------


def call(fn: object, *args: Any, shown_args: str | None = None) -> Any:
    """Call a learner's function; a stub counts as not attempted, a crash as a clear ❌.

    `shown_args` is how the arguments are printed in a message (default: their
    reprs); pass masked text whenever an argument is a secret.
    """
    if not callable(fn):
        raise Incorrect(f"expected a function, got {type(fn).__name__} {fn!r}")
    name = getattr(fn, "__name__", "your function")
    shown = ", ".join(repr(a) for a in args) if shown_args is None else shown_args
    try:
        value = fn(*args)
    except NotImplementedError:
        raise NotAttempted from None
    except Exception as exc:
        raise Incorrect(f"{name}({shown}) raised {type(exc).__name__}: {exc}") from None
    if is_placeholder(value):
        raise NotAttempted
    return value


def run_coroutine(make: Callable[[], Coroutine[Any, Any, T]], timeout: float = 10.0) -> T:
    """Run a coroutine to completion from synchronous code, even inside Jupyter's running loop.

    It runs on a fresh event loop in a short-lived thread, so `check()` stays a
    plain call in a notebook cell (no `await` needed).
    """
    outcome: dict[str, Any] = {}

    def runner() -> None:
        try:
            outcome["value"] = asyncio.run(asyncio.wait_for(make(), timeout))
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=runner, name="exercise-check", daemon=True)
    thread.start()
    thread.join(timeout + 5)
    if "error" in outcome:
        raise outcome["error"]
    if "value" not in outcome:
        raise TimeoutError(f"the check did not finish within {timeout:g} s")
    return outcome["value"]


def exercises_in(module: object) -> dict[str, Exercise]:
    """The exercises a lesson module defines, by name: {"q1": ..., "q2": ...}."""
    found = {name: value for name, value in vars(module).items() if isinstance(value, Exercise)}
    return dict(sorted(found.items(), key=lambda item: int(item[0][1:]) if item[0][1:].isdigit() else 0))


# -- small tables for calm notebook output -----------------------------------------------


def table_markdown(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The same table as Markdown, for JupyterLab to render."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(columns), line(["---"] * len(columns)), *(line(row) for row in rows)])


def show_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Display a table: rendered Markdown in JupyterLab, aligned text everywhere else."""
    from IPython import get_ipython  # installed with JupyterLab; imported here to keep `core` light
    from IPython.display import display

    text = text_table(columns, rows, rule=True)
    if get_ipython() is not None:
        display({"text/plain": text, "text/markdown": table_markdown(columns, rows)}, raw=True)
    else:
        print(text)
