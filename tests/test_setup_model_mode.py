"""Which model the course uses, and the doctor's word on it: offline switch, unreachable or refusing endpoints.

The endpoints are local: a closed port, and small Starlette apps on port 0 that answer like
an OpenAI-compatible API (401 for a refused key, 200 for a model list).
"""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lesson_code.background import BackgroundServer
from lesson_code.exercises import doctor
from lesson_code.model_mode import offline_reason, probe_model_endpoint

KEY = "sk-test-not-a-real-key-0123456789"
_names = itertools.count()


def _endpoint(status: int) -> Starlette:
    seen: list[str] = []

    async def models(request: Request) -> JSONResponse:
        seen.append(request.headers.get("authorization", ""))
        if status == 200:
            return JSONResponse({"object": "list", "data": [{"id": "gpt-4.1-mini", "object": "model"}]})
        return JSONResponse({"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}, status)

    app = Starlette(routes=[Route("/v1/models", models)])
    app.state.seen = seen
    return app


@pytest.fixture
def serve() -> Iterator[Callable[[int], tuple[str, list[str]]]]:
    running: list[BackgroundServer] = []

    def start(status: int) -> tuple[str, list[str]]:
        app = _endpoint(status)
        server = BackgroundServer(app, name=f"test-setup-model-{next(_names)}").start()
        running.append(server)
        return server.url + "/v1", app.state.seen

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def closed_endpoint() -> Iterator[str]:
    with socket.socket() as sock:  # bound, not listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_course_offline_forces_offline_even_with_a_key(value: str) -> None:
    assert offline_reason({"COURSE_OFFLINE": value, "OPENAI_API_KEY": KEY}) == "COURSE_OFFLINE=1"
    row = doctor.agent_row({"COURSE_OFFLINE": value, "OPENAI_API_KEY": KEY})
    assert row.ok and row.detail.startswith("offline: COURSE_OFFLINE=1 is set")


def test_without_a_key_the_course_is_offline_and_asks_nobody() -> None:
    assert offline_reason({"COURSE_OFFLINE": "0"}) == "no OPENAI_API_KEY"
    assert offline_reason({"OPENAI_API_KEY": "  "}) == "no OPENAI_API_KEY"
    assert offline_reason({"OPENAI_API_KEY": KEY}) is None
    row = doctor.agent_row({})
    assert row.ok and row.detail.startswith("offline: OPENAI_API_KEY is not set")


def test_the_doctor_says_online_when_the_endpoint_accepts_the_key(
    serve: Callable[[int], tuple[str, list[str]]],
) -> None:
    base_url, seen = serve(200)
    row = doctor.agent_row({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base_url})
    assert row.ok and row.detail == "online: OPENAI_API_KEY is set and the model endpoint accepts it"
    assert seen == [f"Bearer {KEY}"]


def test_the_doctor_flags_an_endpoint_that_refuses_the_key(serve: Callable[[int], tuple[str, list[str]]]) -> None:
    base_url, _ = serve(401)
    row = doctor.agent_row({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base_url})
    assert not row.ok
    assert row.detail == (
        f"online, but {base_url} refused OPENAI_API_KEY (401): fix the key or network, "
        "or set COURSE_OFFLINE=1 to work offline, and restart"
    )
    assert KEY not in row.detail


def test_the_doctor_flags_an_unreachable_endpoint_quickly(closed_endpoint: str) -> None:
    started = time.monotonic()
    row = doctor.agent_row({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": closed_endpoint})
    assert time.monotonic() - started < 5
    assert not row.ok
    assert row.detail.startswith(f"online, but {closed_endpoint} cannot be reached (ConnectError)")
    assert "COURSE_OFFLINE=1" in row.detail


def test_a_silent_endpoint_times_out_within_the_probe_timeout() -> None:
    with socket.socket() as sock:  # listening, never accepting: the request waits for an answer
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        started = time.monotonic()
        problem = probe_model_endpoint({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base_url}, timeout=0.5)
        assert time.monotonic() - started < 3
    assert problem == f"{base_url} did not answer within 0.5 s"
