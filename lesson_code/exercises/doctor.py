"""The doctor cell of lesson 00: is this machine ready for the course?

`rows()` returns the checks as data (tested); `report()` shows them as a small
table followed by a one-line verdict. The agent row says which model the agent lessons
will use and why; with `OPENAI_API_KEY` set it asks the model endpoint once, with a short
timeout, so that no network or a stale key shows up here and not as a failure in lesson 05.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata

from lesson_code.background import free_port
from lesson_code.exercises.core import show_table
from lesson_code.model_mode import OFFLINE_SWITCH, PROBE_TIMEOUT_SECONDS, offline_reason, probe_model_endpoint

#: The packages the course needs, with the oldest version it was tested with.
PACKAGES: dict[str, str] = {
    "mcp": "2.3",
    "openai-agents": "0.24",
    "jupyterlab": "4.6",
    "ipywidgets": "8.1",
}
PYTHON_NEEDED = "3.11"


@dataclass(frozen=True)
class Row:
    """One check: its name, whether it passed, and what was found."""

    check: str
    ok: bool
    detail: str

    @property
    def icon(self) -> str:
        return "✅" if self.ok else "❌"


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _at_least(installed: str, needed: str) -> bool:
    return _version_tuple(installed) >= _version_tuple(needed)


def version_row(name: str, needed: str) -> Row:
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        return Row(name, False, "not installed: run `pip install -r requirements.txt`")
    if _at_least(installed, needed):
        return Row(name, True, installed)
    return Row(name, False, f"{installed}, but the course needs {needed} or newer")


def python_row() -> Row:
    installed = platform.python_version()
    if _at_least(installed, PYTHON_NEEDED):
        return Row("Python", True, installed)
    return Row("Python", False, f"{installed}, but the course needs {PYTHON_NEEDED} or newer")


def port_row(host: str = "127.0.0.1") -> Row:
    try:
        port = free_port(host)
    except OSError as exc:
        return Row("Free port", False, f"cannot open a port on {host}: {exc}")
    return Row("Free port", True, f"port {port} on {host} is free for the lesson servers")


def agent_row(environ: Mapping[str, str] | None = None, *, timeout: float = PROBE_TIMEOUT_SECONDS) -> Row:
    """Which model the agent lessons will use, and why; online, whether the endpoint answers."""
    env = os.environ if environ is None else environ
    reason = offline_reason(env)
    if reason == f"{OFFLINE_SWITCH}=1":
        return Row(
            "Agent", True, f"offline: {OFFLINE_SWITCH}=1 is set, so the agent lessons use a scripted stand-in model"
        )
    if reason is not None:
        return Row(
            "Agent", True, "offline: OPENAI_API_KEY is not set, so the agent lessons use a scripted stand-in model"
        )
    problem = probe_model_endpoint(env, timeout=timeout)
    if problem is None:
        return Row("Agent", True, "online: OPENAI_API_KEY is set and the model endpoint accepts it")
    return Row(
        "Agent",
        False,
        f"online, but {problem}: fix the key or network, or set {OFFLINE_SWITCH}=1 to work offline, and restart",
    )


def rows(environ: Mapping[str, str] | None = None) -> list[Row]:
    """Every check, in the order the table shows them."""
    return [
        python_row(),
        *(version_row(name, needed) for name, needed in PACKAGES.items()),
        port_row(),
        agent_row(environ),
    ]


def report(environ: Mapping[str, str] | None = None) -> None:
    """Show the checks as a table, then a one-line verdict."""
    checks = rows(environ)
    show_table(["Check", "Result"], [[f"{row.icon} {row.check}", row.detail] for row in checks])
    failed = [row.check for row in checks if not row.ok]
    if failed:
        print(f"❌ Fix these before lesson 01: {', '.join(failed)}. The fix is in the Result column.")
    else:
        print("✅ All set: this machine is ready for the course.")
