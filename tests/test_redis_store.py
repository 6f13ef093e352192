"""The shared key store in a real redis-server: same rules and messages as the keys file, atomic changes.

Propagation, fail-closed and the shared throttle are in test_redis_replicas.py;
the `keys ... --redis URL` command line is in test_redis_cli.py.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import redis
from redis_support import RedisProcess, redis_server_fixture  # noqa: F401 (the redis_server fixture)

from lesson_code.keys import KeyFileError, KeyRing, create_key, key_digest, revoke_key, rotate_key
from lesson_code.redis_keys import KeyStoreUnavailable, RedisKeyStore, display_url
from lesson_code.redis_sync import RedisKeySync


def _message(call: tuple[Any, ...]) -> str:
    """The KeyFileError message of `call[0](*call[1:])`."""
    with pytest.raises(KeyFileError) as caught:
        call[0](*call[1:])
    return str(caught.value)


def test_crud_keeps_digests_only_and_bumps_the_version(redis_server: RedisProcess) -> None:
    store = RedisKeyStore(redis_server.url)
    assert store.snapshot().version == 0
    key, record = store.create("alice", "viewer")
    assert record.sha256 == key_digest(key) and record.role == "viewer"
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True).hgetall(store.records_key)
    assert set(raw) == {"alice"}
    assert key not in json.dumps(raw) and json.loads(raw["alice"])["sha256"] == key_digest(key)

    new_key, new, old = store.rotate("alice")
    assert (old.name, old.sha256, old.role) == ("alice.previous", key_digest(key), "viewer")
    assert new.sha256 == key_digest(new_key) and new.role == "viewer"
    assert [r.name for r in store.records()] == ["alice", "alice.previous"]
    assert store.revoke("alice.previous").sha256 == key_digest(key)
    assert [r.name for r in store.records()] == ["alice"]
    assert store.snapshot().version == 3


def test_refusals_match_the_keys_file_word_for_word(redis_server: RedisProcess, tmp_path: Path) -> None:
    """Every refusal of the file commands has the same text against Redis (only the location differs)."""
    file = tmp_path / "keys.json"
    store = RedisKeyStore(redis_server.url)
    create_key(file, "alice")
    store.create("alice")
    rotate_key(file, "alice")
    store.rotate("alice")
    cases = [
        ((create_key, file, "alice"), (store.create, "alice")),  # duplicate
        ((create_key, file, "bad name!"), (store.create, "bad name!")),  # name rule
        ((create_key, file, "x.previous"), (store.create, "x.previous")),  # reserved suffix
        ((create_key, file, "bob", "Viewer"), (store.create, "bob", "Viewer")),  # role typo
        ((revoke_key, file, "nobody"), (store.revoke, "nobody")),
        ((rotate_key, file, "nobody"), (store.rotate, "nobody")),
        ((rotate_key, file, "alice.previous"), (store.rotate, "alice.previous")),
        ((rotate_key, file, "alice"), (store.rotate, "alice")),  # .previous still there
    ]
    for file_call, redis_call in cases:
        from_file = _message(file_call).replace(str(file), "WHERE")
        from_redis = _message(redis_call).replace(store.where, "WHERE")
        assert from_file == from_redis


def test_concurrent_changes_lose_nothing(redis_server: RedisProcess) -> None:
    """Twenty creates and a revoke at once: WATCH/MULTI retries, every change lands."""
    RedisKeyStore(redis_server.url).create("victim")
    errors: list[BaseException] = []

    def run(action: str, name: str) -> None:
        store = RedisKeyStore(redis_server.url)  # own connection, as separate commands would have
        try:
            store.revoke(name) if action == "revoke" else store.create(name)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=("create", f"user-{i}")) for i in range(20)]
    threads.append(threading.Thread(target=run, args=("revoke", "victim")))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    snapshot = RedisKeyStore(redis_server.url).snapshot()
    assert sorted(r.name for r in snapshot.records) == sorted(f"user-{i}" for i in range(20))
    assert snapshot.version == 22


def test_a_hand_edited_bad_entry_keeps_the_last_good_set_and_says_so_once(redis_server: RedisProcess) -> None:
    store = RedisKeyStore(redis_server.url)
    key, _ = store.create("alice")
    ring = KeyRing([])
    lines: list[str] = []
    sync = RedisKeySync(RedisKeyStore(redis_server.url), ring, say=lines.append, check_interval=0.2).start()
    try:
        assert ring.lookup(key) is not None
        entry = json.loads(str(store.client.hget(store.records_key, "alice")))
        store.client.hset(store.records_key, "alice", json.dumps({**entry, "role": "Viewer"}))
        store.client.incr(store.version_key)
        with pytest.raises(KeyFileError, match=r"entry 1 \('alice'\) has the unknown role 'Viewer'"):
            store.snapshot()
        sync.sync_now()
        sync.sync_now()
        assert ring.lookup(key) is not None  # the last good set, not an empty or a half-read one
        assert len(lines) == 1 and "has the unknown role 'Viewer'" in lines[0] and "last good key set" in lines[0]
        assert key not in lines[0]
    finally:
        sync.stop()


def test_an_unreachable_redis_is_one_clear_line_without_the_password() -> None:
    with RedisProcess() as redis_process:
        url = redis_process.url.replace("redis://", "redis://:s3cret-pass@")
    # the server is stopped now: nothing listens on that port
    with pytest.raises(KeyStoreUnavailable) as caught:
        RedisKeyStore(url).records()
    message = str(caught.value)
    assert "cannot reach Redis at redis://:***@127.0.0.1:" in message and "s3cret" not in message
    assert "\n" not in message
    assert display_url("redis://user:pw@host:6380/1") == "redis://user:***@host:6380/1"
    assert display_url("redis://host:6380/0") == "redis://host:6380/0"
