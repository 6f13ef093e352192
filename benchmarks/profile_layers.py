"""Where a secured request's extra time goes: the ASGI stack driven in-process, layer by layer.

`python -m benchmarks.profile_layers [--requests N] [--profile VARIANT]`

Over HTTP, the secured server costs a few tens of µs more per request than the open one,
and the client, the kernel and uvicorn add a millisecond of noise around that. Here the
apps are called directly (`await app(scope, receive, send)`, a prebuilt `tools/call
list_items` request, the lifespan running), so the difference between two variants is the
cost of what one has and the other lacks. Variants, each built the way the package builds it:

    open              the MCP app alone (`create_open_app_for_threat_model`)
    no-audit          our middleware and the SDK's context middleware, no audit log
    audit-memory      ... with the audit log in memory (the library default)
    audit-file        ... with the audit log written to a file, as `serve` ships it

They run round-robin in short batches (see `common.interleaved`); the figure is this
thread's CPU time per request. Tools are plain functions that MCPServer runs in a worker
thread, so the tool's own `tool_call` audit entry is written there: `thread_time` would miss
it, so while measuring, `anyio.to_thread.run_sync` runs the function inline (the thread hop
is the same for every variant, so leaving it out changes no difference). `--profile VARIANT`
then samples that variant with pyinstrument and prints where its time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import anyio.to_thread
from starlette.types import ASGIApp, Message

from benchmarks.common import interleaved, median
from benchmarks.middleware import tool_call_scope
from lesson_code.app import ShoppingApp, create_open_app_for_threat_model, create_secured_app
from lesson_code.audit import AuditLog
from lesson_code.keys import KeyRing, generate_key
from lesson_code.raw_requests import mcp_body

VARIANTS: Final = ("open", "no-audit", "audit-memory", "audit-file")
TOOL: Final = "list_items"


def build(variant: str, folder: Path, key: str) -> ShoppingApp:
    db = folder / f"{variant}.sqlite3"
    if variant == "open":
        return create_open_app_for_threat_model(db)
    keyring = KeyRing.from_keys({"bench": key})
    if variant == "no-audit":
        app = create_secured_app(keyring, db)
        app.asgi.audit = None  # type: ignore[attr-defined]  # ApiKeyMiddleware's audit; the tools keep theirs
        return app
    audit = AuditLog(folder / "audit.jsonl") if variant == "audit-file" else AuditLog()
    return create_secured_app(keyring, db, audit=audit)


def make_scope(key: str | None, body: bytes) -> dict[str, Any]:
    return tool_call_scope(key, [(b"host", b"127.0.0.1:8000"), (b"content-length", str(len(body)).encode())], TOOL)


class Driver:
    """Calls one app the way uvicorn would, with its lifespan running."""

    def __init__(self, app: ASGIApp, key: str | None) -> None:
        self.app = app
        self.body = json.dumps(mcp_body("tools/call", {"name": TOOL, "arguments": {}})).encode()
        self.scope = make_scope(key, self.body)
        self._lifespan_in: asyncio.Queue[Message] = asyncio.Queue()
        self._lifespan_out: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async def receive() -> Message:
            return await self._lifespan_in.get()

        async def send(message: Message) -> None:
            await self._lifespan_out.put(message)

        async def lifespan() -> None:
            await self.app({"type": "lifespan"}, receive, send)

        self._task = asyncio.get_running_loop().create_task(lifespan())
        await self._lifespan_in.put({"type": "lifespan.startup"})
        message = await self._lifespan_out.get()
        assert message["type"] == "lifespan.startup.complete", message

    async def stop(self) -> None:
        await self._lifespan_in.put({"type": "lifespan.shutdown"})
        await self._lifespan_out.get()
        if self._task is not None:
            await self._task

    async def request(self) -> int:
        status = 0
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": self.body, "more_body": False}
            await asyncio.sleep(3600)  # the client never disconnects mid-request here
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(dict(self.scope), receive, send)
        return status


@contextlib.contextmanager
def tools_inline() -> Iterator[None]:
    """Run MCPServer's sync tools on the calling thread, so their CPU time is measured with the request's."""
    original = anyio.to_thread.run_sync

    async def run_inline(func: Callable[..., Any], *args: Any, **_: Any) -> Any:
        return func(*args)

    anyio.to_thread.run_sync = run_inline  # type: ignore[assignment]  # restored below; profiling only
    try:
        yield
    finally:
        anyio.to_thread.run_sync = original


def measure(requests: int, rounds: int, variants: Sequence[str] = VARIANTS) -> dict[str, float]:
    """CPU µs per request: the open app's median, and each other variant's extra over it (this thread's CPU
    time, tools run inline)."""
    key = generate_key()
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory(prefix="bench-layers-") as folder, tools_inline():
        apps = {v: build(v, Path(folder), key) for v in variants}
        drivers = {v: Driver(apps[v].asgi, None if v == "open" else key) for v in variants}
        try:
            for driver in drivers.values():
                loop.run_until_complete(driver.start())

            def batch(variant: str) -> float:
                driver = drivers[variant]

                async def run() -> float:
                    start = time.thread_time_ns()
                    for _ in range(requests):
                        status = await driver.request()
                        if status != 200:
                            raise RuntimeError(f"{variant}: status {status}")
                    return (time.thread_time_ns() - start) / requests / 1000

                return loop.run_until_complete(run())

            interleaved(list(variants), 2, batch)  # warm-up
            samples = interleaved(list(variants), rounds, batch)
        finally:
            for driver in drivers.values():
                loop.run_until_complete(driver.stop())
            for app in apps.values():
                if app.audit is not None:
                    app.audit.close()
                app.store.close()
            loop.close()
    # Each variant's cost net of the open app's in the same round, then the median: drift between rounds cancels.
    return {
        variant: median([v - o for v, o in zip(values, samples["open"], strict=True)])
        if variant != "open"
        else median(values)
        for variant, values in samples.items()
    }


def profile(variant: str, requests: int) -> str:
    """pyinstrument's text report for `requests` calls of one variant."""
    from pyinstrument import Profiler

    key = generate_key()
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory(prefix="bench-layers-") as folder, tools_inline():
        app = build(variant, Path(folder), key)
        driver = Driver(app.asgi, None if variant == "open" else key)
        loop.run_until_complete(driver.start())
        run: Callable[[], Awaitable[int]] = driver.request
        for _ in range(200):
            loop.run_until_complete(run())
        profiler = Profiler(interval=0.0001, async_mode="disabled")

        async def many() -> None:
            for _ in range(requests):
                await run()

        profiler.start()
        loop.run_until_complete(many())
        profiler.stop()
        loop.run_until_complete(driver.stop())
        if app.audit is not None:
            app.audit.close()
        app.store.close()
    loop.close()
    return profiler.output_text(unicode=True, show_all=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_layers", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per batch")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--profile", choices=VARIANTS, help="also sample this variant with pyinstrument")
    args = parser.parse_args(argv)
    costs = measure(args.requests, args.rounds)
    print(f"CPU per in-process tools/call ({TOOL}), median of {args.rounds} interleaved rounds × {args.requests}:")
    print(f"  {'open':<13} {costs['open']:8.1f} µs")
    for variant in VARIANTS[1:]:
        print(f"  {variant:<13} {costs[variant]:+8.1f} µs vs open (median of per-round differences)")
    if args.profile:
        print(profile(args.profile, args.requests * 5))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
