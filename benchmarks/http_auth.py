"""Benchmark 1: what authentication costs over real HTTP, against the open server.

One `tools/call` (list_items, a read: no SQLite write to dominate) is sent to uvicorn
servers on loopback, each in its own process (see `servers.py`):

* as users run them: `python -m lesson_code serve` with a keys file and the audit log
  written to a file, against `serve --no-auth` (the targets are about this pair);
* as the library builds them, side by side: the open app, our API-key middleware with
  the audit log in memory, and the SDK's own Bearer path.

Figures, all interleaved round-robin:

* latency: one request at a time in small batches, each request timed on its own; median
  and p90, and the median of per-round ratios against the matching open server;
* throughput: 8 concurrent keep-alive connections for short slices; median requests/s per
  slice, and the server's own CPU time per request (from /proc), which stays meaningful
  when the load generator on the same two cores is the bottleneck. The load generator is
  `raw_load` (prebuilt bytes, tens of µs per request), not httpx;
* refusals: the same slices against a `serve` whose throttle is raised so that every
  request reaches the key check, each request with a wrong key (401): CPU per refusal and
  refusals/s against the tool calls of the shipped `serve`; then the growth of that
  process's RSS per 1,000 refusals after a warm-up.

Several processes for the target pair: two identical server processes differ by a few % in CPU
per request for a whole run (memory layout, hash seeds, which core), so `serve --no-auth`,
`serve` and the A/A copy each run as `processes` copies, started in a shuffled order; round r
uses copy r % processes. The number of slices and batches stays the same, and each figure is
pooled over the copies. (`instructions.py` counts instructions instead, which does not drift.)
Server CPU is also split into the main thread (the event loop) and the others (worker threads
running the sync tools, the audit writer), from each thread's schedstat.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import httpx

from benchmarks.common import Section, Table, Target, interleaved, median, percentile, ratio
from benchmarks.raw_load import Connection, encode_request, run_for, send_count
from benchmarks.servers import HOST, VARIANTS, CliServerProcess, ServerProcess, auth_headers, thread_cpu_ns
from lesson_code.keys import generate_key
from lesson_code.raw_requests import mcp_body, mcp_headers

NAME: Final = "http"
TOOL: Final = "list_items"
CONCURRENCY: Final = 8
LATENCY_TARGET: Final = 1.02  # secured / open, latency and server CPU per request
THROUGHPUT_TARGET: Final = 0.98  # secured / open, requests/s with 8 clients
REFUSAL_CPU_TARGET: Final = 0.25  # a 401's server CPU / a tool call's
REFUSAL_RATE_TARGET: Final = 4.0  # refusals/s / tool calls/s, 8 clients each
MEMORY_TARGET_KIB: Final = 50.0  # RSS growth per 1,000 refusals after warm-up
NODELAY: Final = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]

CLI_OPEN, CLI_SECURED, CLI_REFUSALS = "serve --no-auth", "serve", "serve (throttle raised)"
CLI_OPEN_AGAIN = "serve --no-auth, second copy"
# Pairs compared: (secured, its open reference). The last is an A/A control: two identical open servers,
# whose ratio shows how far apart two copies of the same thing measure in this run (the noise floor).
PAIRS: Final = (
    (CLI_SECURED, CLI_OPEN),
    ("api-key", "open"),
    ("sdk-bearer", "open"),
    (CLI_OPEN_AGAIN, CLI_OPEN),
)
TOOL_VARIANTS: Final = (CLI_OPEN, CLI_SECURED, *VARIANTS, CLI_OPEN_AGAIN)
POOLED: Final = (CLI_OPEN, CLI_SECURED, CLI_OPEN_AGAIN)  # `Settings.processes` copies each
LABELS: Final = {
    CLI_OPEN: "`serve --no-auth` (open, as shipped)",
    CLI_SECURED: "`serve` with a keys file, audit log to a file (as shipped)",
    CLI_REFUSALS: "`serve`, throttle raised: wrong key, 401",
    CLI_OPEN_AGAIN: "`serve --no-auth`, a second copy (A/A control: the noise floor)",
    "open": "open app (no auth)",
    "api-key": "API-key middleware, audit log in memory",
    "sdk-bearer": "SDK Bearer (`token_verifier` + `AuthSettings`)",
}


class Server(Protocol):
    url: str
    port: int

    @property
    def pid(self) -> int: ...

    def cpu_seconds(self) -> float: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Settings:
    warmup: int
    latency_rounds: int
    latency_batch: int
    throughput_rounds: int
    slice_seconds: float
    memory_warmup: int
    memory_refusals: int
    processes: int  # copies of each POOLED server


FULL = Settings(
    warmup=100,
    latency_rounds=100,
    latency_batch=8,
    throughput_rounds=12,
    slice_seconds=0.5,
    memory_warmup=3_000,
    memory_refusals=12_000,
    processes=3,
)
QUICK = Settings(
    warmup=30,
    latency_rounds=15,
    latency_batch=5,
    throughput_rounds=3,
    slice_seconds=0.4,
    memory_warmup=1_000,
    memory_refusals=3_000,
    processes=1,
)


@dataclass
class Slice:
    """One throughput slice: requests completed, wall seconds, and CPU seconds spent by server and client.

    `main_cpu` / `other_cpu`: the server's main thread and its other threads (schedstat, ns precision);
    a thread that exits during the slice is missing from `other_cpu` but not from `server_cpu`.
    """

    requests: int
    seconds: float
    server_cpu: float
    client_cpu: float
    main_cpu: float = 0.0
    other_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class Request:
    body: bytes
    headers: dict[str, str]
    status: int  # what the answer must be
    marker: bytes  # what the answer's body must contain


def tool_call(key_headers: dict[str, str]) -> Request:
    """The body (encoded once, so the client does no JSON work per request) and headers of one tools/call."""
    body = json.dumps(mcp_body("tools/call", {"name": TOOL, "arguments": {}})).encode()
    return Request(body, {**mcp_headers("tools/call", tool=TOOL), **key_headers}, 200, b'"result"')


@dataclass
class Instance:
    """One server process and the request it is sent (each copy of `serve` has a key of its own)."""

    server: Server
    request: Request


Pool = dict[str, list[Instance]]  # variant -> its copies (one, or `processes` for POOLED)


@dataclass
class Rounds:
    """Which copy a call uses: the r-th call for a variant (round r of `interleaved`) uses copy r % copies."""

    pool: Pool
    calls: dict[str, int] = field(default_factory=dict)

    def next(self, variant: str) -> tuple[int, Instance]:
        call = self.calls.get(variant, 0)
        self.calls[variant] = call + 1
        copies = self.pool[variant]
        return call % len(copies), copies[call % len(copies)]


def wrong_key_call() -> Request:
    request = tool_call({"x-api-key": generate_key()})
    return Request(request.body, request.headers, 401, b'"error"')


def check_response(variant: str, request: Request, status: int, text: bytes) -> None:
    if status != request.status or request.marker not in text:
        raise RuntimeError(f"{variant}: unexpected answer {status}: {text[:200]!r}")


def check_auth_is_on(pool: Pool) -> None:
    """A request without a key must get 401 from every secured variant: we must time real checks."""
    anonymous = tool_call({})
    for variant in (CLI_SECURED, CLI_REFUSALS, "api-key", "sdk-bearer"):
        for instance in pool[variant]:
            status = httpx.post(instance.server.url, content=anonymous.body, headers=anonymous.headers).status_code
            if status != 401:
                raise RuntimeError(f"{variant}: a request without a key got {status}, expected 401")


def measure_latency(pool: Pool, settings: Settings) -> dict[str, list[list[float]]]:
    """Per-request round-trip times in seconds, one list per round, interleaved across variants in small batches."""
    clients = {
        (v, i): httpx.Client(transport=httpx.HTTPTransport(socket_options=NODELAY))
        for v in TOOL_VARIANTS
        for i in range(len(pool[v]))
    }
    try:

        def batch(variant: str, count: int, rounds: Rounds) -> list[float]:
            copy, instance = rounds.next(variant)
            client, url, request = clients[variant, copy], instance.server.url, instance.request
            times = []
            for _ in range(count):
                start = time.perf_counter()
                response = client.post(url, content=request.body, headers=request.headers)
                times.append(time.perf_counter() - start)
                check_response(variant, request, response.status_code, response.content)
            return times

        warm, timed = Rounds(pool), Rounds(pool)
        interleaved(list(TOOL_VARIANTS), settings.processes, lambda v: batch(v, settings.warmup, warm))  # every copy
        return interleaved(
            list(TOOL_VARIANTS), settings.latency_rounds, lambda v: batch(v, settings.latency_batch, timed)
        )
    finally:
        for client in clients.values():
            client.close()


class Load:
    """`CONCURRENCY` keep-alive connections per variant, on one event loop, for throughput and memory."""

    def __init__(self, pool: Pool) -> None:
        self.loop = asyncio.new_event_loop()
        self.pool = pool
        self.connections = {
            (variant, copy): [
                Connection(
                    HOST,
                    instance.server.port,
                    encode_request(HOST, instance.server.port, "/mcp", instance.request.headers, instance.request.body),
                )
                for _ in range(CONCURRENCY)
            ]
            for variant, instances in pool.items()
            for copy, instance in enumerate(instances)
        }

    def slice(self, variant: str, seconds: float, rounds: Rounds) -> Slice:
        copy, instance = rounds.next(variant)
        server, request, pid = instance.server, instance.request, instance.server.pid
        connections = self.connections[variant, copy]
        # One untimed request per connection first: a connection the server closed while this copy waited
        # (uvicorn's 5 s keep-alive timeout) is reopened here, outside the figures.
        self.loop.run_until_complete(send_count(connections, len(connections), request.status))
        threads = thread_cpu_ns(pid)
        cpu_server, cpu_client, start = server.cpu_seconds(), time.process_time(), time.perf_counter()
        done = self.loop.run_until_complete(run_for(connections, seconds, request.status, request.marker))
        elapsed = time.perf_counter() - start
        cpu_server, cpu_client = server.cpu_seconds() - cpu_server, time.process_time() - cpu_client
        after = thread_cpu_ns(pid)
        main = after.get(pid, 0) - threads.get(pid, 0)
        others = sum(ns - threads.get(tid, 0) for tid, ns in after.items() if tid != pid)
        return Slice(done, elapsed, cpu_server, cpu_client, main / 1e9, others / 1e9)

    def send(self, variant: str, count: int) -> None:
        """`count` requests to the variant's first copy (the memory figure uses a variant with one copy)."""
        status = self.pool[variant][0].request.status
        self.loop.run_until_complete(send_count(self.connections[variant, 0], count, status))

    def reconnects(self, variant: str) -> int:
        return sum(
            c.reconnects for (v, _), connections in self.connections.items() if v == variant for c in connections
        )

    def close(self) -> None:
        for connections in self.connections.values():
            for connection in connections:
                self.loop.run_until_complete(connection.close())
        self.loop.close()


def start_instance(variant: str, copy: int, folder: Path, key: str) -> Instance:
    """Start one copy of `variant` and build the request it is sent."""
    if variant in (CLI_OPEN, CLI_OPEN_AGAIN):
        name = "cli-open" if variant == CLI_OPEN else "cli-open-again"
        return Instance(CliServerProcess(f"{name}-{copy}", folder, secured=False), tool_call({}))
    if variant == CLI_SECURED:
        server = CliServerProcess(f"cli-secured-{copy}", folder, secured=True)
        return Instance(server, tool_call({"x-api-key": server.key}))
    if variant == CLI_REFUSALS:
        # Every request reaches the key check: the throttle counts failures but never answers 429 (its window is
        # 1 s so the timestamps it keeps are a second's worth, steady while measuring memory).
        extra = ["--max-failures", "1000000000", "--failure-window", "1"]
        return Instance(CliServerProcess("cli-refusals", folder, secured=True, extra=extra), wrong_key_call())
    return Instance(ServerProcess(variant, key, folder), tool_call(auth_headers(variant, key)))


def start_servers(folder: Path, key: str, processes: int) -> Pool:
    """Every server, POOLED ones `processes` times, started in a shuffled order (no copy is always started first)."""
    plan = [(v, copy) for v in POOLED for copy in range(processes)] + [(v, 0) for v in (CLI_REFUSALS, *VARIANTS)]
    random.shuffle(plan)
    pool: Pool = {}
    try:
        for variant, copy in plan:
            pool.setdefault(variant, []).append(start_instance(variant, copy, folder, key))
    except BaseException:
        stop_servers(pool)
        raise
    return pool


def stop_servers(pool: Pool) -> None:
    for instances in pool.values():
        for instance in instances:
            instance.server.stop()


def run(quick: bool = False) -> Section:
    settings = QUICK if quick else FULL
    key = generate_key()
    section = Section(NAME, "1. Auth overhead over real HTTP (uvicorn on loopback)")
    with tempfile.TemporaryDirectory(prefix="bench-http-") as name:
        pool = start_servers(Path(name), key, settings.processes)
        try:
            check_auth_is_on(pool)
            latency = measure_latency(pool, settings)
            load = Load(pool)
            try:
                everything = [*TOOL_VARIANTS, CLI_REFUSALS]
                warm, timed = Rounds(pool), Rounds(pool)
                # open the connections and warm up, every copy
                interleaved(everything, settings.processes, lambda v: load.slice(v, 0.2, warm))
                throughput = interleaved(
                    everything, settings.throughput_rounds, lambda v: load.slice(v, settings.slice_seconds, timed)
                )
                memory = measure_memory(load, pool[CLI_REFUSALS][0].server, settings)
                reconnects = {v: load.reconnects(v) for v in everything}
            finally:
                load.close()
        finally:
            stop_servers(pool)

    latency_ratios = {secured: paired_ratio(latency[secured], latency[reference]) for secured, reference in PAIRS}
    section.tables.append(latency_table(latency, latency_ratios, settings))
    section.tables.append(throughput_table(throughput, settings))
    section.tables.append(refusal_table(throughput, memory))
    section.tables.append(thread_table(throughput, settings))
    section.notes += [
        "Each server runs in its own process (uvicorn, one worker); the benchmark process is the client. "
        "Requests are sessionless (protocol 2026-07-28). Latency uses one keep-alive httpx client per server; "
        f"throughput uses {CONCURRENCY} raw keep-alive connections per server (`benchmarks/raw_load.py`).",
        "`serve` is started exactly as the README says (`python -m lesson_code serve --keys-file F --audit-log F`, "
        "a key from `keys new`); the in-memory variants are `create_secured_app` / `create_open_app_for_threat_model` "
        "under uvicorn. The open servers keep no audit log.",
        f"Processes: {', '.join(LABELS[v] for v in POOLED)} each run as {settings.processes} "
        f"process{'es' if settings.processes > 1 else ''} (started in a shuffled order); round r of the latency "
        f"batches and of the throughput slices uses copy r % {settings.processes}, so each of their figures pools "
        f"{settings.processes} process{'es' if settings.processes > 1 else ''}. Every other server is one process. "
        "Two identical processes differ by a few % in CPU per request for a whole run; see the instruction counts "
        "for a figure that does not. A copy waits about 10 s between its slices, longer than uvicorn's 5 s "
        "keep-alive timeout, so its 8 connections are reopened before each slice (the reconnects below), "
        "by one untimed request on each connection that every slice of every server starts with.",
        "Server CPU per request comes from /proc (10 ms ticks, summed over all slices). The split by thread comes "
        "from each thread's schedstat (ns); a thread that exits during a slice is missing from the split only.",
        "Connections the server closed and the load generator reopened: "
        + ", ".join(f"{LABELS[v]} {n}" for v, n in reconnects.items())
        + ".",
    ]
    add_targets(section, latency_ratios, throughput, memory)
    return section


@dataclass
class Memory:
    before_kib: int
    after_kib: int
    refusals: int

    @property
    def per_thousand_kib(self) -> float:
        return (self.after_kib - self.before_kib) / (self.refusals / 1000)


def measure_memory(load: Load, server: Server, settings: Settings) -> Memory:
    """RSS growth of the refusing `serve` per 1,000 refusals, after a warm-up (it has refused thousands already)."""
    assert isinstance(server, CliServerProcess)
    load.send(CLI_REFUSALS, settings.memory_warmup)
    before = server.rss_kib()
    load.send(CLI_REFUSALS, settings.memory_refusals)
    time.sleep(1.2)  # the throttle's 1 s window passes: the next failures let the old timestamps expire
    load.send(CLI_REFUSALS, CONCURRENCY)
    return Memory(before, server.rss_kib(), settings.memory_refusals)


def latency_table(latency: dict[str, list[list[float]]], ratios: dict[str, float], settings: Settings) -> Table:
    table = Table(
        f"Latency of one `tools/call` ({TOOL}), one request at a time "
        f"({settings.latency_rounds} interleaved rounds × {settings.latency_batch} requests per server)",
        ["server", "median", "p90", "vs its open server (median of per-round ratios)"],
    )
    for variant in TOOL_VARIANTS:
        times = [t for chunk in latency[variant] for t in chunk]
        table.rows.append(
            [
                LABELS[variant],
                f"{median(times) * 1e3:.3f} ms",
                f"{percentile(times, 0.9) * 1e3:.3f} ms",
                f"{ratios[variant]:.3f}×" if variant in ratios else "1.000× (reference)",
            ]
        )
    return table


def thread_table(throughput: dict[str, list[Slice]], settings: Settings) -> Table:
    table = Table(
        "Server CPU per request by thread (throughput slices; main thread = uvicorn's event loop)",
        ["server", "main thread", "other threads", "sum of threads", "process total (/proc stat)", "other share"],
    )
    for variant in [*TOOL_VARIANTS, CLI_REFUSALS]:
        slices = throughput[variant]
        requests = max(1, sum(s.requests for s in slices))
        main, others = sum(s.main_cpu for s in slices) / requests, sum(s.other_cpu for s in slices) / requests
        table.rows.append(
            [
                LABELS[variant],
                f"{main * 1e6:,.0f} µs",
                f"{others * 1e6:,.0f} µs",
                f"{(main + others) * 1e6:,.0f} µs",
                f"{cpu_per_request(slices) * 1e6:,.0f} µs",
                f"{others / (main + others):.0%}" if main + others else "n/a",
            ]
        )
    return table


def reference_of(variant: str) -> str | None:
    return next((reference for secured, reference in PAIRS if secured == variant), None)


def throughput_table(throughput: dict[str, list[Slice]], settings: Settings) -> Table:
    table = Table(
        f"Throughput with {CONCURRENCY} concurrent connections "
        f"({settings.throughput_rounds} interleaved slices of {settings.slice_seconds} s per server)",
        [
            "server",
            "median requests/s",
            "vs its open server (median of per-round ratios)",
            "server CPU per request",
            "vs its open server",
            "load generator CPU",
        ],
    )
    for variant in TOOL_VARIANTS:
        slices = throughput[variant]
        rate, cpu = median([s.rate for s in slices]), cpu_per_request(slices)
        reference = reference_of(variant)
        table.rows.append(
            [
                LABELS[variant],
                f"{rate:,.0f}",
                f"{paired_rate(slices, throughput[reference]):.3f}×" if reference else "reference",
                f"{cpu * 1e6:,.0f} µs",
                ratio(cpu, cpu_per_request(throughput[reference])) if reference else "reference",
                f"{load_share(slices):.0%} of a core",
            ]
        )
    return table


def refusal_table(throughput: dict[str, list[Slice]], memory: Memory) -> Table:
    refusals, calls = throughput[CLI_REFUSALS], throughput[CLI_SECURED]
    table = Table(
        f"Refusals: wrong key, 401, {CONCURRENCY} connections, against `serve` as shipped answering tool calls",
        ["figure", "refusals (401)", "tool calls (200)", "ratio (rates: median of per-round ratios)"],
    )
    table.rows.append(
        [
            "server CPU per request",
            f"{cpu_per_request(refusals) * 1e6:,.0f} µs",
            f"{cpu_per_request(calls) * 1e6:,.0f} µs",
            ratio(cpu_per_request(refusals), cpu_per_request(calls)),
        ]
    )
    table.rows.append(
        [
            "median requests/s",
            f"{median([s.rate for s in refusals]):,.0f}",
            f"{median([s.rate for s in calls]):,.0f}",
            f"{paired_rate(refusals, calls):.3f}×",
        ]
    )
    table.rows.append(
        ["load generator CPU", f"{load_share(refusals):.0%} of a core", f"{load_share(calls):.0%} of a core", ""]
    )
    table.rows.append(
        [
            f"memory per 1,000 refusals (RSS, after {memory.refusals:,} more)",
            f"{memory.per_thousand_kib:+.1f} KiB",
            "",
            f"{memory.before_kib / 1024:.1f} → {memory.after_kib / 1024:.1f} MiB",
        ]
    )
    return table


def add_targets(
    section: Section, latency: dict[str, float], throughput: dict[str, list[Slice]], memory: Memory
) -> None:
    control_cpu = cpu_per_request(throughput[CLI_OPEN_AGAIN]) / cpu_per_request(throughput[CLI_OPEN])
    control_rate = paired_rate(throughput[CLI_OPEN_AGAIN], throughput[CLI_OPEN])
    control = "A/A control, an identical open server: {:.3f}×"
    for secured, reference in PAIRS[:2]:
        what = LABELS[secured]
        cpu = cpu_per_request(throughput[secured]) / cpu_per_request(throughput[reference])
        rate = paired_rate(throughput[secured], throughput[reference])
        section.targets += [
            Target(
                f"{what}: latency at most {LATENCY_TARGET}× open",
                latency[secured] <= LATENCY_TARGET,
                f"{latency[secured]:.3f}×; " + control.format(latency[CLI_OPEN_AGAIN]),
            ),
            Target(
                f"{what}: server CPU per request at most {LATENCY_TARGET}× open",
                cpu <= LATENCY_TARGET,
                f"{cpu:.3f}×; " + control.format(control_cpu),
            ),
            Target(
                f"{what}: throughput with {CONCURRENCY} clients at least {THROUGHPUT_TARGET}× open",
                rate >= THROUGHPUT_TARGET,
                f"{rate:.3f}×; " + control.format(control_rate),
            ),
        ]
    refusal_cpu = cpu_per_request(throughput[CLI_REFUSALS]) / cpu_per_request(throughput[CLI_SECURED])
    refusal_rate = paired_rate(throughput[CLI_REFUSALS], throughput[CLI_SECURED])
    section.targets += [
        Target(
            f"401 server CPU vs a tool call's at most {REFUSAL_CPU_TARGET}",
            refusal_cpu <= REFUSAL_CPU_TARGET,
            f"{refusal_cpu:.3f}",
        ),
        Target(
            f"refusals/s with {CONCURRENCY} clients vs tool calls/s at least {REFUSAL_RATE_TARGET:g}×",
            refusal_rate >= REFUSAL_RATE_TARGET,
            f"{refusal_rate:.2f}×",
        ),
        Target(
            f"memory per 1,000 refusals (RSS of `serve`, after warm-up) under {MEMORY_TARGET_KIB:g} KiB",
            memory.per_thousand_kib < MEMORY_TARGET_KIB,
            f"{memory.per_thousand_kib:+.1f} KiB",
        ),
    ]


def paired_ratio(rounds: list[list[float]], reference_rounds: list[list[float]]) -> float:
    """Median over rounds of (this round's median / the reference's median in the same round).

    Pairing by round cancels drift in the machine's speed: both medians of a
    pair were taken within a fraction of a second of each other.
    """
    return median([median(a) / median(b) for a, b in zip(rounds, reference_rounds, strict=True)])


def paired_rate(slices: list[Slice], reference: list[Slice]) -> float:
    """Median over rounds of (this slice's requests/s / the reference's in the same round): drift cancels."""
    return median([a.rate / b.rate for a, b in zip(slices, reference, strict=True)])


def cpu_per_request(slices: list[Slice]) -> float:
    return sum(s.server_cpu for s in slices) / max(1, sum(s.requests for s in slices))


def load_share(slices: list[Slice]) -> float:
    return sum(s.client_cpu for s in slices) / sum(s.seconds for s in slices)
