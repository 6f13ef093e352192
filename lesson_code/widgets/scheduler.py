"""Running a widget's coroutines from button callbacks, and keeping them alive until done.

Callbacks run in the kernel's event loop; `Scheduler.run_soon` turns a click into
a task on that loop and keeps a strong reference to it (asyncio holds tasks
weakly, so an unreferenced task can vanish mid-run). A failing task reports one
line through `on_error` instead of "Task exception was never retrieved".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


class Scheduler:
    """Runs a widget's coroutines from button callbacks and remembers them until done."""

    def __init__(self, on_error: Callable[[BaseException], None]) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_error = on_error

    def run_soon(self, make: Callable[[], Coroutine[Any, Any, Any]]) -> asyncio.Task[Any] | None:
        """Start `make()` as a task on the running loop (the kernel's, inside a callback).

        With no loop running (a plain script calling `button.click()`), run it to the end
        right here instead, so a click always does something.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self._guarded(make()))
            return None
        task = loop.create_task(self._guarded(make()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait_idle(self) -> None:
        """Wait for every task started by `run_soon` (tests and notebooks use this after a click)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _guarded(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await coro
        except Exception as error:
            self._on_error(error)
