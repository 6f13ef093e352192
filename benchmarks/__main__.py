"""`python -m benchmarks [--quick] [--only NAME ...] [--output FILE]`: run, print, write results.md.

Markdown goes to stdout as each benchmark finishes (progress goes to stderr),
then a summary of every target. The same text, headed by a description of the
machine and the date, is written to benchmarks/results.md. A benchmark that
crashes is reported as such and the others still run: one broken measurement
should not cost the rest of a three-minute run.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks import cluster, course, http_auth, instructions, machine, middleware, offline_agent
from benchmarks.common import Section, Target

BENCHMARKS: dict[str, tuple[str, Callable[[bool], Section]]] = {
    http_auth.NAME: ("auth overhead over real HTTP", http_auth.run),
    middleware.NAME: ("the middleware alone, in-process", middleware.run),
    course.NAME: ("course runtime (solution notebooks)", course.run),
    offline_agent.NAME: ("the offline agent, cold and warm", offline_agent.run),
    cluster.NAME: ("the cluster: Redis-backed keys, revocation, nginx", cluster.run),
    instructions.NAME: ("instructions per request under valgrind (deterministic)", instructions.run),
}
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.md"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a rough look in well under a minute")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the markdown report")
    return parser.parse_args(argv)


def run_one(name: str, quick: bool) -> Section:
    """Run one benchmark, timing it; a crash becomes a section that says so."""
    title, function = BENCHMARKS[name]
    print(f"[benchmarks] {name}: {title}...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        section = function(quick)
    except Exception as error:
        traceback.print_exc()
        section = Section(name, f"{name}: FAILED")
        section.notes.append(f"The benchmark raised {type(error).__name__}: {error}")
        section.targets.append(Target(f"{name} benchmark ran", False, "it crashed; see stderr"))
    section.seconds = time.perf_counter() - start
    return section


def summary(sections: list[Section]) -> str:
    lines = ["## Targets", ""]
    lines += [target.line() for section in sections for target in section.targets]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = [name for name in BENCHMARKS if not args.only or name in args.only]
    machine_lines = machine.describe()  # taken first: the load average before we add to it
    start = time.perf_counter()

    sections = []
    for name in names:
        section = run_one(name, args.quick)
        sections.append(section)
        print(section.markdown(), flush=True)
    print(summary(sections), flush=True)

    mode = "quick" if args.quick else "full"
    header = [
        "# Benchmark results",
        "",
        f"`python -m benchmarks{' --quick' if args.quick else ''}"
        + "".join(f" --only {name}" for name in args.only or [])
        + f"`: {mode} run of {', '.join(names)}, {time.perf_counter() - start:.0f} s in all.",
        "Every comparison was measured in this one run, its variants interleaved round-robin; "
        "figures are medians, and ratios matter more than absolute times on a shared machine.",
        "",
        *machine_lines,
        "",
    ]
    report = "\n".join(header) + "\n" + "\n".join(s.markdown() for s in sections) + "\n" + summary(sections)
    args.output.write_text(report, encoding="utf-8")
    print(f"[benchmarks] wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
