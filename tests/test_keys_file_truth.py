"""The keys file is one truth: concurrent commands, hand edits, symlinks, names and weak keys.

Before: `keys revoke` and `keys new` at the same moment lost an update; a role
typo made the server answer 500 and then keep the old set silently; a symlink
was replaced by a file; Unicode names passed; `sk-mcp-12345` loaded.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests_support import ENV, Served, cli, new_key

from lesson_code import keys
from lesson_code.keys import KeyFileError, KeyRing, create_key, read_key_file, revoke_key, rotate_key
from lesson_code.raw_requests import list_tools
from lesson_code.tls import ensure_dev_certificates

ROUNDS = 10


def _keys_command(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lesson_code", "keys", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip


@pytest.mark.timeout(300)
def test_revoke_and_new_at_the_same_moment_lose_no_update(tmp_path):
    keys_file = tmp_path / "keys.json"
    for i in range(ROUNDS):
        create_key(keys_file, f"old-{i}")
    for i in range(ROUNDS):
        both = [
            _keys_command("revoke", "--name", f"old-{i}", "--keys-file", str(keys_file)),
            _keys_command("new", "--name", f"new-{i}", "--keys-file", str(keys_file)),
        ]
        for process in both:
            _, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
        names = {record.name for record in read_key_file(keys_file)}
        assert f"old-{i}" not in names, f"round {i}: the revocation was lost"
        assert f"new-{i}" in names, f"round {i}: the new key was lost"
    assert {record.name for record in read_key_file(keys_file)} == {f"new-{i}" for i in range(ROUNDS)}


def _write_entries(path: Path, entries: list[dict[str, object]]) -> None:
    """A hand edit: rewrite the file in place, with a new modification time."""
    path.write_text(json.dumps({"keys": entries}, indent=2))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 50_000_000))


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        ("{ not json", "is invalid"),
        ({"keys": [{"name": "alice", "sha256": "0" * 64, "role": "Viewer"}]}, "unknown role 'Viewer'"),
        ({"keys": [{"name": "alice", "role": "viewer"}]}, "sha256 must be 64"),
        ({"keys": [{"name": "bob smith", "sha256": "0" * 64}]}, "1-64 ASCII letters"),
        ({"keys": [{"name": "bób", "sha256": "0" * 64}]}, "1-64 ASCII letters"),
        ({"keys": [{"name": "alice", "sha256": "0" * 64, "rol": "viewer"}]}, "unknown fields 'rol'"),
        ({"keys": [{"name": "a", "sha256": "0" * 64}, {"name": "a", "sha256": "1" * 64}]}, "also used by entry 1"),
        ({"keys": [{"name": "a", "sha256": "0" * 64}, {"name": "b", "sha256": "0" * 64}]}, "same key as entry 1"),
        ({"entries": []}, 'expected an object {"keys"'),
    ],
)
def test_an_invalid_file_names_the_file_and_the_problem(tmp_path, edit, problem):
    path = tmp_path / "keys.json"
    path.write_text(edit if isinstance(edit, str) else json.dumps(edit))
    with pytest.raises(KeyFileError) as raised:
        read_key_file(path)
    assert str(path) in str(raised.value) and problem in str(raised.value)


def test_a_raw_key_pasted_into_the_file_is_never_repeated(tmp_path):
    path = tmp_path / "keys.json"
    key = keys.generate_key()
    path.write_text(json.dumps({"keys": [{"name": "alice", "sha256": key}]}))
    with pytest.raises(KeyFileError, match="holds digests, never keys") as raised:
        read_key_file(path)
    assert key not in str(raised.value) and key[7:20] not in str(raised.value)


def test_the_ring_keeps_the_last_good_set_and_says_so_once_per_change(tmp_path, caplog):
    path = tmp_path / "keys.json"
    alice, _ = create_key(path, "alice")
    bob, bob_record = create_key(path, "bob")
    ring = KeyRing(key_file=path, reload_interval=0)
    assert ring.problem is None
    good = json.loads(path.read_text())["keys"]
    caplog.set_level(logging.WARNING, logger="lesson_code.keys")

    # revoke bob by hand, and mistype alice's role in the same edit
    _write_entries(path, [{**good[0], "role": "Viewer"}])
    for _ in range(5):
        assert ring.lookup(alice).name == "alice"
        assert ring.lookup(bob).name == "bob"  # the revocation in the invalid edit does not take effect
    assert ring.problem is not None and "unknown role 'Viewer'" in ring.problem and str(path) in ring.problem
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert str(path) in errors[0].getMessage() and "revocations included" in errors[0].getMessage()

    _write_entries(path, [{**good[0], "role": "Shopper"}])  # another broken change: one more line
    ring.lookup(alice)
    ring.lookup(alice)
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2

    _write_entries(path, [good[0]])  # fixed: bob's revocation takes effect now
    assert ring.lookup(bob) is None and ring.lookup(alice).name == "alice"
    assert ring.problem is None
    assert any("valid again" in r.getMessage() for r in caplog.records)
    assert bob_record.name == "bob"


def test_a_role_typo_while_serving_is_never_a_500(tmp_path):
    keys_file = tmp_path / "keys.json"
    alice = new_key(keys_file, "alice")
    bob = new_key(keys_file, "bob")
    server = Served(
        "--keys-file", str(keys_file), "--db", str(tmp_path / "shop.sqlite3"), "--audit-log", str(tmp_path / "a.jsonl")
    )  # fmt: skip
    url = server.url
    try:
        entries = json.loads(keys_file.read_text())["keys"]
        _write_entries(keys_file, [{**entries[0], "role": "Viewer"}])  # bob revoked, alice mistyped
        deadline = time.monotonic() + 15
        while "is invalid" not in server.output()[1]:  # requests make the server look at the file again
            assert httpx.post(url, **list_tools(api_key=alice), timeout=10).status_code == 200
            assert time.monotonic() < deadline, "the server never reported the invalid edit"
            time.sleep(0.05)
        statuses = [httpx.post(url, **list_tools(api_key=alice), timeout=10).status_code for _ in range(5)]
        assert statuses == [200] * 5
        assert httpx.post(url, **list_tools(api_key=bob), timeout=10).status_code == 200  # last good set
        _write_entries(keys_file, [entries[0]])  # fixed
        deadline = time.monotonic() + 10
        while httpx.post(url, **list_tools(api_key=bob), timeout=10).status_code != 401:
            assert time.monotonic() < deadline, "the revocation never took effect after the fix"
            time.sleep(0.1)
    finally:
        status, _, err = server.stop()
    assert status == 0, err
    problem_lines = [line for line in err.splitlines() if "is invalid" in line]
    assert len(problem_lines) == 1, err
    assert str(keys_file) in problem_lines[0] and "unknown role 'Viewer'" in problem_lines[0]
    assert "Traceback" not in err and alice not in err and bob not in err


def test_keys_commands_on_an_invalid_file_print_one_line(tmp_path):
    keys_file = tmp_path / "keys.json"
    new_key(keys_file, "alice")
    entries = json.loads(keys_file.read_text())["keys"]
    keys_file.write_text(json.dumps({"keys": [{**entries[0], "role": "Viewer"}]}))
    for args in (["list"], ["revoke", "--name", "alice"], ["new", "--name", "bob"], ["rotate", "--name", "alice"]):
        result = cli("keys", *args, "--keys-file", str(keys_file))
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr, result.stderr
        assert "unknown role 'Viewer'" in result.stderr and str(keys_file) in result.stderr
    listed = cli("keys", "list", "--keys-file", str(keys_file))
    assert "do not take effect until the file is valid again" in listed.stderr


def test_keys_commands_on_an_unreadable_path_print_one_line(tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    result = cli("keys", "list", "--keys-file", str(folder))
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr


def test_editing_through_a_symlink_edits_the_target(tmp_path):
    target = tmp_path / "real" / "keys.json"
    target.parent.mkdir()
    link = tmp_path / "keys.json"
    link.symlink_to(target)
    create_key(link, "alice")
    rotate_key(link, "alice")
    revoke_key(link, "alice.previous")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert [r.name for r in read_key_file(target)] == ["alice"]
    assert (target.parent / "keys.json.lock").exists() and not (tmp_path / "keys.json.lock").exists()


def test_tls_dir_that_exists_keeps_its_permissions(tmp_path):
    folder = tmp_path / "tls"
    folder.mkdir()
    folder.chmod(0o750)
    ensure_dev_certificates(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    fresh = tmp_path / "new-tls"
    ensure_dev_certificates(fresh)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700


def test_rotating_a_previous_key_is_refused_with_one_line(tmp_path):
    keys_file = tmp_path / "keys.json"
    new_key(keys_file, "bob")
    assert cli("keys", "rotate", "--name", "bob", "--keys-file", str(keys_file)).returncode == 0
    result = cli("keys", "rotate", "--name", "bob.previous", "--keys-file", str(keys_file))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: 'bob.previous' is the old key of a rotation: rotate the base name ('bob'), or revoke 'bob.previous'"
    )


@pytest.mark.parametrize("name", ["bób", "ключ", "a b", "x" * 65, "", "semi;colon", "tab\tname"])
def test_names_outside_the_documented_ascii_set_are_refused(tmp_path, name):
    with pytest.raises(KeyFileError, match="1-64 ASCII letters, digits"):
        create_key(tmp_path / "keys.json", name)


def test_names_inside_the_set_are_accepted(tmp_path):
    for name in ["a", "Alice_2.laptop-old", "x" * 64]:
        create_key(tmp_path / "keys.json", name)
    with pytest.raises(KeyFileError, match="kept for `keys rotate`"):
        create_key(tmp_path / "keys.json", "carol.previous")


@pytest.mark.parametrize(
    ("value", "position"),
    [("sk-mcp-12345", 1), (f"{'k' * 40},sk-mcp-{'x' * 31}", 2), (f"{keys.generate_key()}, tiny-key-9", 2)],
    ids=["tutorial-key", "short-second-entry", "tiny-second-entry"],  # fixed ids: xdist workers must agree
)
def test_serve_refuses_weak_environment_keys_naming_the_entry_never_the_key(tmp_path, value, position):
    env = {**ENV, keys.ENV_VAR: value}
    result = cli("serve", "--port", "0", "--keys-file", str(tmp_path / "none.json"), env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: MCP_API_KEYS entry {position} is too short: a key needs at least 32 random characters after "
        "'sk-mcp-'; make one with `python -m lesson_code keys generate`"
    )
    for part in value.split(","):
        secret = part.strip().removeprefix("sk-mcp-")
        assert secret not in result.stderr


def test_strong_environment_keys_load(tmp_path):
    strong = [keys.generate_key(), "k" * 32]
    ring = KeyRing.from_sources(tmp_path / "none.json", env_value=",".join(strong))
    assert [ring.lookup(k).name for k in strong] == ["env-1", "env-2"]
    generated = cli("keys", "generate")
    assert generated.returncode == 0
    assert KeyRing.from_sources(None, env_value=generated.stdout.strip()).lookup(generated.stdout.strip())


def test_serve_refuses_an_invalid_keys_file_at_start_up_in_one_line(tmp_path):
    keys_file = tmp_path / "keys.json"
    new_key(keys_file, "alice")
    entries = json.loads(keys_file.read_text())["keys"]
    keys_file.write_text(json.dumps({"keys": [{**entries[0], "role": "Viewer"}]}))
    result = cli("serve", "--port", "0", "--keys-file", str(keys_file), "--db", str(tmp_path / "d.sqlite3"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: keys file {keys_file} is invalid: entry 1 ('alice') has the unknown role 'Viewer': "
        "choose one of shopper, viewer"
    )


def test_revoking_in_a_folder_that_does_not_exist_creates_nothing(tmp_path):
    missing = tmp_path / "no-such-folder" / "keys.json"
    with pytest.raises(KeyFileError, match="there is no keys file at"):
        revoke_key(missing, "alice")
    assert not missing.parent.exists()
