"""Sending one attack over a raw socket, so duplicate headers, raw bytes and odd targets go out as written."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import h11
from anyio.abc import ByteStream

from lesson_code.attacks.catalogue import Attack, AttackContext
from lesson_code.attacks.constants import CONTINUE_WAIT_SECONDS, MAX_BODY_KEPT, SEND_CHUNK, STREAM_GRACE_SECONDS, Header
from lesson_code.sse import json_message

# --- sending one request over a raw socket -------------------------------------------------------------


@dataclass(frozen=True)
class RawResponse:
    """What the server answered: status (None if it answered nothing), headers, body (maybe cut short)."""

    status: int | None
    headers: tuple[Header, ...] = ()
    body: bytes = b""
    complete: bool = True
    error: str | None = None

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), decoded as Latin-1."""
        wanted = name.lower().encode()
        return next((v.decode("latin-1") for n, v in self.headers if n.lower() == wanted), None)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The JSON body, or the message an event stream carries (`lesson_code.sse`); None if neither parses."""
        event_stream = (self.header("content-type") or "").startswith("text/event-stream")
        return json_message(self.text, event_stream=event_stream)

    def raw(self) -> bytes:
        """Headers and body together, for searching (e.g. for an echoed key)."""
        return b"\n".join(n + b": " + v for n, v in self.headers) + b"\n\n" + self.body


async def send_raw(
    url: str, payload: bytes, *, method: str = "POST", timeout: float = 5.0, ssl_context: ssl.SSLContext | None = None
) -> RawResponse:
    """Send `payload` (a complete HTTP/1.1 request) to `url`'s host and read one response.

    The request goes out byte for byte, which is the point: no client library would send
    most attacks. The response is parsed with h11 and read while the request is still
    being sent, and an endless event stream is read only for a moment.

    A request with `Expect: 100-continue` sends its head first and its body only after
    the server asks for it (or after a second, as curl does). That is how big uploads
    are sent, and it matters here: a server that refuses before reading a body closes
    a connection with unread data, the kernel answers with a reset, and the reset can
    destroy the refusal before it is read.
    """
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    parser = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
    # h11 frames a response by the request's method (HEAD and CONNECT differ), so tell it, discarding its bytes.
    parser.send(h11.Request(method=method.encode(), target=b"/", headers=[(b"host", b"x")]))
    parser.send(h11.EndOfMessage())
    head, separator, request_body = payload.partition(b"\r\n\r\n")
    waits_for_continue = any(
        line.lower().replace(b" ", b"") == b"expect:100-continue" for line in head.split(b"\r\n")[1:]
    )
    proceed, answered = anyio.Event(), anyio.Event()

    status: int | None = None
    headers: tuple[Header, ...] = ()
    body = bytearray()
    complete = False
    error: str | None = None
    with anyio.move_on_after(timeout) as overall:
        try:
            stream: ByteStream
            if tls:  # tls_standard_compatible=False: a server may hang up without a TLS close_notify
                stream = await anyio.connect_tcp(
                    host, port, tls=True, ssl_context=ssl_context, tls_standard_compatible=False
                )
            else:
                stream = await anyio.connect_tcp(host, port)
        except OSError as exc:
            return RawResponse(None, error=f"cannot connect to {host}:{port}: {exc}", complete=False)
        async with stream, anyio.create_task_group() as group:

            async def send_all() -> None:
                data = payload
                try:
                    if waits_for_continue:
                        await stream.send(head + separator)
                        with anyio.move_on_after(CONTINUE_WAIT_SECONDS):
                            await proceed.wait()
                        if answered.is_set():
                            return  # refused before the body: it is never sent
                        data = request_body
                    for start in range(0, len(data), SEND_CHUNK):
                        await stream.send(data[start : start + SEND_CHUNK])
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    pass  # the server answered and hung up before reading everything: that is allowed

            group.start_soon(send_all)
            body_deadline = anyio.CancelScope()
            with body_deadline:
                while True:
                    try:
                        event = parser.next_event()
                    except h11.RemoteProtocolError as exc:
                        error = f"no complete answer: {exc}"
                        break
                    if event is h11.NEED_DATA:
                        try:
                            data = await stream.receive(SEND_CHUNK)
                        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                            data = b""
                        parser.receive_data(data)
                    elif isinstance(event, h11.InformationalResponse):
                        if event.status_code == 100:
                            proceed.set()
                    elif isinstance(event, h11.Response):
                        status = event.status_code
                        headers = tuple((bytes(n), bytes(v)) for n, v in event.headers.raw_items())
                        answered.set()
                        proceed.set()
                        if method == "GET" and any(
                            v.startswith(b"text/event-stream") for n, v in headers if n.lower() == b"content-type"
                        ):
                            body_deadline.deadline = anyio.current_time() + STREAM_GRACE_SECONDS
                    elif isinstance(event, h11.Data):
                        body.extend(event.data[: max(0, MAX_BODY_KEPT - len(body))])
                    elif isinstance(event, h11.EndOfMessage):
                        complete = True
                        break
                    else:  # ConnectionClosed (or PAUSED, which cannot come before the end of the message)
                        if status is None:
                            error = "the server closed the connection without answering"
                        break
            group.cancel_scope.cancel()
    if overall.cancelled_caught and status is None:
        error = f"no answer within {timeout:g} s"
    return RawResponse(status, headers, bytes(body), complete, error)


async def send_attack(
    attack: Attack,
    url: str,
    context: AttackContext,
    *,
    timeout: float = 5.0,
    ssl_context: ssl.SSLContext | None = None,
) -> RawResponse:
    """Send one attack to the server at `url` (only its scheme, host and port are used)."""
    return await send_raw(url, attack.render(context), method=attack.method, timeout=timeout, ssl_context=ssl_context)
