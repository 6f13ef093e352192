"""An outside MCP client, the official MCP Inspector CLI (npm), against `python -m lesson_code serve`.

The course's own clients could share a blind spot with the server; the
Inspector cannot. `make test` installs it under .tools/ with npm.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from tests_support import PROJECT, Served, new_key

from lesson_code.audit import read_audit_log

INSPECTOR = PROJECT / ".tools" / "node_modules" / ".bin" / "mcp-inspector"


@pytest.fixture(scope="module")
def inspector() -> Path:
    if not INSPECTOR.exists() or shutil.which("node") is None:
        pytest.fail("the MCP Inspector CLI is missing: `make test` installs it (npm install --prefix .tools ...)")
    return INSPECTOR


def inspect(inspector: Path, url: str, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    header = ["--header", f"x-api-key: {key}"] if key else []
    return subprocess.run(
        [str(inspector), "--cli", url, "--transport", "http", *header, *args],
        capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_the_inspector_lists_and_calls_tools_with_a_key_and_is_refused_without(inspector, tmp_path):
    keys_file = tmp_path / "keys.json"
    key = new_key(keys_file)
    served = Served(
        "--keys-file", str(keys_file), "--db", str(tmp_path / "shop.sqlite3"),
        "--audit-log", str(tmp_path / "audit.jsonl"),
    )  # fmt: skip
    with served:
        listed = inspect(inspector, served.url, "--method", "tools/list", key=key)
        assert listed.returncode == 0, listed.stderr
        tools = {t["name"] for t in json.loads(listed.stdout)["tools"]}
        assert tools == {"add_item", "remove_item", "list_items", "place_order", "list_orders"}
        called = inspect(
            inspector, served.url, "--method", "tools/call", "--tool-name", "add_item",
            "--tool-arg", "name=apples", "--tool-arg", "quantity=2", key=key,
        )  # fmt: skip
        assert called.returncode == 0, called.stderr
        assert json.loads(called.stdout)["structuredContent"] == {"name": "apples", "quantity": 2}

        refused = inspect(inspector, served.url, "--method", "tools/list")
        assert refused.returncode != 0
        wrong = inspect(inspector, served.url, "--method", "tools/list", key="sk-mcp-wrong")
        assert wrong.returncode != 0
    audit = read_audit_log(tmp_path / "audit.jsonl")
    assert {"missing", "invalid", "allowed"} <= {entry.get("outcome") for entry in audit}
    assert [e["tool"] for e in audit if e["event"] == "tool_call"] == ["add_item"]
