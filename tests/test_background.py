"""The background server: free ports, readiness, clear port-in-use errors, replacement, clean stop."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest
from starlette.applications import Starlette
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
