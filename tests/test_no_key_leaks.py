"""No key, valid or wrong, ever reaches the server's stdout, stderr or audit log.

The CLI server runs as a real subprocess, as in production, with its output captured in
files. Requests then present keys everywhere a client might put one, by design or by
mistake: the right header, the Bearer header, wrong keys, other schemes, and odd places
(query string, path, cookie, body, look-alike headers, the session id, Origin and Host).
Each place gets its own fresh key, so a failure names exactly the place that leaked.
What the log may show is a key's name and fingerprint, never the key.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lesson_code.audit import read_audit_log
from lesson_code.background import free_port
from lesson_code.keys import fingerprint, generate_key, key_digest
from lesson_code.raw_requests import list_tools, mcp_body, mcp_headers, tool_call


@dataclass
class CliServer:
    folder: Path
    url: str
    key: str
    process: subprocess.Popen[bytes]

    def outputs(self) -> dict[str, str]:
        """What the server wrote so far: its stdout, its stderr and its audit log."""
        return {
            "stdout": (self.folder / "stdout.log").read_text(encoding="utf-8", errors="replace"),
            "stderr": (self.folder / "stderr.log").read_text(encoding="utf-8", errors="replace"),
            "audit log": (self.folder / "audit.jsonl").read_text(encoding="utf-8", errors="replace")
            if (self.folder / "audit.jsonl").exists()
            else "",
        }


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliServer]:
    folder = tmp_path_factory.mktemp("leaks")
    created = subprocess.run(
        [sys.executable, "-m", "lesson_code", "keys", "new", "--name", "alice", "--keys-file", "keys.json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[0]
    port = free_port()
    with (folder / "stdout.log").open("wb") as out, (folder / "stderr.log").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "lesson_code", "serve", "--port", str(port), "--keys-file", "keys.json",
             "--db", "shop.sqlite3", "--audit-log", "audit.jsonl", "--max-failures", "1000"],
            cwd=folder,
            stdout=out,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, (folder / "stderr.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the CLI server did not start"
            time.sleep(0.05)
        yield CliServer(folder, f"http://127.0.0.1:{port}/mcp", key, process)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def post(url: str, *, headers: dict[str, str] | None = None, body: Any = None, path: str = "") -> httpx.Response:
    request = tool_call("add_item", {"name": "tea"})
    return httpx.post(
        url + path, headers={**request["headers"], **(headers or {})}, json=request["json"] if body is None else body
    )


def odd_places(valid: str) -> dict[str, Callable[[str, str], httpx.Response]]:
    """Where a (wrong) key can be sent; each sender gets the URL and the wrong key to present."""

    def basic(key: str) -> str:
        return "Basic " + base64.b64encode(f"user:{key}".encode()).decode()

    return {
        "x-api-key header": lambda url, key: post(url, headers={"x-api-key": key}),
        "Bearer header": lambda url, key: post(url, headers={"authorization": f"Bearer {key}"}),
        "Basic header": lambda url, key: post(url, headers={"authorization": basic(key)}),
        "Token scheme": lambda url, key: post(url, headers={"authorization": f"Token {key}"}),
        "two x-api-key headers": lambda url, key: httpx.post(
            url, headers=[("x-api-key", key), ("x-api-key", valid), *mcp_headers("tools/list").items()],
            json=mcp_body("tools/list"),
        ),
        "valid key plus a wrong Bearer": lambda url, key: post(
            url, headers={"x-api-key": valid, "authorization": f"Bearer {key}"}
        ),
        "query string": lambda url, key: post(url, path=f"?api_key={key}"),
        "path segment": lambda url, key: post(url, path=f"/{key}"),
        "path with valid key": lambda url, key: post(url, headers={"x-api-key": valid}, path=f"/{key}"),
        "cookie": lambda url, key: post(url, headers={"cookie": f"api_key={key}"}),
        "JSON body": lambda url, key: post(
            url, body=mcp_body("tools/call", {"name": "add_item", "arguments": {"name": "tea", "api_key": key}})
        ),
        "JSON body with valid key": lambda url, key: post(
            url, headers={"x-api-key": valid},
            body=mcp_body("tools/call", {"name": "add_item", "arguments": {"name": "tea", "api_key": key}}),
        ),
        "x_api_key header": lambda url, key: post(url, headers={"x_api_key": key}),
        "api-key header": lambda url, key: post(url, headers={"api-key": key}),
        "session id header": lambda url, key: post(
            url, headers={"mcp-session-id": key, "mcp-protocol-version": "2025-11-25"}
        ),
        "session id with valid key": lambda url, key: post(
            url, headers={"x-api-key": valid, "mcp-session-id": key, "mcp-protocol-version": "2025-11-25"}
        ),
        "user-agent with valid key": lambda url, key: post(url, headers={"x-api-key": valid, "user-agent": key}),
        "Origin with valid key": lambda url, key: post(url, headers={"x-api-key": valid, "origin": key}),
        "Host with valid key": lambda url, key: post(url, headers={"x-api-key": valid, "host": key}),
    }  # fmt: skip


PLACES = list(odd_places("placeholder"))


def assert_absent(outputs: dict[str, str], secret: str, place: str) -> None:
    forms = {secret, secret[len("sk-mcp-") :]}  # the whole key, or its secret part without the prefix
    for where, text in outputs.items():
        for form in forms:
            assert form not in text, f"a key sent in the {place} leaked into the server's {where}"


def settle(server: CliServer) -> dict[str, str]:
    """The outputs once the server had a moment to write them (log lines are flushed per line)."""
    time.sleep(0.15)
    return server.outputs()


def test_the_valid_key_works_and_is_logged_by_name_only(cli_server: CliServer) -> None:
    key = cli_server.key
    assert httpx.post(cli_server.url, **list_tools(api_key=key)).status_code == 200
    bearer = tool_call("add_item", {"name": "tea"})
    bearer["headers"]["authorization"] = f"Bearer {key}"
    assert httpx.post(cli_server.url, **bearer).status_code == 200
    outputs = settle(cli_server)
    assert_absent(outputs, key, "valid key")
    assert key_digest(key) not in "".join(outputs.values())  # not even the digest, only a short fingerprint
    allowed = [e for e in read_audit_log(cli_server.folder / "audit.jsonl") if e.get("outcome") == "allowed"]
    assert allowed and all(e["key"] == "alice" and e["fingerprint"] == fingerprint(key_digest(key)) for e in allowed)
    assert "Shopping assistant MCP server at" in outputs["stdout"]


@pytest.mark.parametrize("place", PLACES)
def test_a_key_in_an_odd_place_is_never_written_down(cli_server: CliServer, place: str) -> None:
    wrong = generate_key()
    response = odd_places(cli_server.key)[place](cli_server.url, wrong)
    assert response.status_code in (200, 400, 401, 403, 404, 421), response.status_code
    assert wrong not in response.text
    outputs = settle(cli_server)
    assert_absent(outputs, wrong, place)
    assert_absent(outputs, cli_server.key, place)


def test_the_audit_log_is_well_formed_and_names_refusals(cli_server: CliServer) -> None:
    httpx.post(cli_server.url, **list_tools(api_key=generate_key()))
    entries = read_audit_log(settle(cli_server) and cli_server.folder / "audit.jsonl")
    lines = (cli_server.folder / "audit.jsonl").read_text().splitlines()
    assert len(entries) == len(lines) and all(json.loads(line) for line in lines)
    invalid = [e for e in entries if e.get("outcome") == "invalid"]
    assert invalid and all("key" not in e and "fingerprint" not in e for e in invalid)
