"""Keys: generation, digests-only storage, env loading, O(1) lookup and live reload."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from lesson_code import keys
from lesson_code.keys import KeyFileError, KeyRing, create_key, key_digest, revoke_key, rotate_key


def test_generated_keys_have_prefix_and_256_bits():
    made = {keys.generate_key() for _ in range(200)}
    assert len(made) == 200
    for key in made:
        assert re.fullmatch(r"sk-mcp-[A-Za-z0-9_-]{43}", key)


def test_mask_hides_all_but_the_prefix():
    key = keys.generate_key()
    assert keys.mask(key) == key[:11] + "…"
    assert key[11:] not in keys.mask(key)


def test_keys_file_stores_only_digests(tmp_path):
    path = tmp_path / "keys.json"
    key, record = create_key(path, "alice")
    text = path.read_text()
    assert key not in text
    assert key_digest(key) in text
    assert json.loads(text)["keys"][0]["name"] == "alice"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert record.fingerprint == "fp-" + key_digest(key)[:12]


def test_duplicate_names_and_bad_names_are_refused(tmp_path):
    path = tmp_path / "keys.json"
    create_key(path, "alice")
    with pytest.raises(KeyFileError, match="already exists"):
        create_key(path, "alice")
    with pytest.raises(KeyFileError, match="key name"):
        create_key(path, "bad name!")
    with pytest.raises(ValueError, match="unknown role"):
        create_key(path, "carol", role="admin")


def test_env_keys_are_comma_separated_and_blanks_ignored():
    k1, k2 = keys.generate_key(), keys.generate_key()
    records = keys.keys_from_env(f" {k1} ,, {k2},")
    assert [r.name for r in records] == ["env-1", "env-2"]
    ring = KeyRing(records)
    assert ring.lookup(k1).name == "env-1"
    assert ring.lookup(k2).name == "env-2"


def test_from_sources_reads_the_environment_variable(monkeypatch, tmp_path):
    key = keys.generate_key()
    monkeypatch.setenv(keys.ENV_VAR, key)
    file_key, _ = create_key(tmp_path / "k.json", "bob")
    ring = KeyRing.from_sources(tmp_path / "k.json")
    assert ring.lookup(key).name == "env-1"
    assert ring.lookup(file_key).name == "bob"


@pytest.mark.parametrize(
    "presented",
    [b"", b"x", "sk-mcp-é".encode(), b"\xff\xfe\x00", "ключ", b"a" * (keys.MAX_KEY_BYTES + 1), "sk-mcp-\udcff"],
)
def test_lookup_is_safe_for_any_input(presented):
    ring = KeyRing.from_keys({"alice": keys.generate_key()})
    assert ring.lookup(presented) is None


def test_oversized_input_is_refused_even_if_its_digest_were_valid():
    long_key = "k" * (keys.MAX_KEY_BYTES + 1)
    ring = KeyRing.from_keys({"long": long_key})
    assert ring.lookup(long_key) is None


def test_revoke_and_rotate(tmp_path):
    path = tmp_path / "keys.json"
    old_key, _ = create_key(path, "alice", role="viewer")
    new_key, new, old = rotate_key(path, "alice")
    assert (new.name, new.role, old.name) == ("alice", "viewer", "alice.previous")
    ring = KeyRing(key_file=path)
    assert ring.lookup(old_key).name == "alice.previous"  # both valid during the change-over
    assert ring.lookup(new_key).name == "alice"
    with pytest.raises(KeyFileError, match="still exists"):
        rotate_key(path, "alice")
    revoke_key(path, "alice.previous")
    assert KeyRing(key_file=path).lookup(old_key) is None
    with pytest.raises(KeyFileError, match="no key named"):
        revoke_key(path, "nobody")


def test_keyring_notices_file_changes_without_restart(tmp_path):
    path = tmp_path / "keys.json"
    key, _ = create_key(path, "alice")
    ring = KeyRing(key_file=path, reload_interval=0.05)
    assert ring.lookup(key) is not None
    revoke_key(path, "alice")
    deadline = time.monotonic() + 2
    while ring.lookup(key) is not None:
        assert time.monotonic() < deadline, "revocation not noticed within 2 s"
        time.sleep(0.02)
    later, _ = create_key(path, "bob")
    time.sleep(0.06)
    assert ring.lookup(later).name == "bob"


def test_a_broken_keys_file_keeps_the_last_good_set(tmp_path):
    path = tmp_path / "keys.json"
    key, _ = create_key(path, "alice")
    ring = KeyRing(key_file=path, reload_interval=0)
    path.write_text("{ not json")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    assert ring.lookup(key).name == "alice"
    with pytest.raises(KeyFileError):
        KeyRing(key_file=path)


def test_in_memory_add_and_revoke():
    ring = KeyRing()
    key = keys.generate_key()
    ring.add("widget", key, role="viewer")
    assert ring.lookup(key).scopes == frozenset({"list:read", "orders:read"})
    assert ring.revoke("widget") is True
    assert ring.lookup(key) is None
    assert ring.revoke("widget") is False


def test_update_external_replaces_a_third_set_alongside_env_and_file(tmp_path):
    path = tmp_path / "keys.json"
    file_key, _ = create_key(path, "filed")
    env_key, shared_a, shared_b = keys.generate_key(), keys.generate_key(), keys.generate_key()
    ring = KeyRing(keys.keys_from_env(env_key), key_file=path)
    ring.update_external([keys.KeyRecord(name="shared-a", sha256=key_digest(shared_a))])
    assert ring.lookup(shared_a).name == "shared-a"
    ring.update_external([keys.KeyRecord(name="shared-b", sha256=key_digest(shared_b), role="viewer")])
    assert ring.lookup(shared_a) is None  # missing from the store's new set: revoked
    assert ring.lookup(shared_b).role == "viewer"
    assert ring.lookup(env_key).name == "env-1" and ring.lookup(file_key).name == "filed"
    ring.update_external(None)
    assert ring.lookup(shared_b) is None
    assert {r.name for r in ring.records()} == {"env-1", "filed"}
