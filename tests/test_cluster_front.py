"""The front of the local cluster: Debian's nginx over real replicas, started on free loopback ports.

These tests use the cluster's keys-file mode (one keys file shared by every
replica, no Redis), so they prove what nginx does, whatever the shared state:
the generated configuration is valid, a `kill -9` of a replica costs no
request, a client's `X-Forwarded-For` never reaches a replica, idle
connections end at the front, the front's own errors are JSON-RPC, and the
`cluster` command refuses in one line when an engine is missing.

A missing nginx or redis-server fails these tests loudly; they never skip.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster_support import engines_fixture  # noqa: F401 (the autouse engines check)
from tests_support import ENV

from lesson_code.app import MAX_REQUEST_BODY_BYTES
from lesson_code.cluster import LocalCluster, find_engines, find_program, process_stats
from lesson_code.keys import create_key
from lesson_code.nginx_config import (
    MAX_REQUEST_BODY_BYTES as FRONT_BODY_LIMIT,
)
from lesson_code.nginx_config import (
    NO_REPLICA_AVAILABLE,
    FrontSettings,
    render_nginx_config,
)
from lesson_code.raw_requests import list_tools


@pytest.fixture
def keyed(tmp_path: Path) -> tuple[Path, str]:
    keys_file = tmp_path / "keys.json"
    key, _ = create_key(keys_file, "alice")
    return keys_file, key


@pytest.fixture
def cluster(tmp_path: Path, keyed: tuple[Path, str]) -> Iterator[LocalCluster]:
    with LocalCluster(3, keys_files=[keyed[0]], workdir=tmp_path / "cluster", name="test-front") as running:
        yield running


def status(url: str, key: str, **headers: str) -> int:
    request = list_tools(api_key=key)
    request["headers"].update(headers)
    return httpx.post(url, timeout=10, **request).status_code


def test_the_generated_configuration_passes_nginx_t(tmp_path: Path) -> None:
    _, nginx = find_engines()
    for sub in ("temp/client_body", "temp/proxy", "temp/fastcgi", "temp/uwsgi", "temp/scgi"):
        (tmp_path / sub).mkdir(parents=True)
    config = tmp_path / "nginx.conf"
    config.write_text(render_nginx_config(8080, [("127.0.0.1", 9001), ("127.0.0.1", 9002)], tmp_path))
    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(config), "-e", str(tmp_path / "error.log")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    text = config.read_text()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    assert "$proxy_add_x_forwarded_for" not in text
    assert "proxy_next_upstream error timeout;" in text and "non_idempotent" not in text
    assert "proxy_buffering off;" in text and "proxy_http_version 1.1;" in text
    assert "max_fails=1 fail_timeout=5s" in text


def test_the_front_and_the_replicas_refuse_the_same_body_size() -> None:
    assert FRONT_BODY_LIMIT == MAX_REQUEST_BODY_BYTES


def test_requests_are_spread_over_every_replica(cluster: LocalCluster, keyed: tuple[Path, str]) -> None:
    _, key = keyed
    assert [status(cluster.front_url, key) for _ in range(9)] == [200] * 9
    served = {c.name for c in cluster.replicas if _audit_entries(cluster, c.name, lambda e: e.get("event") == "auth")}
    assert served == {"r1", "r2", "r3"}


def test_the_front_survives_kill_9_of_a_replica(cluster: LocalCluster, keyed: tuple[Path, str]) -> None:
    _, key = keyed
    results: list[int] = []
    stop = threading.Event()

    def client() -> None:  # one client, one request at a time, through the kill
        with httpx.Client(timeout=10) as http:
            while not stop.is_set() and len(results) < 400:
                try:
                    results.append(http.post(cluster.front_url, **list_tools(api_key=key)).status_code)
                except httpx.HTTPError:
                    results.append(-1)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        _wait_until(lambda: len(results) >= 20)
        killed = cluster.kill_replica("r2")
        assert killed.process.returncode == -9
        after_kill = len(results)
        _wait_until(lambda: len(results) >= after_kill + 60)
    finally:
        stop.set()
        thread.join(30)
    # A POST that r2 was holding when it died may fail (nginx does not re-send it); nothing else may.
    assert sum(code != 200 for code in results) <= 1, results
    assert results[after_kill + 1 :] == [200] * len(results[after_kill + 1 :])


def test_with_every_replica_gone_the_front_answers_a_json_rpc_503(
    cluster: LocalCluster, keyed: tuple[Path, str]
) -> None:
    _, key = keyed
    for child in cluster.replicas:
        cluster.kill_replica(child.name)
    response = httpx.post(cluster.front_url, timeout=10, **list_tools(api_key=key))
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == NO_REPLICA_AVAILABLE
    assert "no replica answered" in response.json()["error"]["message"]


def test_a_client_supplied_x_forwarded_for_never_reaches_a_replica(
    cluster: LocalCluster, keyed: tuple[Path, str]
) -> None:
    _, key = keyed
    spoofed = "203.0.113.77"
    for _ in range(3):  # one request per replica (round robin)
        assert status(cluster.front_url, key, **{"x-forwarded-for": spoofed}) == 200
    for child in cluster.replicas:
        entries = _audit_entries(cluster, child.name, lambda e: e.get("event") == "auth")
        assert entries, child.name
        assert all(spoofed not in json.dumps(e) for e in entries)


def test_an_idle_connection_is_closed_by_the_front(tmp_path: Path, keyed: tuple[Path, str]) -> None:
    settings = FrontSettings(client_header_timeout_s=1)
    with LocalCluster(1, keys_files=[keyed[0]], front_settings=settings, workdir=tmp_path / "c", name="idle") as c:
        with socket.create_connection(("127.0.0.1", c.port), timeout=10) as sock:
            sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
            started = time.monotonic()
            while sock.recv(4096):  # nginx may say 408 first; then it closes
                pass
            waited = time.monotonic() - started
        assert waited < 5, f"the front held an idle connection for {waited:.1f} s"


def test_a_body_over_the_limit_is_refused_at_the_front(cluster: LocalCluster, keyed: tuple[Path, str]) -> None:
    _, key = keyed
    response = httpx.post(
        cluster.front_url,
        content=b"x" * (MAX_REQUEST_BODY_BYTES + 1),
        headers={"x-api-key": key, "content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.json()["error"]["message"].startswith("Request body too large")


# --- the command refuses without its engines ---------------------------------------------------------


def _cluster_command(path: str) -> subprocess.CompletedProcess[str]:
    env = {**ENV, "PATH": path}
    return subprocess.run(
        [sys.executable, "-m", "lesson_code", "cluster", "--port", "0"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("present", [(), ("redis-server",)], ids=["neither", "only-redis"])
def test_the_cluster_command_refuses_in_one_line_without_its_engines(tmp_path: Path, present: tuple[str, ...]) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in present:
        found = find_program(name)
        assert found is not None
        (bin_dir / name).symlink_to(found)
    result = _cluster_command(str(bin_dir))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    missing = "nginx is not installed" if present else "redis-server and nginx are not installed"
    assert lines[0].startswith(f"error: {missing}")
    for advice in ("apt install redis-server nginx", "brew install redis nginx", "WSL"):
        assert advice in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize("option", [["--replicas", "0"], ["--port", "70000"]], ids=["no-replicas", "bad-port"])
def test_the_cluster_command_refuses_bad_numbers_in_one_line(option: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lesson_code", "cluster", *option], capture_output=True, text=True, env=ENV, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --replicas must be at least 1, and --port between 0 (any free port) and 65535"
    ]


def test_nginx_is_found_next_to_a_bin_folder_on_path(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "sbin").mkdir()
    nginx = find_program("nginx")
    assert nginx is not None
    (tmp_path / "sbin" / "nginx").symlink_to(nginx)
    assert find_program("nginx", str(tmp_path / "bin")) == str(tmp_path / "sbin" / "nginx")
    assert find_program("nginx", str(tmp_path / "elsewhere")) is None


# --- helpers ----------------------------------------------------------------------------------------------


def _audit_entries(cluster: LocalCluster, replica: str, keep: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The replica's audit entries that `keep` accepts, waiting (up to 5 s) for its buffered writer."""
    path = cluster.workdir / f"audit-{replica}.jsonl"
    deadline = time.monotonic() + 5
    while True:
        lines = path.read_text().split("\n") if path.exists() else []
        entries = [e for e in (json.loads(line) for line in lines if line.strip()) if keep(e)]
        if entries or time.monotonic() > deadline:
            return entries
        time.sleep(0.05)


def _wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_no_engine_process_outlives_its_cluster(tmp_path: Path, keyed: tuple[Path, str]) -> None:
    cluster = LocalCluster(2, keys_files=[keyed[0]], workdir=tmp_path / "c", name="orphans").start()
    groups = {child.pid for child in cluster.children()}
    assert _processes_in(groups), "the cluster's processes should be visible while it runs"
    cluster.stop()
    assert _processes_in(groups) == []


def _processes_in(groups: set[int]) -> list[int]:
    """Live (non-zombie) processes whose process group is one of `groups`."""
    found = []
    for pid, fields in process_stats():
        state, pgid = fields[0], int(fields[2])
        if pgid in groups and state != "Z":
            found.append(pid)
    return found
