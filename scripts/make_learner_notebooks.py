"""Write the learner notebooks in notebooks/ from the solution notebooks in solutions/.

solutions/*.ipynb are the single source. Each learner copy is the same
notebook with every solution replaced by its placeholder, all outputs and
execution counts cleared, and the markers removed.

The marker convention, in code cells only
-----------------------------------------

    def is_valid_key(presented, valid_digests):     <- lines outside the markers
        ...                                            are kept in both versions
    # BEGIN PLACEHOLDER
    # def is_valid_key(presented: str, valid_digests: set[str]) -> bool:
    #     return ____
    # END PLACEHOLDER
    # BEGIN SOLUTION
    def is_valid_key(presented: str, valid_digests: set[str]) -> bool:
        return hashlib.sha256(presented.encode()).hexdigest() in valid_digests
    # END SOLUTION

    lesson02.q3.check(is_valid_key)

* `# BEGIN SOLUTION` ... `# END SOLUTION`: the solution. It runs in
  solutions/ and is removed from notebooks/. It must equal the exercise's
  `solution_code` (tests/test_exercises.py checks this).
* `# BEGIN PLACEHOLDER` ... `# END PLACEHOLDER`, just before a solution
  block: the learner's starting code, written as comments so the solution
  notebook ignores it. In notebooks/ each line loses its comment prefix (the
  marker's indentation plus "# ", or "#" on an empty line) and takes the
  solution's place. A solution block without a placeholder block is simply
  removed.
* Markers may be indented (inside a function or class); the placeholder lines
  are uncommented relative to their marker's indentation.
* Starting code uses `____` (from lesson_code.exercises) or
  `raise NotImplementedError(...)`; checkers report both as "not attempted".

What tests/test_exercises.py expects of an exercise cell (one with markers
and a `lessonNN.qK.check(answer)` line): it runs on its own right after the
notebook's first code cell (the setup cell: imports and settings, no servers),
without `await`; its learner version prints "⏳ Not attempted yet", its
solution version "✅ Correct"; and its one solution block equals
`lessonNN.qK.solution_code`. Hints and solutions stay as commented lines
(`# lessonNN.qK.hint()`) for the learner to uncomment.

Cell ids, markdown and cell tags are kept; outputs, execution counts and
execution metadata are dropped, and notebook metadata loses the Python
version (so a re-run on another patch release does not make copies stale).

Usage:
    python scripts/make_learner_notebooks.py                 # write every learner notebook that changed
    python scripts/make_learner_notebooks.py 03_middleware   # only these (names or paths)
    python scripts/make_learner_notebooks.py --check         # exit 1 and name the stale ones
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"

BEGIN_SOLUTION = "# BEGIN SOLUTION"
END_SOLUTION = "# END SOLUTION"
BEGIN_PLACEHOLDER = "# BEGIN PLACEHOLDER"
END_PLACEHOLDER = "# END PLACEHOLDER"
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_PLACEHOLDER, END_PLACEHOLDER)
KEPT_CELL_METADATA = ("tags", "jupyter", "editable", "deletable", "collapsed", "scrolled")


class MarkerError(ValueError):
    """The markers in a cell do not pair up."""


def _marker(line: str) -> tuple[str, str] | None:
    """(marker, indentation) if the line is a marker line, else None."""
    stripped = line.strip()
    if stripped in MARKERS:
        return stripped, line[: len(line) - len(line.lstrip())]
    return None


def _uncomment(line: str, indent: str) -> str:
    """Turn a commented placeholder line back into code, relative to the marker's indentation."""
    if line.strip() == "#" or not line.strip():
        return ""
    for prefix in (indent + "# ", indent + "#"):
        if line.startswith(prefix):
            return indent + line[len(prefix) :]
    raise MarkerError(f"placeholder line is not a comment at the marker's indentation: {line!r}")


def split_cell(source: str) -> tuple[str, str, list[str], list[str]]:
    """The learner version, the solution version, and the solution and placeholder blocks of a cell.

    The solution version is the cell without its placeholder blocks and marker
    lines; each block is returned dedented to its marker's indentation.
    """
    learner: list[str] = []
    solution: list[str] = []
    solution_blocks: list[str] = []
    placeholder_blocks: list[str] = []
    pending: list[str] | None = None  # the placeholder waiting for its solution block
    state, indent = "code", ""
    block: list[str] = []
    for number, line in enumerate(source.split("\n"), start=1):
        marker = _marker(line)
        where = f"line {number}"
        if state == "code":
            if marker is None:
                if pending is not None:
                    raise MarkerError(f"{where}: a placeholder block must be followed directly by # BEGIN SOLUTION")
                learner.append(line)
                solution.append(line)
            elif marker[0] == BEGIN_PLACEHOLDER:
                if pending is not None:
                    raise MarkerError(f"{where}: two placeholder blocks in a row")
                state, indent, block = "placeholder", marker[1], []
            elif marker[0] == BEGIN_SOLUTION:
                state, indent, block = "solution", marker[1], []
            else:
                raise MarkerError(f"{where}: {marker[0]} without its BEGIN")
        elif state == "placeholder":
            if marker is None:
                block.append(_uncomment(line, indent))
            elif marker[0] == END_PLACEHOLDER:
                pending, state = block, "code"
                placeholder_blocks.append(_dedent(block, indent))
            else:
                raise MarkerError(f"{where}: {marker[0]} inside a placeholder block")
        else:  # solution
            if marker is None:
                block.append(line)
                solution.append(line)
            elif marker[0] == END_SOLUTION:
                learner.extend(pending or [])
                # ruff format ends a solution that defines something with blank lines before the marker: give the
                # placeholder the same (runs longer than ruff's two are folded below), so the learner copy is
                # formatted like its solution.
                learner.extend([""] * max(0, _trailing_blanks(block) - _trailing_blanks(pending or [])))
                solution_blocks.append(_dedent(block, indent))
                pending, state = None, "code"
            else:
                raise MarkerError(f"{where}: {marker[0]} inside a solution block")
    if state != "code":
        raise MarkerError(f"the {state} block is not closed")
    if pending is not None:
        raise MarkerError("a placeholder block has no solution block after it")
    return _fold_blank_runs(learner), "\n".join(solution), solution_blocks, placeholder_blocks


def _fold_blank_runs(lines: list[str]) -> str:
    """Join lines, keeping at most two blank lines in a row (what ruff format allows)."""
    return re.sub(r"\n{4,}", "\n\n\n", "\n".join(lines))


def _trailing_blanks(lines: list[str]) -> int:
    return len(lines) - len("\n".join(lines).rstrip().split("\n")) if any(x.strip() for x in lines) else len(lines)


def _dedent(lines: list[str], indent: str) -> str:
    return "\n".join(line[len(indent) :] if line.startswith(indent) else line for line in lines)


def has_markers(source: str) -> bool:
    return any(_marker(line) for line in source.split("\n"))


def learner_notebook(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The learner copy of a solution notebook."""
    nb = copy.deepcopy(solution)
    for index, cell in enumerate(nb.cells):
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEPT_CELL_METADATA}
        if cell.cell_type != "code":
            continue
        try:
            cell.source = split_cell(cell.source)[0]
        except MarkerError as exc:
            raise MarkerError(f"{name}, cell {index}: {exc}") from None
        cell.outputs = []
        cell.execution_count = None
    language = nb.metadata.get("language_info")
    if isinstance(language, dict):
        language.pop("version", None)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def _selected(names: list[str] | None) -> list[Path]:
    sources = sorted(SOLUTIONS.glob("*.ipynb"))
    if not names:
        return sources
    wanted = {Path(name).stem for name in names}
    unknown = wanted - {source.stem for source in sources}
    if unknown:
        raise SystemExit(f"no such solution notebook: {', '.join(sorted(unknown))}")
    return [source for source in sources if source.stem in wanted]


def expected_copies(names: list[str] | None = None) -> dict[Path, str]:
    """Every learner notebook (or the named ones) as it should be, by path."""
    copies = {}
    for source in _selected(names):
        nb = nbformat.read(source, as_version=4)
        copies[NOTEBOOKS / source.name] = render(learner_notebook(nb, source.name))
    return copies


def stale_copies(names: list[str] | None = None) -> list[str]:
    """Learner notebooks that are missing, out of date, or (checking all) have no solution notebook."""
    expected = expected_copies(names)
    stale = [
        f"{path.relative_to(ROOT)} (out of date)" if path.exists() else f"{path.relative_to(ROOT)} (missing)"
        for path, text in expected.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    if not names:
        stale += [
            f"{path.relative_to(ROOT)} (no solutions/{path.name} to build it from)"
            for path in sorted(NOTEBOOKS.glob("*.ipynb"))
            if path not in expected
        ]
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="only these notebooks, e.g. 03_middleware (default: all)")
    parser.add_argument("--check", action="store_true", help="report stale learner notebooks instead of writing")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_copies(args.names)
        for line in stale:
            print(f"stale: {line}")
        if stale:
            print("Run: python scripts/make_learner_notebooks.py")
            return 1
        print(f"notebooks/ is up to date ({len(expected_copies(args.names))} notebooks).")
        return 0
    NOTEBOOKS.mkdir(exist_ok=True)
    for path, text in expected_copies(args.names).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
