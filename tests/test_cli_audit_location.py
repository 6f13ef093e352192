"""`serve` keeps its audit log in the per-user state folder, never in the folder it was started from."""

from __future__ import annotations

import json
import stat
import subprocess

import httpx
from tests_support import ENV, PROJECT, Served, new_key

from lesson_code.raw_requests import list_tools


def test_the_default_audit_log_is_in_the_state_folder_and_printed_at_start_up(tmp_path):
    keys_file = tmp_path / "keys.json"
    key = new_key(keys_file)
    state, workdir = tmp_path / "state", tmp_path / "a-repository"
    workdir.mkdir()
    env = {**ENV, "XDG_STATE_HOME": str(state)}
    expected = state / "mcp-shopping-course" / "audit.jsonl"
    with Served("--keys-file", str(keys_file), "--db", str(tmp_path / "shop.sqlite3"), env=env, cwd=workdir) as server:
        assert f"\nAudit log: {expected}\n" in server.output()[0]
        assert httpx.post(server.url, **list_tools(api_key=key), timeout=10).status_code == 200
        status, _, err = server.stop()
    assert status == 0, err
    events = [json.loads(line)["event"] for line in expected.read_text().split("\n") if line]
    assert events, "nothing was written to the audit log"
    assert stat.S_IMODE(expected.parent.stat().st_mode) == 0o700
    assert list(workdir.iterdir()) == []  # nothing written where the server was started


def test_gitignore_covers_audit_logs_and_keys_files():
    names = ["audit.jsonl", "logs/audit-old.jsonl", "mcp-keys.json", "mcp-keys.json.lock", "keys.json", ".keys-x1"]
    result = subprocess.run(["git", "check-ignore", "--no-index", *names], capture_output=True, text=True, cwd=PROJECT)
    assert result.stdout.split() == names, result.stdout + result.stderr
