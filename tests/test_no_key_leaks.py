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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests_support import Served, new_key

from lesson_code.audit import read_audit_log
from lesson_code.keys import fingerprint, generate_key, key_digest
from lesson_code.raw_requests import list_tools, mcp_body, mcp_headers, tool_call


@dataclass
class CliServer:
    folder: Path
    url: str
    key: str
    served: Served

    def outputs(self) -> dict[str, str]:
        """What the server wrote so far: its stdout, its stderr and its audit log."""
        stdout, stderr = self.served.output()
        return {"stdout": stdout, "stderr": stderr, "audit log": self.audit_text()}

    def audit_text(self) -> str:
        path = self.folder / "audit.jsonl"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def audit_entries(self) -> int:
        return self.audit_text().count("\n")


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliServer]:
    folder = tmp_path_factory.mktemp("leaks")
    key = new_key(folder / "keys.json")
    with Served(
        "--keys-file", "keys.json", "--db", "shop.sqlite3", "--audit-log", "audit.jsonl", "--max-failures", "1000",
        cwd=folder, logs=folder,
    ) as served:  # fmt: skip
        yield CliServer(folder, served.url, key, served)


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


def settle(server: CliServer, entries_before: int, requests: int = 1) -> dict[str, str]:
    """The outputs once the server's audit log holds `requests` more entries: all it writes about them.

    Whatever the server logs while handling a request is on stderr (unbuffered) before the response
    leaves; the audit entry is written by a buffered writer a moment later. Waiting for those entries
    is the positive signal that everything the server was going to write about these requests is on disk.
    """
    deadline = time.monotonic() + 10
    while server.audit_entries() < entries_before + requests:
        assert time.monotonic() < deadline, "the server did not audit the request within 10 s"
        time.sleep(0.01)
    return server.outputs()


def test_the_valid_key_works_and_is_logged_by_name_only(cli_server: CliServer) -> None:
    key = cli_server.key
    before = cli_server.audit_entries()
    assert httpx.post(cli_server.url, **list_tools(api_key=key)).status_code == 200
    bearer = tool_call("add_item", {"name": "tea"})
    bearer["headers"]["authorization"] = f"Bearer {key}"
    assert httpx.post(cli_server.url, **bearer).status_code == 200
    outputs = settle(cli_server, before, requests=2)
    assert_absent(outputs, key, "valid key")
    assert key_digest(key) not in "".join(outputs.values())  # not even the digest, only a short fingerprint
    allowed = [e for e in read_audit_log(cli_server.folder / "audit.jsonl") if e.get("outcome") == "allowed"]
    assert allowed and all(e["key"] == "alice" and e["fingerprint"] == fingerprint(key_digest(key)) for e in allowed)
    assert "Shopping assistant MCP server at" in outputs["stdout"]


@pytest.mark.parametrize("place", PLACES)
def test_a_key_in_an_odd_place_is_never_written_down(cli_server: CliServer, place: str) -> None:
    wrong = generate_key()
    before = cli_server.audit_entries()
    response = odd_places(cli_server.key)[place](cli_server.url, wrong)
    assert response.status_code in (200, 400, 401, 403, 404, 421), response.status_code
    assert wrong not in response.text
    outputs = settle(cli_server, before)
    assert_absent(outputs, wrong, place)
    assert_absent(outputs, cli_server.key, place)


def test_the_audit_log_is_well_formed_and_names_refusals(cli_server: CliServer) -> None:
    before = cli_server.audit_entries()
    assert httpx.post(cli_server.url, **list_tools(api_key=generate_key())).status_code == 401
    settle(cli_server, before)
    entries = read_audit_log(cli_server.folder / "audit.jsonl")
    lines = (cli_server.folder / "audit.jsonl").read_text().splitlines()
    assert len(entries) == len(lines) and all(json.loads(line) for line in lines)
    invalid = [e for e in entries if e.get("outcome") == "invalid"]
    assert invalid and all("key" not in e and "fingerprint" not in e for e in invalid)
