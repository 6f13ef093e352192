"""The background server: free ports, readiness, clear port-in-use errors, replacement, clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import socket
import threading
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lesson_code.background import BackgroundServer, PortInUseError, free_port, serve_in_background


def tiny_app() -> Starlette:
    return Starlette(routes=[Route("/health", lambda request: JSONResponse({"status": "ok"}))])


def test_serves_on_a_free_port_and_stops_cleanly():
    with BackgroundServer(tiny_app(), name="t-basic") as server:
        assert server.port > 0 and server.running
        assert httpx.get(server.url + "/health").json() == {"status": "ok"}
        port = server.port
    assert not server.running
    with socket.socket() as probe:  # the port is released
        probe.bind(("127.0.0.1", port))


def test_a_taken_port_gives_one_clear_error():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is already in use"):
            BackgroundServer(tiny_app(), port=port, name="t-taken").start()


def test_rerunning_a_cell_replaces_the_previous_server_on_the_same_port():
    port = free_port()
    first = serve_in_background(tiny_app(), name="t-rerun", port=port)
    second = serve_in_background(tiny_app(), name="t-rerun", port=port)
    try:
        assert not first.running and second.running
        assert httpx.get(second.url + "/health").status_code == 200
        assert sum(t.name == "uvicorn-t-rerun" for t in threading.enumerate()) == 1
    finally:
        second.stop()


def test_stop_is_idempotent_and_releases_the_name_and_the_port():
    server = serve_in_background(tiny_app(), name="t-stop")
    port = server.port
    server.stop()
    server.stop()
    assert not server.running
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
    again = serve_in_background(tiny_app(), name="t-stop")  # the name is free: nothing to replace
    try:
        assert again.running and not server.running
    finally:
        again.stop()


def test_an_ipv6_host_in_brackets_is_accepted():
    with BackgroundServer(tiny_app(), host="[::1]", name="t-v6") as server:
        assert server.url.startswith("http://[::1]:")
        assert httpx.get(server.url + "/health").status_code == 200


def recording_app(events: list[str], request_started: threading.Event | None = None) -> Starlette:
    """/health, /slow (answers after 0.3 s), and a lifespan that records its start-up and shutdown."""

    async def slow(request: Request) -> JSONResponse:
        if request_started is not None:
            request_started.set()
        await asyncio.sleep(0.3)
        events.append("slow answered")
        return JSONResponse({"slow": "done"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        await asyncio.sleep(0.05)  # a shutdown that takes a moment, like flushing a log
        events.append("shutdown")

    routes = [Route("/health", lambda request: JSONResponse({"status": "ok"})), Route("/slow", slow)]
    return Starlette(routes=routes, lifespan=lifespan)


@pytest.mark.parametrize("client_hung_up", [True, False], ids=["client-closed", "keep-alive-open"])
def test_stop_runs_the_lifespan_shutdown_before_returning(client_hung_up: bool) -> None:
    events: list[str] = []
    server = BackgroundServer(recording_app(events), name="t-lifespan").start()
    client = httpx.Client()
    try:
        assert client.get(server.url + "/health").status_code == 200
        if client_hung_up:
            client.close()
        server.stop()
        assert events == ["startup", "shutdown"]
        assert not server.running
    finally:
        client.close()
        server.stop()


def test_stop_lets_a_request_in_flight_finish() -> None:
    events: list[str] = []
    started = threading.Event()
    server = BackgroundServer(recording_app(events, started), name="t-in-flight").start()
    answers: list[httpx.Response] = []
    request = threading.Thread(target=lambda: answers.append(httpx.get(server.url + "/slow", timeout=10)))
    request.start()
    try:
        assert started.wait(10)
        server.stop()
        assert events == ["startup", "slow answered", "shutdown"]
    finally:
        request.join(10)
        server.stop()
    assert [(answer.status_code, answer.json()) for answer in answers] == [(200, {"slow": "done"})]


# The uvicorn code `lesson_code.background._PromptServer` re-implements or calls, as read when it was written
# (uvicorn 0.54.0). If a new uvicorn changes any of it, this fails: compare _PromptServer.main_loop and
# .shutdown with uvicorn's new ones, keep them step for step, then record the new digests here.
UVICORN_CODE_MIRRORED = {
    "main_loop": "afccb353a119333f",
    "shutdown": "9b33c50562992b1e",
    "_wait_tasks_to_complete": "17209be1e991445d",
    "on_tick": "60ea49b06ccf68c1",
}


def test_the_prompt_shutdown_still_mirrors_uvicorns_own() -> None:
    changed = [
        name
        for name, digest in UVICORN_CODE_MIRRORED.items()
        if hashlib.sha256(inspect.getsource(getattr(uvicorn.Server, name)).encode()).hexdigest()[:16] != digest
    ]
    assert not changed, f"uvicorn {uvicorn.__version__} changed Server.{changed}: re-check _PromptServer against it"
