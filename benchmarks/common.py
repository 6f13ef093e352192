"""What every benchmark shares: result tables, targets, and the interleaved runner.

Interleaving is the point: on a shared machine the background load drifts over
seconds, so measuring variant A for ten seconds and then variant B compares two
different machines. Running A, B, C, A, B, C, ... in short rounds exposes every
variant to the same drift, and medians shrug off the odd slow round.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Table:
    """A markdown table: a title, column headers, and rows of already formatted cells.

    Columns are right-aligned (figures) except the first, and any listed in `text_columns`.
    """

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    text_columns: tuple[int, ...] = ()

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.headers) + " |"]
        left = {0, *self.text_columns}
        lines.append("|" + "|".join("---" if i in left else "---:" for i in range(len(self.headers))) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class Target:
    """A goal from the issue, checked against this run's figure.

    `met` is None when the benchmark could not measure it (for example, no
    notebooks exist yet): that is reported, never counted as met.
    """

    description: str
    met: bool | None
    figure: str

    def line(self) -> str:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[self.met]
        return f"- target: {self.description}: **{verdict}** ({self.figure})"


@dataclass
class Section:
    """One benchmark's outcome: its tables, the targets it checks, and notes on how to read it."""

    name: str
    title: str
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def markdown(self) -> str:
        parts = [f"## {self.title}", ""]
        for table in self.tables:
            parts += [table.markdown(), ""]
        parts += [f"- {note}" for note in self.notes]
        parts += [target.line() for target in self.targets]
        parts += ["", f"_({self.name}: {self.seconds:.1f} s)_", ""]
        return "\n".join(parts)


def interleaved(variants: Sequence[str], rounds: int, measure: Callable[[str], T]) -> dict[str, list[T]]:
    """Call `measure(variant)` round-robin, `rounds` times each, and collect the results per variant.

    The starting variant rotates every round, so none of them is always the one
    that runs right after a pause (or right after the noisiest neighbour).
    """
    samples: dict[str, list[T]] = {variant: [] for variant in variants}
    order = list(variants)
    for round_index in range(rounds):
        shift = round_index % len(order)
        for variant in order[shift:] + order[:shift]:
            samples[variant].append(measure(variant))
    return samples


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which `fraction` of the samples lie (nearest rank; fine for hundreds of samples)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def ratio(value: float, reference: float) -> str:
    """`value / reference` as a table cell, e.g. `1.03×`."""
    return f"{value / reference:.3f}×" if reference else "n/a"
