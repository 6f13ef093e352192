"""Forwarded headers: the throttle and the audit log see the socket's peer unless a proxy is trusted.

uvicorn believes X-Forwarded-For from 127.0.0.1 by default; a local client could
then reset the throttle with a new made-up address per request and write any
text into the audit log's `client` field. These tests send exactly that, over
real HTTP, to `serve` and to `BackgroundServer`.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tests_support import Served, cli, new_key

from lesson_code.audit import read_audit_log
from lesson_code.background import BackgroundServer
from lesson_code.raw_requests import list_tools

MAX_FAILURES = 3


class ServeProcess:
    """`serve` with a keys file, an audit log and a small throttle, run by `tests_support.Served`."""

    def __init__(self, tmp_path: Path, *extra: str) -> None:
        self.keys_file = tmp_path / "keys.json"
        self.key = new_key(self.keys_file)
        self.audit_log = tmp_path / "audit.jsonl"
        self.served = Served(
            "--keys-file", str(self.keys_file), "--db", str(tmp_path / "shop.sqlite3"),
            "--audit-log", str(self.audit_log), "--max-failures", str(MAX_FAILURES), "--failure-window", "60",
            *extra,
        )  # fmt: skip
        self.url = self.served.url

    def wrong_key(self, forwarded_for: str) -> int:
        request = list_tools(api_key="sk-mcp-" + "x" * 43)
        request["headers"] = {**request["headers"], "x-forwarded-for": forwarded_for}
        return httpx.post(self.url, **request, timeout=10).status_code

    def stop(self) -> str:
        status, _, err = self.served.stop()
        assert status == 0, err
        return err


def test_a_fresh_x_forwarded_for_per_request_neither_resets_the_throttle_nor_enters_the_audit_log(tmp_path):
    server = ServeProcess(tmp_path)
    try:
        statuses = [server.wrong_key(f"203.0.113.{i}, spoofed-{'z' * 200}") for i in range(MAX_FAILURES + 3)]
        assert statuses[:MAX_FAILURES] == [401] * MAX_FAILURES
        assert statuses[-1] == 429, statuses  # throttled: the peer is 127.0.0.1 whatever the header says
        assert httpx.post(server.url, **list_tools(api_key=server.key), timeout=10).status_code == 200
    finally:
        server.stop()
    clients = [entry["client"] for entry in read_audit_log(server.audit_log) if "client" in entry]
    assert clients, "no audit entries with a client field"
    assert all(c.startswith("127.0.0.1") for c in clients), clients
    assert not any("203.0.113" in c or "spoofed" in c for c in clients)


def test_with_a_trusted_proxy_the_forwarded_address_is_the_client(tmp_path):
    server = ServeProcess(tmp_path, "--trusted-proxy", "127.0.0.1")
    try:
        first = [server.wrong_key("203.0.113.7") for _ in range(MAX_FAILURES + 1)]
        assert first[-1] == 429, first
        assert server.wrong_key("198.51.100.9") == 401  # another client behind the proxy: its own count
    finally:
        server.stop()
    clients = {entry["client"].rsplit(":", 1)[0] for entry in read_audit_log(server.audit_log) if "client" in entry}
    assert {"203.0.113.7", "198.51.100.9"} <= clients, clients
    assert not any(c.startswith("127.0.0.1") for c in clients), clients


def _peer_app() -> Starlette:
    async def peer(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.client.host if request.client else "")

    return Starlette(routes=[Route("/peer", peer)])


def test_background_server_ignores_x_forwarded_for_unless_told_to_trust_the_proxy():
    spoof = {"x-forwarded-for": "203.0.113.7"}
    with BackgroundServer(_peer_app(), name="proxy-off") as server:
        assert httpx.get(server.url + "/peer", headers=spoof).text == "127.0.0.1"
    with BackgroundServer(_peer_app(), name="proxy-on", trusted_proxies=["127.0.0.1"]) as server:
        assert httpx.get(server.url + "/peer", headers=spoof).text == "203.0.113.7"


def test_a_trusted_proxy_that_is_not_an_address_is_one_line(tmp_path):
    keys_file = tmp_path / "keys.json"
    new_key(keys_file)
    result = cli("serve", "--port", "0", "--keys-file", str(keys_file), "--trusted-proxy", "*")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --trusted-proxy '*' is not an IP address or network, e.g. 10.0.0.5"
