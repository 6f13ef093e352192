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
"""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import httpx

from benchmarks.common import Section, Table, Target, interleaved, median, percentile, ratio
from benchmarks.raw_load import Connection, encode_request, run_for, send_count
from benchmarks.servers import HOST, VARIANTS, CliServerProcess, ServerProcess, auth_headers
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


FULL = Settings(
    warmup=100,
    latency_rounds=100,
    latency_batch=8,
    throughput_rounds=12,
    slice_seconds=0.5,
    memory_warmup=3_000,
    memory_refusals=12_000,
)
QUICK = Settings(
    warmup=30,
    latency_rounds=15,
    latency_batch=5,
    throughput_rounds=3,
    slice_seconds=0.4,
    memory_warmup=1_000,
    memory_refusals=3_000,
)


@dataclass
class Slice:
    """One throughput slice: requests completed, wall seconds, and CPU seconds spent by server and client."""

    requests: int
    seconds: float
    server_cpu: float
    client_cpu: float

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


def wrong_key_call() -> Request:
    request = tool_call({"x-api-key": generate_key()})
    return Request(request.body, request.headers, 401, b'"error"')


def check_response(variant: str, request: Request, status: int, text: bytes) -> None:
    if status != request.status or request.marker not in text:
        raise RuntimeError(f"{variant}: unexpected answer {status}: {text[:200]!r}")


def check_auth_is_on(servers: dict[str, Server]) -> None:
    """A request without a key must get 401 from every secured variant: we must time real checks."""
    anonymous = tool_call({})
    for variant in (CLI_SECURED, CLI_REFUSALS, "api-key", "sdk-bearer"):
        status = httpx.post(servers[variant].url, content=anonymous.body, headers=anonymous.headers).status_code
        if status != 401:
            raise RuntimeError(f"{variant}: a request without a key got {status}, expected 401")


def measure_latency(
    servers: dict[str, Server], requests: dict[str, Request], settings: Settings
) -> dict[str, list[list[float]]]:
    """Per-request round-trip times in seconds, one list per round, interleaved across variants in small batches."""
    clients = {v: httpx.Client(transport=httpx.HTTPTransport(socket_options=NODELAY)) for v in TOOL_VARIANTS}
    try:

        def batch(variant: str, count: int) -> list[float]:
            client, url, request = clients[variant], servers[variant].url, requests[variant]
            times = []
            for _ in range(count):
                start = time.perf_counter()
                response = client.post(url, content=request.body, headers=request.headers)
                times.append(time.perf_counter() - start)
                check_response(variant, request, response.status_code, response.content)
            return times

        interleaved(list(TOOL_VARIANTS), 1, lambda v: batch(v, settings.warmup))
        return interleaved(list(TOOL_VARIANTS), settings.latency_rounds, lambda v: batch(v, settings.latency_batch))
    finally:
        for client in clients.values():
            client.close()


class Load:
    """`CONCURRENCY` keep-alive connections per variant, on one event loop, for throughput and memory."""

    def __init__(self, servers: dict[str, Server], requests: dict[str, Request]) -> None:
        self.loop = asyncio.new_event_loop()
        self.servers, self.requests = servers, requests
        self.connections = {
            variant: [
                Connection(
                    HOST,
                    servers[variant].port,
                    encode_request(HOST, servers[variant].port, "/mcp", request.headers, request.body),
                )
                for _ in range(CONCURRENCY)
            ]
            for variant, request in requests.items()
        }

    def slice(self, variant: str, seconds: float) -> Slice:
        server, request = self.servers[variant], self.requests[variant]
        cpu_server, cpu_client, start = server.cpu_seconds(), time.process_time(), time.perf_counter()
        done = self.loop.run_until_complete(run_for(self.connections[variant], seconds, request.status, request.marker))
        elapsed = time.perf_counter() - start
        return Slice(done, elapsed, server.cpu_seconds() - cpu_server, time.process_time() - cpu_client)

    def send(self, variant: str, count: int) -> None:
        self.loop.run_until_complete(send_count(self.connections[variant], count, self.requests[variant].status))

    def reconnects(self, variant: str) -> int:
        return sum(c.reconnects for c in self.connections[variant])

    def close(self) -> None:
        for connections in self.connections.values():
            for connection in connections:
                self.loop.run_until_complete(connection.close())
        self.loop.close()


def start_servers(folder: Path, key: str) -> dict[str, Server]:
    servers: dict[str, Server] = {}
    try:
        servers[CLI_OPEN] = CliServerProcess("cli-open", folder, secured=False)
        servers[CLI_SECURED] = CliServerProcess("cli-secured", folder, secured=True)
        # Every request reaches the key check: the throttle counts failures but never answers 429 (its window is
        # 1 s so the timestamps it keeps are a second's worth, steady while measuring memory).
        servers[CLI_REFUSALS] = CliServerProcess(
            "cli-refusals", folder, secured=True, extra=["--max-failures", "1000000000", "--failure-window", "1"]
        )
        for variant in VARIANTS:
            servers[variant] = ServerProcess(variant, key, folder)
        servers[CLI_OPEN_AGAIN] = CliServerProcess("cli-open-again", folder, secured=False)
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers


def run(quick: bool = False) -> Section:
    settings = QUICK if quick else FULL
    key = generate_key()
    section = Section(NAME, "1. Auth overhead over real HTTP (uvicorn on loopback)")
    with tempfile.TemporaryDirectory(prefix="bench-http-") as name:
        servers = start_servers(Path(name), key)
        try:
            check_auth_is_on(servers)
            requests = {variant: tool_call(auth_headers(variant, key)) for variant in VARIANTS}
            cli_secured = servers[CLI_SECURED]
            assert isinstance(cli_secured, CliServerProcess)
            requests[CLI_OPEN] = requests[CLI_OPEN_AGAIN] = tool_call({})
            requests[CLI_SECURED] = tool_call({"x-api-key": cli_secured.key})
            requests[CLI_REFUSALS] = wrong_key_call()
            latency = measure_latency(servers, requests, settings)
            load = Load(servers, requests)
            try:
                everything = [*TOOL_VARIANTS, CLI_REFUSALS]
                interleaved(everything, 1, lambda v: load.slice(v, 0.2))  # open the connections, warm up
                throughput = interleaved(
                    everything, settings.throughput_rounds, lambda v: load.slice(v, settings.slice_seconds)
                )
                memory = measure_memory(load, servers[CLI_REFUSALS], settings)
                reconnects = {v: load.reconnects(v) for v in everything}
            finally:
                load.close()
        finally:
            for server in servers.values():
                server.stop()

    latency_ratios = {secured: paired_ratio(latency[secured], latency[reference]) for secured, reference in PAIRS}
    section.tables.append(latency_table(latency, latency_ratios, settings))
    section.tables.append(throughput_table(throughput, settings))
    section.tables.append(refusal_table(throughput, memory))
    section.notes += [
        "Each server runs in its own process (uvicorn, one worker); the benchmark process is the client. "
        "Requests are sessionless (protocol 2026-07-28). Latency uses one keep-alive httpx client per server; "
        f"throughput uses {CONCURRENCY} raw keep-alive connections per server (`benchmarks/raw_load.py`).",
        "`serve` is started exactly as the README says (`python -m lesson_code serve --keys-file F --audit-log F`, "
        "a key from `keys new`); the in-memory variants are `create_secured_app` / `create_open_app_for_threat_model` "
        "under uvicorn. The open servers keep no audit log.",
        "Server CPU per request comes from /proc (10 ms ticks, summed over all slices).",
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
