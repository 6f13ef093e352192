"""The command line as a user runs it: subprocesses, real ports, real signals."""

from __future__ import annotations

import json
import re
import signal
import socket
import sys

import httpx
import pytest
from tests_support import ENV, Served, cli, new_key

from lesson_code.raw_requests import list_tools, tool_call


def test_keys_new_list_revoke_rotate(tmp_path):
    keys_file = tmp_path / "keys.json"
    key = new_key(keys_file)
    assert key not in keys_file.read_text()
    listed = cli("keys", "list", "--keys-file", str(keys_file))
    assert "alice" in listed.stdout and "fp-" in listed.stdout and key not in listed.stdout
    rotated = cli("keys", "rotate", "--name", "alice", "--keys-file", str(keys_file))
    assert rotated.returncode == 0 and rotated.stdout.strip().startswith("sk-mcp-")
    assert "alice.previous" in rotated.stderr
    revoked = cli("keys", "revoke", "--name", "alice.previous", "--keys-file", str(keys_file))
    assert revoked.returncode == 0 and "Revoked" in revoked.stdout
    names = [k["name"] for k in json.loads(keys_file.read_text())["keys"]]
    assert names == ["alice"]


def test_keys_errors_are_one_line(tmp_path):
    keys_file = tmp_path / "keys.json"
    new_key(keys_file)
    again = cli("keys", "new", "--name", "alice", "--keys-file", str(keys_file))
    assert again.returncode == 1
    assert again.stderr.strip().count("\n") == 0 and "already exists" in again.stderr
    missing = cli("keys", "revoke", "--name", "bob", "--keys-file", str(keys_file))
    assert missing.returncode == 1 and "no key named 'bob'" in missing.stderr


def test_serve_refuses_to_start_without_keys(tmp_path):
    result = cli("serve", "--keys-file", str(tmp_path / "none.json"), "--db", str(tmp_path / "db.sqlite3"))
    assert result.returncode == 2
    assert "no API keys" in result.stderr and "Traceback" not in result.stderr


def test_serve_refuses_an_open_server_off_loopback(tmp_path):
    result = cli("serve", "--no-auth", "--host", "0.0.0.0", "--db", str(tmp_path / "db.sqlite3"))
    assert result.returncode == 2 and "only bind to loopback" in result.stderr


def test_serve_reports_a_taken_port_in_one_line(tmp_path):
    keys_file = tmp_path / "keys.json"
    new_key(keys_file)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        result = cli("serve", "--port", str(port), "--keys-file", str(keys_file), "--db", str(tmp_path / "d.sqlite3"))
    assert result.returncode == 2
    assert (
        result.stderr.strip() == f"error: port {port} on 127.0.0.1 is already in use: choose another port "
        "(or port 0 for any free one), or stop the program using it"
    )


def test_serve_answers_401_without_a_key_and_serves_tools_with_one(tmp_path):
    keys_file = tmp_path / "keys.json"
    key = new_key(keys_file)
    server = Served(
        "--keys-file",
        str(keys_file),
        "--db",
        str(tmp_path / "shop.sqlite3"),
        "--audit-log",
        str(tmp_path / "audit.jsonl"),
    )
    try:
        refused = httpx.post(server.url, **list_tools())
        assert refused.status_code == 401
        assert refused.headers.get_list("www-authenticate")
        assert refused.json()["error"]["code"] == -32010 and refused.json()["id"] is None
        listed = httpx.post(server.url, **list_tools(api_key=key))
        assert listed.status_code == 200
        names = {t["name"] for t in listed.json()["result"]["tools"]}
        assert names == {"add_item", "remove_item", "list_items", "place_order", "list_orders"}
        added = httpx.post(server.url, **tool_call("add_item", {"name": "tea"}, api_key=key))
        assert added.json()["result"]["structuredContent"] == {"name": "tea", "quantity": 1}
    finally:
        status, out, err = server.stop()
    assert status == 0, err
    assert "Shopping assistant MCP server at http://127.0.0.1:" in out and "Try: curl" in out
    assert "Server stopped." in out
    assert key not in out + err


def test_serve_no_auth_says_loudly_that_it_is_open(tmp_path):
    server = Served("--no-auth", "--db", str(tmp_path / "shop.sqlite3"))
    try:
        assert httpx.post(server.url, **list_tools()).status_code == 200
    finally:
        status, out, _ = server.stop()
    assert "OPEN: NO AUTHENTICATION" in out and status == 0


def test_serve_warns_about_plain_http_off_loopback(tmp_path):
    keys_file = tmp_path / "keys.json"
    new_key(keys_file)
    served = Served("--host", "0.0.0.0", "--keys-file", str(keys_file), "--db", str(tmp_path / "d.sqlite3"))
    status, _, err = served.stop(signal.SIGINT)  # it answered /health, so uvicorn handles signals by now
    assert "warning: serving plain HTTP on 0.0.0.0" in err
    assert status == 0, err


@pytest.mark.timeout(120)
def test_demo_runs_offline_and_places_an_order():
    result = cli("demo", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "→ add_item(name=" in result.stdout and "→ place_order()" in result.stdout
    assert "offline" in result.stdout.lower()
    assert re.search(r"ord-[0-9a-f]{12}", result.stdout)


def test_demo_with_a_wrong_key_exits_non_zero_with_one_line():
    result = cli("demo", "--key", "sk-mcp-not-a-real-key", timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "rejected the API key (401)" in result.stderr
    assert "Traceback" not in result.stderr and "ExceptionGroup" not in result.stderr


def test_a_missing_package_is_one_line_with_what_to_do(tmp_path):
    """Run outside the environment: `sys.modules["uvicorn"] = None` makes uvicorn absent, as if never installed."""
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['uvicorn'] = None\n")
    keys_file = tmp_path / "keys.json"
    new_key(keys_file)
    env = {**ENV, "PYTHONPATH": str(tmp_path)}
    result = cli("serve", "--keys-file", str(keys_file), "--db", str(tmp_path / "d.sqlite3"), env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: the package 'uvicorn' is not installed for {sys.executable}: "
        "run `pip install -r requirements.txt` with this Python (or activate the course's .venv)"
    )


def test_a_module_not_found_that_is_a_bug_keeps_its_traceback(tmp_path):
    """An installed package that fails to import something, or a module of our own: not "install it"."""
    (tmp_path / "uvicorn").mkdir()  # installed (found on the path), but broken inside
    (tmp_path / "uvicorn" / "__init__.py").write_text("import lesson_code.no_such_module\n")
    env = {**ENV, "PYTHONPATH": str(tmp_path)}
    result = cli("serve", "--help", env=env)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "lesson_code.no_such_module" in result.stderr
    assert "pip install" not in result.stderr


def test_missing_package_line_only_for_absent_third_party_packages():
    from lesson_code.cli_errors import missing_package_line

    absent = ModuleNotFoundError("No module named 'not_a_real_package_xyz'", name="not_a_real_package_xyz.sub")
    assert "'not_a_real_package_xyz' is not installed" in (missing_package_line(absent) or "")
    assert missing_package_line(ModuleNotFoundError("x", name="lesson_code.gone")) is None
    assert missing_package_line(ModuleNotFoundError("x", name="httpx")) is None  # installed: a bug elsewhere
