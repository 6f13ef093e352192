"""Judging each attack (status, data changed, key echoed) and the scorecard a learner reads."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from lesson_code.attacks.catalogue import Attack
from lesson_code.attacks.constants import SHOWN_FAILURES
from lesson_code.attacks.sending import RawResponse
from lesson_code.store import Snapshot
from lesson_code.text import shorten

# --- judging ---------------------------------------------------------------------------------------------


def describe_change(before: Snapshot, after: Snapshot) -> str | None:
    """What changed between two store snapshots, in words ("added 'x' (1)"); None if nothing did."""
    old = {item["name"].casefold(): item for item in before["items"]}
    new = {item["name"].casefold(): item for item in after["items"]}
    parts: list[str] = []
    for key in sorted(new.keys() - old.keys()):
        parts.append(f"added {new[key]['name']!r} ({new[key]['quantity']})")
    for key in sorted(old.keys() - new.keys()):
        parts.append(f"removed {old[key]['name']!r}")
    for key in sorted(old.keys() & new.keys()):
        if old[key]["quantity"] != new[key]["quantity"]:
            parts.append(f"changed {new[key]['name']!r} from {old[key]['quantity']} to {new[key]['quantity']}")
    known = {order["order_id"] for order in before["orders"]}
    for order in after["orders"]:
        if order["order_id"] not in known:
            parts.append(f"placed order {order['order_id']} ({len(order['items'])} items)")
    if len(after["orders"]) < len(before["orders"]):
        parts.append("deleted orders")
    return ", ".join(parts) or None


Outcome = Literal[
    "stopped", "throttled", "got through", "wrong answer", "leaked key", "skipped", "no answer", "not in task"
]


@dataclass(frozen=True)
class AttackResult:
    """How one attack went: the status it got, whether it was stopped, and why (in words)."""

    attack: Attack
    outcome: Outcome
    reason: str
    status: int | None = None
    change: str | None = None
    response: RawResponse | None = field(default=None, repr=False)
    seconds: float = 0.0
    missing: tuple[str, ...] = ()  # for a skipped attack: the context keys it needed

    @property
    def id(self) -> str:
        return self.attack.id

    @property
    def group(self) -> str:
        return self.attack.group

    @property
    def description(self) -> str:
        return self.attack.description

    @property
    def expected(self) -> str:
        return self.attack.expected

    @property
    def passed(self) -> bool:
        """Stopped (or throttled): the attack achieved nothing."""
        return self.outcome in ("stopped", "throttled")

    @property
    def skipped(self) -> bool:
        """Not run (a key it needs was not given), or set aside as outside the task being scored."""
        return self.outcome in ("skipped", "not in task")

    @property
    def mark(self) -> str:
        return "–" if self.skipped else ("✓" if self.passed else "✗")


def _message(response: RawResponse) -> str:
    """The server's own words: the JSON-RPC error (or tool result) message, else the start of the body."""
    data = response.json()
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        result = data.get("result")
        if isinstance(result, dict):
            texts = [c.get("text", "") for c in result.get("content", []) if isinstance(c, dict)]
            if texts:
                return " ".join(texts)
    return " ".join(response.text.split())[:120] or "(empty body)"


def judge(
    attack: Attack,
    response: RawResponse,
    change: str | None,
    secrets: Sequence[bytes],
    *,
    accept_throttled: bool = True,
    store_checked: bool = True,
) -> tuple[Outcome, str]:
    """Decide whether `attack` was stopped, and say why in one sentence a learner can act on."""
    status = response.status
    if change is not None:
        return "got through", f"reached the MCP app and changed the shopping data: {change}"
    raw = response.raw()
    if any(secret and secret in raw for secret in secrets):
        return "leaked key", "the response echoes a key the attacker presented: never repeat a credential back"
    if status is None:
        return "no answer", f"no HTTP answer ({response.error}): a refusal should be a proper HTTP response"
    said = shorten(_message(response), 100)
    unchecked = "" if store_checked else " (store not given: changes were not checked)"
    if status == 429 and 429 not in attack.expect_status and accept_throttled:
        return (
            "throttled",
            f"throttled (429) before this check was reached; run without a throttle to test it{unchecked}",
        )
    if status in attack.expect_status:
        if status == 200 and attack.refusal_text and attack.refusal_text not in response.text:
            return (
                "got through",
                f"the tool ran: the answer does not refuse for lack of {attack.refusal_text!r}: {said}",
            )
        if status == 400 and "Invalid HTTP request" in response.text:
            return "stopped", "refused by the HTTP server itself (400) before any middleware ran"
        if status == 200:
            return "stopped", f"the tool refused it and nothing changed: {said}{unchecked}"
        return "stopped", f"refused with {status}: {said}{unchecked}"
    if 200 <= status < 400:
        where = f" (redirect to {response.header('location')})" if 300 <= status < 400 else ""
        return "got through", (
            f"got past the key check: the app answered {status}{where}; expected {attack.expected}. "
            "Nothing changed this time, but the request reached the app."
        )
    if status >= 500:
        return "wrong answer", f"the server failed ({status}: {said}) instead of refusing with {attack.expected}"
    return "wrong answer", (
        f"not refused by the key check: the app answered {status} ({said}); expected {attack.expected}. "
        "Deny by default, whatever the path or method."
    )


# --- the scorecard -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scorecard:
    """The results of one run, with a one-line summary, a plain-text table and short notebook views."""

    results: tuple[AttackResult, ...]
    target: str = ""

    def __iter__(self) -> Iterator[AttackResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, attack_id: str) -> AttackResult:
        for result in self.results:
            if result.id == attack_id:
                return result
        raise KeyError(attack_id)

    @property
    def passed(self) -> list[AttackResult]:
        """The attacks that were stopped (including throttled ones)."""
        return [r for r in self.results if r.passed]

    @property
    def failed(self) -> list[AttackResult]:
        """The attacks that were not stopped: each has a reason saying what went wrong."""
        return [r for r in self.results if not r.passed and not r.skipped]

    @property
    def skipped(self) -> list[AttackResult]:
        return [r for r in self.results if r.skipped]

    @property
    def all_stopped(self) -> bool:
        return not self.failed

    def by_group(self) -> dict[str, tuple[int, int]]:
        """{group: (stopped, run)} in catalogue order; skipped attacks are not counted as run."""
        counts: dict[str, tuple[int, int]] = {}
        for result in self.results:
            stopped, run = counts.get(result.group, (0, 0))
            if not result.skipped:
                counts[result.group] = (stopped + result.passed, run + 1)
            else:
                counts.setdefault(result.group, (stopped, run))
        return counts

    def set_aside(self, outside: Callable[[Attack], bool], reason: str) -> Scorecard:
        """This scorecard with the attacks `outside` the task being scored marked "not in task", not counted.

        For scoring an answer against what its exercise asked: lesson 03's task reads
        only x-api-key, so attacks through `Authorization` say nothing about it.
        """
        results = tuple(
            replace(r, outcome="not in task", reason=reason) if outside(r.attack) and not r.skipped else r
            for r in self.results
        )
        return replace(self, results=results)

    def summary(self) -> str:
        """One line, e.g. '48/52 attacks stopped (3 skipped: no viewer_key given)'."""
        run = len(self.results) - len(self.skipped)
        line = f"{len(self.passed)}/{run} attacks stopped"
        throttled = sum(r.outcome == "throttled" for r in self.results)
        extras = []
        if throttled:
            extras.append(f"{throttled} by the throttle")
        unrun = [r for r in self.results if r.outcome == "skipped"]
        if unrun:
            missing = sorted({name for r in unrun for name in r.missing})
            extras.append(f"{len(unrun)} skipped: no {', '.join(missing)} given")
        aside = [r for r in self.results if r.outcome == "not in task"]
        if aside:
            extras.append(f"{len(aside)} set aside: {aside[0].reason}")
        return line + (f" ({'; '.join(extras)})" if extras else "")

    def table(self, *, failures_only: bool = False, width: int = 150) -> str:
        """A plain-text table: mark, id, group, status got, expected, reason (cut to fit `width`)."""
        rows = self.failed if failures_only else list(self.results)
        head = ("", "attack", "group", "got", "expected", "why")
        lines = [
            (r.mark, r.id, r.group, "-" if r.status is None else str(r.status), r.expected, r.reason) for r in rows
        ]
        widths = [max(len(row[i]) for row in [head, *lines]) for i in range(5)]
        fixed = sum(widths) + 2 * 5
        out = []
        for row in [head, *lines]:
            cells = [row[i].ljust(widths[i]) for i in range(5)]
            out.append("  ".join([*cells, shorten(row[5], max(40, width - fixed))]).rstrip())
        return "\n".join([self.summary(), self._group_line("  "), *out])

    def _group_line(self, separator: str) -> str:
        """'header 35/36  path 18/18 ...', with 'skipped' for a group that could not run."""
        return separator.join(
            f"{group} {stopped}/{run}" if run else f"{group} skipped"
            for group, (stopped, run) in self.by_group().items()
        )

    def _rows_for_display(self) -> list[AttackResult]:
        return self.failed[:SHOWN_FAILURES]

    def _repr_markdown_(self) -> str:
        lines = [f"**{self.summary()}**", "", self._group_line(" · ")]
        shown = self._rows_for_display()
        if shown:
            lines += ["", "| attack | got | expected | why |", "|---|---|---|---|"]
            for r in shown:
                why = shorten(r.reason, 140).replace("|", "\\|")
                lines.append(f"| ✗ `{r.id}` {r.description} | {r.status or '-'} | {r.expected} | {why} |")
            if len(self.failed) > len(shown):
                lines.append(f"\n…and {len(self.failed) - len(shown)} more: `print(scorecard.table())`")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        parts = [f"<p><b>{esc(self.summary())}</b><br><small>{esc(self._group_line(' · '))}</small></p>"]
        shown = self._rows_for_display()
        if shown:
            rows = "".join(
                f"<tr><td>✗ <code>{esc(r.id)}</code><br><small>{esc(r.description)}</small></td>"
                f"<td>{r.status or '-'}</td><td>{esc(r.expected)}</td><td>{esc(shorten(r.reason, 160))}</td></tr>"
                for r in shown
            )
            parts.append(f"<table><tr><th>attack</th><th>got</th><th>expected</th><th>why</th></tr>{rows}</table>")
            if len(self.failed) > len(shown):
                parts.append(f"<p>…and {len(self.failed) - len(shown)} more: <code>print(scorecard.table())</code></p>")
        return "".join(parts)

    def __repr__(self) -> str:
        return f"<Scorecard {self.summary()}>"
