"""Benchmark 2: the API-key middleware alone, in-process, as the key ring grows to 1,000,000 keys.

`await middleware(scope, receive, send)` is called directly with prebuilt ASGI
scopes and a trivial inner app: an HTTP client would cost a hundred times more
than the check and drown it. Cases: a valid key, a wrong key, no key. Rings of
10, 10,000 and 1,000,000 keys (digests from `os.urandom`; building a million
KeyRecords takes a few seconds, generating and hashing a million keys would not
add anything). The lookup is one dict access, so the cost must not grow.

The figure reported is the middleware's own cost: the time per call with the
middleware minus the time per call of the inner app alone, both measured in
the same interleaved rounds. Two configurations: with the audit log in memory
(what `create_secured_app` uses by default) and with no audit log.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from benchmarks.common import Section, Table, Target, interleaved, median
from lesson_code.audit import AuditLog
from lesson_code.auth import ApiKeyMiddleware
from lesson_code.keys import KeyRecord, KeyRing, generate_key, key_digest
from lesson_code.raw_requests import mcp_headers
from lesson_code.throttle import FailedAttemptThrottle

NAME: Final = "middleware"
SIZES: Final = (10, 10_000, 1_000_000)
CASES: Final = ("valid", "wrong", "missing")
AUDITS: Final = ("memory", "off")
PER_REQUEST_TARGET_US: Final = 10.0
# "Flat": the 1M-key figure within 10 % of the 10-key one. A dict lookup in a
# 1M-entry table misses the CPU caches a little more often (~0.1 µs), and
# per-round ratios on a shared machine still wobble by a few per cent.
FLAT_LIMIT: Final = 1.10
BASELINE: Final = "inner app alone"
# This thread's CPU time, not wall time: the calls never wait on anything, so CPU time is their
# whole cost, and time spent descheduled while a neighbour on the shared machine runs is left out.
CLOCK: Final = time.thread_time_ns
REFUSAL_WINDOW: Final = 0.5  # seconds: the throttle's window while measuring refusal memory
REFUSAL_AUDIT_RING: Final = 200  # entries kept by the in-memory audit log while measuring refusal memory


@dataclass(frozen=True)
class Settings:
    rounds: int
    batch: int
    refusal_warmup: int = 10_000
    refusals: int = 20_000


FULL = Settings(rounds=80, batch=300)
QUICK = Settings(rounds=30, batch=200, refusals=5_000)

_START = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
_BODY = {"type": "http.response.body", "body": b"{}"}


async def inner_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The trivial app behind the middleware: answers 200 with `{}`."""
    await send(_START)
    await send(_BODY)


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Message) -> None:
    return None


def make_scope(key: str | None) -> dict[str, Any]:
    """A `tools/call` POST as uvicorn would hand it over, with the key in `x-api-key` (or none)."""
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"python-httpx/0.28.1"), (b"content-length", b"180")]
    return tool_call_scope(key, headers)


def tool_call_scope(key: str | None, headers: list[tuple[bytes, bytes]], tool: str = "list_items") -> dict[str, Any]:
    """The ASGI scope of a `tools/call` POST to /mcp: `headers`, then the MCP ones for `tool` with `key`."""
    headers = headers + [(n.encode(), v.encode()) for n, v in mcp_headers("tools/call", tool=tool, api_key=key).items()]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 54321),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


def make_ring(size: int, valid_key: str) -> KeyRing:
    """A ring of `size` keys, one of which is `valid_key`; the others are random digests."""
    raw = os.urandom(32 * (size - 1))
    records = [KeyRecord(name="bench", sha256=raw[i : i + 32].hex()) for i in range(0, len(raw), 32)]
    records.append(KeyRecord(name="valid", sha256=key_digest(valid_key)))
    return KeyRing(records)


def filled_audit() -> AuditLog:
    """An in-memory audit log already at its size limit: the steady state of a server that has run a while."""
    audit = AuditLog()
    for _ in range(audit.memory_limit):
        audit.record("auth", outcome="allowed", key="warm-up", client="127.0.0.1:1", method="POST", path="/mcp")
    return audit


def run(quick: bool = False) -> Section:
    settings = QUICK if quick else FULL
    valid_key = generate_key()
    scopes = {"valid": make_scope(valid_key), "wrong": make_scope(generate_key()), "missing": make_scope(None)}

    build_start = time.perf_counter()
    gc.disable()  # a million new objects would trigger several full collections: a slow set-up, nothing more
    try:
        rings = {size: make_ring(size, valid_key) for size in SIZES}
    finally:
        gc.enable()
    build_seconds = time.perf_counter() - build_start

    apps: dict[str, tuple[ASGIApp, dict[str, Any]]] = {BASELINE: (inner_app, scopes["valid"])}
    for size in SIZES:
        for audit in AUDITS:
            middleware = ApiKeyMiddleware(inner_app, rings[size], audit=filled_audit() if audit == "memory" else None)
            for case in CASES:
                apps[_variant(size, case, audit)] = (middleware, scopes[case])

    loop = asyncio.new_event_loop()

    async def batch(app: ASGIApp, scope: dict[str, Any], count: int) -> float:
        start = CLOCK()
        for _ in range(count):
            await app(scope, receive, send)
        return (CLOCK() - start) / count / 1000  # µs per call

    def measure(variant: str, count: int) -> float:
        app, scope = apps[variant]
        return loop.run_until_complete(batch(app, scope, count))

    try:
        interleaved(list(apps), 1, lambda v: measure(v, settings.batch))  # warm-up
        samples = interleaved(list(apps), settings.rounds, lambda v: measure(v, settings.batch))
    finally:
        loop.close()

    # Paired by round: each round's inner-app time is subtracted from the same round's figures, and the
    # flatness ratio is taken within a round, so drift in the machine's speed between rounds cancels out.
    base = median(samples[BASELINE])
    net = {
        variant: [value - samples[BASELINE][i] for i, value in enumerate(values)]
        for variant, values in samples.items()
        if variant != BASELINE
    }
    cost = {variant: median(values) for variant, values in net.items()}

    section = Section(NAME, "2. The API-key middleware alone, in-process (ASGI, trivial inner app)")
    for audit, label in (("memory", "audit log in memory (as `create_secured_app` sets it up)"), ("off", "no audit")):
        table = Table(
            f"Middleware cost per request, {label}: CPU µs, net of the inner app "
            f"({settings.rounds} interleaved rounds × {settings.batch:,} calls)",
            ["keys loaded", *(f"{case} key" for case in CASES)],
        )
        for size in SIZES:
            table.rows.append([f"{size:,}", *(f"{cost[_variant(size, case, audit)]:.2f}" for case in CASES)])
        table.rows.append(
            [f"ratio {SIZES[-1]:,} / {SIZES[0]:,}", *(f"{_flatness(net, case, audit):.3f}×" for case in CASES)]
        )
        section.tables.append(table)

    section.notes += [
        f"Inner app alone: {base:.2f} µs per call (subtracted round by round above; the ratios are medians of "
        f"per-round ratios). Building the {SIZES[-1]:,}-key ring took "
        f"{build_seconds:.1f} s (all three rings: {sum(SIZES):,} KeyRecords).",
        "Each in-memory audit log was filled to its limit before measuring, the state of a server that has "
        "served a while; the middleware is called the way uvicorn calls it, with prebuilt scopes.",
    ]
    for audit, label in (("memory", "audit log in memory, as shipped"), ("off", "without the audit log")):
        worst = max(cost[_variant(size, case, audit)] for size in SIZES for case in CASES)
        section.targets.append(
            Target(
                f"under {PER_REQUEST_TARGET_US:g} µs per request in-process, {label} (worst of all cases)",
                worst < PER_REQUEST_TARGET_US,
                f"worst {worst:.2f} µs",
            )
        )
    flatness = max(_flatness(net, case, audit) for case in CASES for audit in AUDITS)
    section.targets.append(
        Target(
            f"flat from {SIZES[0]:,} to {SIZES[-1]:,} keys (ratio at most {FLAT_LIMIT})",
            flatness <= FLAT_LIMIT,
            f"worst ratio {flatness:.3f}×",
        )
    )
    memory = refusal_memory(settings)
    table = Table(
        "Memory per 1,000 refusals in process (tracemalloc), wrong keys, throttle raised, audit log in memory "
        f"({REFUSAL_AUDIT_RING} entries)",
        ["refusals after warm-up", "traced memory growth", "per 1,000 refusals"],
    )
    table.rows.append(
        [f"{memory.refusals:,}", f"{memory.growth_bytes / 1024:+,.1f} KiB", f"{memory.per_thousand_kib:+.2f} KiB"]
    )
    section.tables.append(table)
    section.notes.append(
        f"Memory: {memory.warmup:,} refusals first (the in-memory audit log fills to its limit and the throttle "
        "table holds its address), then traced memory is compared before and after the measured refusals, each "
        "with a fresh scope and a fresh wrong key, as a scanner sends them. The throttle counts every failure but "
        f"never answers 429, with a {REFUSAL_WINDOW:g} s window so that what it holds is steady."
    )
    section.targets.append(
        Target(
            f"in process, {memory.refusals:,} refusals grow traced memory by less than 1 MB after warm-up",
            memory.growth_bytes < 1_000_000,
            f"{memory.growth_bytes / 1024:+,.1f} KiB",
        )
    )
    return section


@dataclass(frozen=True)
class RefusalMemory:
    warmup: int
    refusals: int
    growth_bytes: int

    @property
    def per_thousand_kib(self) -> float:
        return self.growth_bytes / 1024 / (self.refusals / 1000)


def refusal_memory(settings: Settings) -> RefusalMemory:
    """Traced memory growth over `settings.refusals` refusals, after `settings.refusal_warmup` of them."""
    # A small in-memory ring: tracemalloc sees only blocks allocated after it starts, so the entries that
    # replace a full ring's older ones would count as growth until the ring has turned over once.
    audit = AuditLog(memory_limit=REFUSAL_AUDIT_RING)
    middleware = ApiKeyMiddleware(
        inner_app,
        KeyRing.from_keys({"valid": generate_key()}),
        # Counts every failure, never answers 429; a short window, so the counts it holds stay as many as
        # arrive in half a second (with 60 s it would hold a minute of them: bounded, but not steady here).
        throttle=FailedAttemptThrottle(10**9, REFUSAL_WINDOW),
        audit=audit,
    )
    loop = asyncio.new_event_loop()

    async def refuse(count: int) -> None:
        for _ in range(count):
            scope = make_scope(generate_key())
            await middleware(scope, receive, send)

    try:
        loop.run_until_complete(refuse(max(settings.refusal_warmup, audit.memory_limit)))
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        loop.run_until_complete(refuse(settings.refusals))
        time.sleep(REFUSAL_WINDOW * 1.2)  # the window passes, so the next failure lets old timestamps expire
        loop.run_until_complete(refuse(1))
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    finally:
        loop.close()
    return RefusalMemory(max(settings.refusal_warmup, audit.memory_limit), settings.refusals, after - before)


def _variant(size: int, case: str, audit: str) -> str:
    return f"{size} keys / {case} / audit {audit}"


def _flatness(net: dict[str, list[float]], case: str, audit: str) -> float:
    """The median, over rounds, of that round's cost with the most keys divided by its cost with the fewest."""
    most, fewest = net[_variant(SIZES[-1], case, audit)], net[_variant(SIZES[0], case, audit)]
    return median([m / f for m, f in zip(most, fewest, strict=True)])
