"""The local cluster end to end: real redis-server, real replicas (`serve --redis ... --stateless`), real nginx.

* `python -m lesson_code cluster` prints the front and Redis URLs, serves through the front, and on
  SIGTERM or Ctrl-C (SIGINT) stops every process it started: none is left behind.
* Both protocol generations work through the front whichever replica they reach: the Python Agents
  SDK agent (2026-07-28, sessionless) and 2025-11-25 clients (a hand-built one, and the official MCP
  Inspector CLI, which negotiates 2025-11-25 with the TypeScript SDK). The stateless replicas issue no
  `Mcp-Session-Id`, answer DELETE with 405, and ignore a session id a client makes up.
* A key created or revoked with `keys ... --redis URL` is served or refused through the front.

A missing nginx, redis-server or MCP Inspector fails these tests loudly; they never skip.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster_support import engines_fixture  # noqa: F401 (the autouse engines check)
from tests_support import ENV, PROJECT

from lesson_code.cluster import LocalCluster, process_stats
from lesson_code.nginx_config import FrontSettings
from lesson_code.raw_requests import list_tools
from lesson_code.sse import json_message

INSPECTOR = PROJECT / ".tools" / "node_modules" / ".bin" / "mcp-inspector"
LEGACY = "2025-11-25"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    workdir = tmp_path_factory.mktemp("cluster")
    settings = FrontSettings(access_log=True)  # the log names each request's protocol version
    with LocalCluster(3, workdir=workdir, front_settings=settings, name="test-cluster") as running:
        yield running


def keys_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lesson_code", "keys", *args],
        capture_output=True, text=True, env=ENV, timeout=60, cwd=tempfile.gettempdir(),
    )  # fmt: skip


def new_key(cluster: LocalCluster, name: str) -> str:
    created = keys_cli("new", "--name", name, "--redis", str(cluster.redis_url))
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    _until(lambda: all(_status(r.url, key) == 200 for r in cluster.replicas if r.running))
    return key


def _status(url: str, key: str) -> int:
    return httpx.post(url, timeout=10, **list_tools(api_key=key)).status_code


def _until(condition: Callable[[], bool], timeout: float = 10) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.01)
    return time.monotonic() - started


# --- clients of both protocol versions through the front --------------------------------------------


def test_the_python_agent_works_through_the_front(cluster: LocalCluster) -> None:
    from lesson_code.agent import run_shopping_query

    key = new_key(cluster, "agent")
    run = asyncio.run(run_shopping_query(cluster.front_url, key, "add 2 apples to my list, then show me the list"))
    assert [name for name, _ in run.tool_calls] == ["add_item", "list_items"]
    assert "2 × apples" in run.answer


def _legacy(
    url: str, key: str, message: dict[str, Any] | None, *, method: str = "POST", **headers: str
) -> httpx.Response:
    base = {
        "x-api-key": key,
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": LEGACY,
        **headers,
    }
    return httpx.request(method, url, headers=base, json=message, timeout=10)


def _result(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC message of a JSON or a one-event SSE response."""
    event_stream = response.headers["content-type"].startswith("text/event-stream")
    message = json_message(response.text, event_stream=event_stream)
    assert isinstance(message, dict), response.text[:200]
    return message


def test_a_2025_11_25_client_works_through_the_front_on_every_replica(cluster: LocalCluster) -> None:
    key = new_key(cluster, "legacy")
    hello = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}
    initialized = _legacy(cluster.front_url, key, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
    assert initialized.status_code == 200
    assert _result(initialized)["result"]["protocolVersion"] == LEGACY
    assert "mcp-session-id" not in initialized.headers  # stateless: no session to route back to one replica
    notified = _legacy(cluster.front_url, key, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert notified.status_code == 202

    added = _legacy(
        cluster.front_url,
        key,
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "add_item", "arguments": {"name": "tea"}},
        },
    )
    assert added.status_code == 200, added.text
    # One call per replica (round robin), each with a made-up session id, which stateless replicas ignore.
    for ident in (3, 4, 5):
        listed = _legacy(
            cluster.front_url,
            key,
            {"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": {"name": "list_items", "arguments": {}}},
            **{"mcp-session-id": "0123456789abcdef0123456789abcdef"},
        )
        assert listed.status_code == 200, listed.text
        assert {"name": "tea", "quantity": 1} in _result(listed)["result"]["structuredContent"]["items"]

    ended = _legacy(cluster.front_url, key, None, method="DELETE")
    assert ended.status_code == 405  # nothing to end
    refused = _legacy(cluster.front_url, "sk-mcp-wrong", {"jsonrpc": "2.0", "id": 9, "method": "tools/list"})
    assert refused.status_code == 401


def test_the_optional_get_stream_opens_through_the_front_and_carries_no_session(cluster: LocalCluster) -> None:
    """What the SDK's stateless mode does with the standalone GET stream (mcp 2.x): 200, an open, silent
    SSE stream, rather than 405. nginx passes it through unbuffered and ends it after proxy_read_timeout."""
    key = new_key(cluster, "stream")
    headers = {"x-api-key": key, "accept": "text/event-stream", "mcp-protocol-version": LEGACY}
    with httpx.stream("GET", cluster.front_url, headers=headers, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "mcp-session-id" not in response.headers
    with httpx.stream("GET", cluster.front_url, headers={**headers, "x-api-key": "sk-mcp-wrong"}) as refused:
        assert refused.status_code == 401


def test_the_mcp_inspector_negotiates_2025_11_25_and_works_through_the_front(cluster: LocalCluster) -> None:
    if not INSPECTOR.exists() or shutil.which("node") is None:
        pytest.fail("the MCP Inspector CLI is missing: run `make .tools/node_modules/.bin/mcp-inspector`")
    key = new_key(cluster, "inspector")

    def inspect(*args: str, key: str | None = key) -> subprocess.CompletedProcess[str]:
        header = ["--header", f"x-api-key: {key}"] if key else []
        return subprocess.run(
            [str(INSPECTOR), "--cli", cluster.front_url, "--transport", "http", *header, *args],
            capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    listed = inspect("--method", "tools/list")
    assert listed.returncode == 0, listed.stderr
    assert "place_order" in {tool["name"] for tool in json.loads(listed.stdout)["tools"]}
    called = inspect(
        "--method", "tools/call", "--tool-name", "add_item", "--tool-arg", "name=bread", "--tool-arg", "quantity=1"
    )
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["structuredContent"] == {"name": "bread", "quantity": 1}
    assert inspect("--method", "tools/list", key=None).returncode != 0

    # The front's access log says which protocol version the Inspector spoke: 2025-11-25, with sessions
    # offered by the client and declined by the stateless replicas.
    log = (cluster.nginx_config_path.parent / "access.log").read_text()
    assert f'protocol="{LEGACY}"' in log


def test_the_front_logs_which_replica_answered_and_never_a_key(cluster: LocalCluster) -> None:
    key = new_key(cluster, "logged")
    for _ in range(3):
        assert _status(cluster.front_url, key) == 200
    log = (cluster.nginx_config_path.parent / "access.log").read_text()
    ports = {r.url.rsplit(":", 1)[1].split("/")[0] for r in cluster.replicas}
    assert all(f"upstream=127.0.0.1:{port}" in log for port in ports)
    assert key not in log


# --- the command: start, print, stop on a signal, leave nothing behind ---------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_the_cluster_command_stops_everything_it_started(tmp_path: Path, sig: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "lesson_code", "cluster", "--replicas", "2", "--port", "0",
         "--db", "shop.sqlite3"],  # relative to where the command runs, not to the replicas' folder
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines: list[str] = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        output = "".join(lines)
        front = re.search(r"Front \(nginx\)\s+(http://127\.0\.0\.1:\d+/mcp)", output)
        redis_url = re.search(r"Redis\s+(redis://127\.0\.0\.1:\d+/0)", output)
        assert front and redis_url, output + process.stderr.read()  # type: ignore[union-attr]
        assert "keys new --name NAME --redis " + redis_url[1] in output
        descendants = _descendants(process.pid)
        assert len(descendants) >= 5, descendants  # redis-server, 2 replicas, nginx master and worker

        created = keys_cli("new", "--name", "cli", "--redis", redis_url[1])
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        _until(lambda: _status(front[1], key) == 200)

        process.send_signal(sig)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "Cluster stopped" in out
    assert "Traceback" not in err
    assert [pid for pid, start in descendants.items() if _alive(pid, start)] == []
    assert (tmp_path / "shop.sqlite3").exists()  # the shared database outlives the cluster, where it was asked for


def _descendants(root: int) -> dict[int, str]:
    """Every live descendant of `root`: pid -> its start time (so a reused pid is not mistaken for it)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for pid, fields in process_stats():
        children.setdefault(int(fields[1]), []).append(pid)
        starts[pid] = fields[19]
    found: dict[int, str] = {}
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        found[pid] = starts[pid]
        pending.extend(children.get(pid, []))
    return found


def _alive(pid: int, start: str) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == start and fields[0] != "Z"
