"""Cells that depend on an earlier cell say so in one line, instead of a connection traceback.

Why this module exists: a learner re-runs a cell after the notebook's clean-up cell has stopped
the lesson's server. Without a check, httpx prints a ~60-line `ConnectError`; with one, the
cell prints a single line naming the cell to run first.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["RunThatCellFirst", "running_url"]


class _Server(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def running(self) -> bool: ...

    @property
    def mcp_url(self) -> str: ...


class RunThatCellFirst(RuntimeError):
    """A cell needs something an earlier cell starts; `str()` says which cell to run first."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this one line instead of a traceback.
        return [f"⏭ {self}"]


def running_url(server: _Server, *, start_cell: str) -> str:
    """`server.mcp_url` while it runs; once it has been stopped, `RunThatCellFirst` naming `start_cell`."""
    if not server.running:
        raise RunThatCellFirst(
            f"the {server.name} server is stopped (the clean-up cell stops it): run the cell under "
            f'"{start_cell}" again first, or Kernel → Restart Kernel and Run All'
        )
    return server.mcp_url
