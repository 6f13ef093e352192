"""Benchmark 1: what authentication costs over real HTTP, against the open server.

One `tools/call` (list_items, a read: no SQLite write to dominate) is sent to
three uvicorn servers on loopback (see `servers.py`): open, our API-key
middleware, and the SDK's own Bearer path. Two figures, both interleaved:

* latency: one request at a time, round-robin in small batches, each request
  timed on its own; median and p90, and the ratio of medians against open;
* throughput: 8 concurrent clients for a fixed short slice per variant,
  round-robin over many slices; median requests/s per slice, plus the server's
  own CPU time per request (from /proc), which stays meaningful even when the
  load generator on the same two cores is the bottleneck.

Each variant has one persistent httpx client (keep-alive, TCP_NODELAY), so we
time the server and not TCP connection setup.
"""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from benchmarks.common import Section, Table, Target, interleaved, median, percentile, ratio
from benchmarks.servers import VARIANTS, ServerProcess, auth_headers
from lesson_code.keys import generate_key
from lesson_code.raw_requests import mcp_body, mcp_headers

NAME: Final = "http"
TOOL: Final = "list_items"
CONCURRENCY: Final = 8
OVERHEAD_TARGET: Final = 1.05
NODELAY: Final = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
LABELS: Final = {
    "open": "open (no auth)",
    "api-key": "API-key middleware (ours, audit in memory)",
    "sdk-bearer": "SDK Bearer (`token_verifier` + `AuthSettings`)",
}


@dataclass(frozen=True)
class Settings:
    warmup: int
    latency_rounds: int
    latency_batch: int
    throughput_rounds: int
    slice_seconds: float


FULL = Settings(warmup=100, latency_rounds=100, latency_batch=8, throughput_rounds=8, slice_seconds=0.5)
QUICK = Settings(warmup=30, latency_rounds=15, latency_batch=5, throughput_rounds=3, slice_seconds=0.4)


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


def request_for(variant: str, key: str) -> tuple[bytes, dict[str, str]]:
    """The body (encoded once, so the client does no JSON work per request) and headers for `variant`."""
    body = json.dumps(mcp_body("tools/call", {"name": TOOL, "arguments": {}})).encode()
    return body, {**mcp_headers("tools/call", tool=TOOL), **auth_headers(variant, key)}


def check_response(variant: str, response: httpx.Response) -> None:
    if response.status_code != 200 or '"result"' not in response.text:
        raise RuntimeError(f"{variant}: unexpected answer {response.status_code}: {response.text[:200]}")


def check_auth_is_on(servers: dict[str, ServerProcess], key: str) -> None:
    """A request without the key must get 401 from both secured variants: we must time real checks."""
    body, headers = request_for("open", key)
    for variant in ("api-key", "sdk-bearer"):
        status = httpx.post(servers[variant].url, content=body, headers=headers).status_code
        if status != 401:
            raise RuntimeError(f"{variant}: a request without a key got {status}, expected 401")


def measure_latency(
    servers: dict[str, ServerProcess], requests: dict[str, tuple[bytes, dict[str, str]]], settings: Settings
) -> dict[str, list[list[float]]]:
    """Per-request round-trip times in seconds, one list per round, interleaved across variants in small batches."""
    clients = {v: httpx.Client(transport=httpx.HTTPTransport(socket_options=NODELAY)) for v in servers}
    try:

        def batch(variant: str, count: int) -> list[float]:
            client, url, (body, headers) = clients[variant], servers[variant].url, requests[variant]
            times = []
            for _ in range(count):
                start = time.perf_counter()
                response = client.post(url, content=body, headers=headers)
                times.append(time.perf_counter() - start)
                check_response(variant, response)
            return times

        interleaved(list(servers), 1, lambda v: batch(v, settings.warmup))
        return interleaved(list(servers), settings.latency_rounds, lambda v: batch(v, settings.latency_batch))
    finally:
        for client in clients.values():
            client.close()


def measure_throughput(
    servers: dict[str, ServerProcess], requests: dict[str, tuple[bytes, dict[str, str]]], settings: Settings
) -> dict[str, list[Slice]]:
    """Requests/s with `CONCURRENCY` clients over short slices, interleaved across variants."""
    loop = asyncio.new_event_loop()
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)

    async def make_clients() -> dict[str, httpx.AsyncClient]:
        return {
            v: httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(socket_options=NODELAY, limits=limits))
            for v in servers
        }

    clients = loop.run_until_complete(make_clients())

    async def run_slice(variant: str, seconds: float) -> Slice:
        client, server, (body, headers) = clients[variant], servers[variant], requests[variant]
        done = 0

        async def worker(deadline: float) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                response = await client.post(server.url, content=body, headers=headers)
                check_response(variant, response)
                done += 1

        cpu_server, cpu_client, start = server.cpu_seconds(), time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(start + seconds) for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - start
        return Slice(done, elapsed, server.cpu_seconds() - cpu_server, time.process_time() - cpu_client)

    try:
        interleaved(list(servers), 1, lambda v: loop.run_until_complete(run_slice(v, 0.2)))  # open the connections
        return interleaved(
            list(servers),
            settings.throughput_rounds,
            lambda v: loop.run_until_complete(run_slice(v, settings.slice_seconds)),
        )
    finally:
        for client in clients.values():
            loop.run_until_complete(client.aclose())
        loop.close()


def run(quick: bool = False) -> Section:
    settings = QUICK if quick else FULL
    key = generate_key()
    section = Section(NAME, "1. Auth overhead over real HTTP (uvicorn on loopback)")
    with tempfile.TemporaryDirectory(prefix="bench-http-") as folder:
        servers: dict[str, ServerProcess] = {}
        try:
            for variant in VARIANTS:
                servers[variant] = ServerProcess(variant, key, Path(folder))
            check_auth_is_on(servers, key)
            requests = {variant: request_for(variant, key) for variant in VARIANTS}
            latency = measure_latency(servers, requests, settings)
            throughput = measure_throughput(servers, requests, settings)
        finally:
            for server in servers.values():
                server.stop()

    table = Table(
        f"Latency of one `tools/call` ({TOOL}), one request at a time "
        f"({settings.latency_rounds} interleaved rounds × {settings.latency_batch} requests per variant)",
        ["server", "median", "p90", "vs open (median of per-round ratios)"],
    )
    overheads = {variant: paired_ratio(latency[variant], latency["open"]) for variant in VARIANTS}
    for variant in VARIANTS:
        times = [t for chunk in latency[variant] for t in chunk]
        table.rows.append(
            [
                LABELS[variant],
                f"{median(times) * 1e3:.3f} ms",
                f"{percentile(times, 0.9) * 1e3:.3f} ms",
                f"{overheads[variant]:.3f}×",
            ]
        )
    section.tables.append(table)

    base_rate = median([s.rate for s in throughput["open"]])
    table = Table(
        f"Throughput with {CONCURRENCY} concurrent clients "
        f"({settings.throughput_rounds} interleaved slices of {settings.slice_seconds} s per variant)",
        ["server", "median requests/s", "vs open", "server CPU per request", "vs open", "load generator CPU"],
    )
    base_cpu = _cpu_per_request(throughput["open"])
    for variant in VARIANTS:
        slices = throughput[variant]
        rate, cpu = median([s.rate for s in slices]), _cpu_per_request(slices)
        client_share = sum(s.client_cpu for s in slices) / sum(s.seconds for s in slices)
        table.rows.append(
            [
                LABELS[variant],
                f"{rate:,.0f}",
                ratio(rate, base_rate),
                f"{cpu * 1e6:,.0f} µs",
                ratio(cpu, base_cpu),
                f"{client_share:.0%} of a core",
            ]
        )
    section.tables.append(table)

    section.notes += [
        "Each server runs in its own process (uvicorn, one worker); the benchmark process is the client, with "
        "one keep-alive httpx client per server. The request is sessionless (protocol 2026-07-28).",
        "Our variant is `create_secured_app` as shipped: the audit log is part of it and records in memory "
        "(the default), one `auth` entry and one `tool_call` entry per request. The open server keeps no audit.",
        "Server CPU per request comes from /proc (10 ms ticks, summed over all slices); when the load generator "
        "sits near 100% of a core, requests/s is client-bound and the CPU column is the better comparison.",
    ]
    overhead = overheads["api-key"]
    section.targets.append(
        Target(
            f"API-key middleware latency at most {OVERHEAD_TARGET}× the open server's",
            overhead <= OVERHEAD_TARGET,
            f"{overhead:.3f}×",
        )
    )
    return section


def paired_ratio(rounds: list[list[float]], reference_rounds: list[list[float]]) -> float:
    """Median over rounds of (this round's median / the reference's median in the same round).

    Pairing by round cancels drift in the machine's speed: both medians of a
    pair were taken within a fraction of a second of each other.
    """
    return median([median(a) / median(b) for a, b in zip(rounds, reference_rounds, strict=True)])


def _cpu_per_request(slices: list[Slice]) -> float:
    return sum(s.server_cpu for s in slices) / max(1, sum(s.requests for s in slices))
