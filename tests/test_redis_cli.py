"""The command line against a real redis-server: `keys ... --redis URL` exactly as with a file,
`serve --redis URL` replicas as real processes, and `audit --redis URL` for the whole cluster."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
from redis_support import RedisProcess, redis_server_fixture  # noqa: F401 (the redis_server fixture)
from tests_support import Served, cli

from lesson_code.keys import key_digest
from lesson_code.raw_requests import list_tools
from lesson_code.redis_keys import RedisKeyStore

KEY_PATTERN = r"sk-mcp-[A-Za-z0-9_-]{43}"


def _new(url: str, name: str, *extra: str) -> str:
    result = cli("keys", "new", "--name", name, "--redis", url, *extra)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(KEY_PATTERN, result.stdout.strip())
    return result.stdout.strip()


def test_keys_commands_work_on_redis_as_on_a_file(redis_server: RedisProcess, tmp_path: Path) -> None:
    url = redis_server.url
    key = _new(url, "alice", "--role", "viewer")
    new_result = cli("keys", "new", "--name", "bob", "--redis", url)
    assert f"Only its SHA-256 digest is stored in {url}" in new_result.stderr
    assert [r.sha256 for r in RedisKeyStore(url).records() if r.name == "alice"] == [key_digest(key)]

    listed = cli("keys", "list", "--redis", url)
    assert listed.returncode == 0
    assert re.search(r"^alice\s+viewer\s+fp-[0-9a-f]{12}", listed.stdout, re.MULTILINE)
    assert re.search(r"^bob\s+shopper", listed.stdout, re.MULTILINE) and key not in listed.stdout

    rotated = cli("keys", "rotate", "--name", "alice", "--redis", url)
    assert rotated.returncode == 0 and re.fullmatch(KEY_PATTERN, rotated.stdout.strip())
    assert "alice.previous" in rotated.stderr
    revoked = cli("keys", "revoke", "--name", "alice.previous", "--redis", url)
    assert revoked.returncode == 0 and revoked.stdout.startswith("Revoked 'alice.previous'")
    assert sorted(r.name for r in RedisKeyStore(url).records()) == ["alice", "bob"]

    # The refusals: one line, exit status 1, the same text as with a file.
    file = tmp_path / "keys.json"
    cli("keys", "new", "--name", "bob", "--keys-file", str(file))
    for args in (("new", "--name", "bob"), ("revoke", "--name", "nobody"), ("rotate", "--name", "bob.previous")):
        on_redis = cli("keys", *args, "--redis", url)
        on_file = cli("keys", *args, "--keys-file", str(file))
        assert on_redis.returncode == on_file.returncode == 1
        assert on_redis.stderr.count("\n") == 1 and "Traceback" not in on_redis.stderr
        assert on_redis.stderr.replace(url, "WHERE") == on_file.stderr.replace(str(file), "WHERE")

    empty = cli("keys", "list", "--redis", url.removesuffix("/0") + "/1")
    assert empty.returncode == 0 and empty.stdout.startswith("No keys in ")


def test_an_unreachable_redis_is_one_line_for_keys_serve_and_audit() -> None:
    with RedisProcess() as stopped:
        url = stopped.url.replace("redis://", "redis://:hunter2@")
    for args in (
        ("keys", "list", "--redis", url),
        ("keys", "new", "--name", "x", "--redis", url),
        ("serve", "--port", "0", "--redis", url),
        ("audit", "--redis", url),
    ):
        result = cli(*args, timeout=30)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.startswith("error: cannot reach Redis at redis://:***@127.0.0.1:"), result.stderr
        assert result.stderr.count("\n") == 1 and "hunter2" not in result.stderr + result.stdout


def test_two_serve_replicas_follow_the_store_and_one_command_reads_their_audit(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    url = redis_server.url
    db = str(tmp_path / "shop.sqlite3")
    common = ("--redis", url, "--db", db, "--stateless", "--audit-redis-stream", "--redis-grace", "5")
    with (
        Served(*common, "--replica-name", "r1", "--audit-log", str(tmp_path / "a1.jsonl")) as one,
        Served(*common, "--replica-name", "r2", "--audit-log", str(tmp_path / "a2.jsonl")) as two,
    ):
        first_line = one.output()[0].splitlines()[0]
        assert re.fullmatch(
            r"Shopping assistant MCP server at http://127\.0\.0\.1:\d+/mcp  \[API key required\]", first_line
        )
        assert "Replica r1: keys, throttle, audit stream mcp:audit shared through Redis" in one.output()[0]
        assert "no keys in the shared store yet" in one.output()[1]

        key = _new(url, "alice")  # created after the replicas started: they learn it from Redis
        for served in (one, two):
            _wait_for_status(served.url, key, 200)
        assert cli("keys", "revoke", "--name", "alice", "--redis", url).returncode == 0
        for served in (one, two):
            _wait_for_status(served.url, key, 401)

        status_one, _out, err_one = one.stop()
        status_two, _out, _err = two.stop()
        assert status_one == status_two == 0 and "Traceback" not in err_one

    result = cli("audit", "--redis", url)
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    auth = [(e["replica"], e["outcome"]) for e in entries if e["event"] == "auth"]
    assert ("r1", "allowed") in auth and ("r2", "allowed") in auth
    assert ("r1", "invalid") in auth and ("r2", "invalid") in auth
    assert [e["time"] for e in entries] == sorted(e["time"] for e in entries)
    assert key not in result.stdout
    last = cli("audit", "--redis", url, "--last", "3")
    assert len(last.stdout.splitlines()) == 3 and last.stdout.splitlines() == result.stdout.splitlines()[-3:]
    from_file = cli("audit", "--audit-log", str(tmp_path / "a1.jsonl"))
    assert from_file.returncode == 0
    assert {json.loads(line)["replica"] for line in from_file.stdout.splitlines()} == {"r1"}


def _wait_for_status(mcp_url: str, key: str, status: int, deadline_s: float = 2.0) -> None:
    """Poll until the replica answers `status` (the hard bound is 2 s; the target, 1 s, is benchmarked)."""
    start = time.monotonic()
    while httpx.post(mcp_url, **list_tools(api_key=key), timeout=10).status_code != status:
        assert time.monotonic() - start < deadline_s, f"{mcp_url}: no {status} within {deadline_s} s"
        time.sleep(0.02)


def test_the_cli_default_grace_is_the_sync_default_and_importing_the_cli_does_not_import_redis() -> None:
    import subprocess
    import sys

    from lesson_code import redis_cli, redis_sync

    assert redis_cli.DEFAULT_GRACE == redis_sync.DEFAULT_GRACE
    code = "import sys, lesson_code.cli; print('redis' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
