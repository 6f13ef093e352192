"""A small HTTP/1.1 keep-alive load generator: requests encoded once, just enough response parsing.

Why not httpx for throughput: on this 2-core machine the load generator shares the CPU with
the server, and httpx spends a few hundred µs of CPU per request. A 401 costs the server
less than that, so with httpx "refusals per second" would measure the client. Here a request
is one `write` of prebuilt bytes and a response is read by its `content-length` (or its
chunks), tens of µs per request, so the figure is the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field


def encode_request(host: str, port: int, path: str, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"host: {host}:{port}", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Connection:
    """One keep-alive connection that sends the same request again and again; reopens if the server closes."""

    host: str
    port: int
    payload: bytes
    reconnects: int = 0
    _reader: asyncio.StreamReader | None = field(default=None, repr=False)
    _writer: asyncio.StreamWriter | None = field(default=None, repr=False)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    async def send(self) -> tuple[int, bytes]:
        """Send the request once; the response's status and body."""
        reader, writer = (self._reader, self._writer) if self._writer is not None else await self._open()
        assert reader is not None and writer is not None
        writer.write(self.payload)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):  # closed between requests: once more, fresh
            await self.close()
            self.reconnects += 1
            reader, writer = await self._open()
            writer.write(self.payload)
            head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            body = bytearray()
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            start = lower.find(b"content-length:")
            length = int(lower[start + 15 : lower.find(b"\r\n", start)]) if start >= 0 else 0
            body = bytearray(await reader.readexactly(length))
        if b"connection: close" in lower:
            await self.close()
        return status, bytes(body)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


async def run_for(connections: list[Connection], seconds: float, expect_status: int, expect_body: bytes) -> int:
    """Every connection sends its request back to back until `seconds` pass; the number of answers.

    Each answer must have `expect_status` and contain `expect_body`, or this raises: a benchmark
    that times errors instead of answers is worse than none.
    """
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker(connection: Connection) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            status, body = await connection.send()
            if status != expect_status or expect_body not in body:
                raise RuntimeError(f"expected {expect_status} with {expect_body!r}, got {status}: {body[:200]!r}")
            done += 1

    await asyncio.gather(*(worker(c) for c in connections))
    return done


async def send_count(connections: list[Connection], count: int, expect_status: int) -> None:
    """Send `count` requests in all, spread over the connections."""
    share, extra = divmod(count, len(connections))

    async def worker(connection: Connection, n: int) -> None:
        for _ in range(n):
            status, body = await connection.send()
            if status != expect_status:
                raise RuntimeError(f"expected {expect_status}, got {status}: {body[:200]!r}")

    await asyncio.gather(*(worker(c, share + (i < extra)) for i, c in enumerate(connections)))
