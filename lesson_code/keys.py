"""API keys: how they are made, stored, loaded and checked.

The rules, each with its reason:

* A key is `sk-mcp-` plus 43 URL-safe characters from `secrets` (256 bits). The
  prefix lets secret scanners and humans recognise a leaked key at a glance;
  the randomness makes guessing hopeless.
* The server never stores a key, only its SHA-256 digest. A stolen keys file
  then gives an attacker nothing to send. The key is shown once, when created.
* Checking a key hashes the presented raw bytes and looks the digest up in a
  dict: O(1) however many keys exist, no `str` comparison that can fail on
  non-ASCII input, and no timing leak worth having (an attacker cannot steer
  a SHA-256 digest byte by byte). Input longer than `MAX_KEY_BYTES` is refused
  before hashing, so a huge header costs nothing.
* Keys come from the `MCP_API_KEYS` environment variable (comma-separated)
  and/or a keys file; a `KeyRing` holds the current set and notices when the
  file changes, so revocation needs no restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from lesson_code.roles import DEFAULT_ROLE, scopes_for

KEY_PREFIX: Final = "sk-mcp-"
KEY_RANDOM_BYTES: Final = 32  # 256 bits; the issue asks for at least 128
MAX_KEY_BYTES: Final = 256
ENV_VAR: Final = "MCP_API_KEYS"
FINGERPRINT_CHARS: Final = 12


def generate_key() -> str:
    """A new random API key, e.g. `sk-mcp-3q2...` (50 characters)."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def key_digest(key: str | bytes) -> str:
    """The hex SHA-256 of a key's bytes: what the server stores and compares."""
    raw = key.encode("utf-8") if isinstance(key, str) else key
    return hashlib.sha256(raw).hexdigest()


def mask(key: str) -> str:
    """A key with all but its first few characters hidden, for display: `sk-mcp-3q2X…`."""
    visible = len(KEY_PREFIX) + 4 if key.startswith(KEY_PREFIX) else 4
    return key[:visible] + "…"


def fingerprint(digest: str) -> str:
    """A short, safe-to-show label for a key, derived from its digest."""
    return "fp-" + digest[:FINGERPRINT_CHARS]


@dataclass(frozen=True)
class KeyRecord:
    """What the server knows about one key: never the key itself."""

    name: str
    sha256: str
    role: str = DEFAULT_ROLE
    created: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.sha256)

    @property
    def scopes(self) -> frozenset[str]:
        return scopes_for(self.role)


class KeyFileError(ValueError):
    """The keys file is unreadable, malformed, or a request on it makes no sense."""


# --- the keys file ----------------------------------------------------------------


def read_key_file(path: str | Path) -> list[KeyRecord]:
    """Read the records in a keys file; a missing file holds no keys."""
    file = Path(path)
    if not file.exists():
        return []
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        records = [KeyRecord(**entry) for entry in data["keys"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"cannot read keys file {file}: {exc}") from None
    for record in records:
        scopes_for(record.role)  # fail early on an unknown role
    return records


def write_key_file(path: str | Path, records: list[KeyRecord]) -> None:
    """Replace the keys file atomically, readable by its owner only."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"keys": [asdict(r) for r in records]}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=file.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def create_key(path: str | Path, name: str, role: str = DEFAULT_ROLE) -> tuple[str, KeyRecord]:
    """Create a key named `name`, store its digest, and return the key (shown once)."""
    name = _valid_name(name)
    scopes_for(role)
    records = read_key_file(path)
    if any(r.name == name for r in records):
        raise KeyFileError(f"a key named {name!r} already exists: revoke or rotate it instead")
    key = generate_key()
    record = KeyRecord(name=name, sha256=key_digest(key), role=role, created=_now())
    write_key_file(path, [*records, record])
    return key, record


def revoke_key(path: str | Path, name: str) -> KeyRecord:
    """Remove the key named `name`; a running server stops accepting it within a second or two."""
    records = read_key_file(path)
    kept = [r for r in records if r.name != name]
    if len(kept) == len(records):
        raise KeyFileError(f"no key named {name!r} in {path}")
    write_key_file(path, kept)
    return next(r for r in records if r.name == name)


def rotate_key(path: str | Path, name: str) -> tuple[str, KeyRecord, KeyRecord]:
    """Issue a new key for `name`; the old one stays valid as `<name>.previous` until revoked.

    Both keys work during the change-over, so clients can move one by one.
    Returns (new key, new record, old record as renamed).
    """
    records = read_key_file(path)
    old = next((r for r in records if r.name == name), None)
    if old is None:
        raise KeyFileError(f"no key named {name!r} in {path}")
    previous_name = f"{name}.previous"
    if any(r.name == previous_name for r in records):
        raise KeyFileError(f"{previous_name!r} still exists: revoke it before rotating {name!r} again")
    key = generate_key()
    renamed = KeyRecord(name=previous_name, sha256=old.sha256, role=old.role, created=old.created)
    new = KeyRecord(name=name, sha256=key_digest(key), role=old.role, created=_now())
    write_key_file(path, [renamed if r is old else r for r in records] + [new])
    return key, new, renamed


def keys_from_env(value: str | None = None) -> list[KeyRecord]:
    """Records for the keys in `MCP_API_KEYS` (comma-separated), named env-1, env-2, ..."""
    raw = os.environ.get(ENV_VAR, "") if value is None else value
    keys = [part.strip() for part in raw.split(",") if part.strip()]
    return [KeyRecord(name=f"env-{i}", sha256=key_digest(k)) for i, k in enumerate(keys, start=1)]


# --- the set the server checks against ---------------------------------------------


class KeyRing:
    """The set of valid keys, as a dict from digest to record.

    Lookups are lock-free: the dict is replaced whole, never mutated in place,
    so a reader always sees a complete set. A keys file, if given, is re-read
    when its modification time or size changes, checked at most every
    `reload_interval` seconds.
    """

    def __init__(
        self,
        records: list[KeyRecord] | None = None,
        *,
        key_file: str | Path | None = None,
        reload_interval: float = 0.5,
    ) -> None:
        self._fixed = list(records or [])
        self.key_file = Path(key_file) if key_file is not None else None
        self.reload_interval = reload_interval
        self._lock = threading.Lock()
        self._file_state: tuple[int, int] | None = None
        self._next_check = 0.0
        self._by_digest: dict[str, KeyRecord] = {}
        self._rebuild(self._read_file())

    # construction helpers

    @classmethod
    def from_keys(cls, keys: dict[str, str], role: str = DEFAULT_ROLE) -> KeyRing:
        """A ring from {name: key}; handy in notebooks and tests."""
        return cls([KeyRecord(name=n, sha256=key_digest(k), role=role) for n, k in keys.items()])

    @classmethod
    def from_sources(cls, key_file: str | Path | None = None, env_value: str | None = None) -> KeyRing:
        """Keys from the environment variable and/or the keys file (the server's usual setup)."""
        return cls(keys_from_env(env_value), key_file=key_file)

    # checking

    def lookup(self, presented: bytes | str) -> KeyRecord | None:
        """The record for a presented key, or None. O(1), safe for any bytes."""
        raw = presented.encode("utf-8", "surrogateescape") if isinstance(presented, str) else presented
        if not raw or len(raw) > MAX_KEY_BYTES:
            return None
        self.refresh()
        return self._by_digest.get(hashlib.sha256(raw).hexdigest())

    def is_valid_digest(self, digest: str) -> bool:
        """Whether a key (by digest) is still in the set; used to end streams of revoked keys."""
        self.refresh()
        return digest in self._by_digest

    def __len__(self) -> int:
        return len(self._by_digest)

    def records(self) -> list[KeyRecord]:
        return sorted(self._by_digest.values(), key=lambda r: r.name)

    # in-memory changes (notebooks); a keys file is changed with create_key/revoke_key

    def add(self, name: str, key: str, role: str = DEFAULT_ROLE) -> KeyRecord:
        record = KeyRecord(name=_valid_name(name), sha256=key_digest(key), role=role, created=_now())
        scopes_for(role)
        with self._lock:
            self._fixed = [r for r in self._fixed if r.name != record.name] + [record]
            self._rebuild(self._file_records)
        return record

    def revoke(self, name: str) -> bool:
        """Drop an in-memory key by name; True if one was dropped."""
        with self._lock:
            before = len(self._fixed)
            self._fixed = [r for r in self._fixed if r.name != name]
            self._rebuild(self._file_records)
            return len(self._fixed) != before

    # reloading

    def refresh(self, *, force: bool = False) -> bool:
        """Re-read the keys file if it changed; True if the set was rebuilt."""
        if self.key_file is None:
            return False
        now = time.monotonic()
        if not force and now < self._next_check:
            return False
        with self._lock:
            self._next_check = now + self.reload_interval
            if self._stat() == self._file_state and not force:
                return False
            self._rebuild(self._read_file())
            return True

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.key_file)  # type: ignore[arg-type]
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _read_file(self) -> list[KeyRecord]:
        if self.key_file is None:
            self._file_records: list[KeyRecord] = []
            return []
        self._file_state = self._stat()
        try:
            self._file_records = read_key_file(self.key_file)
        except KeyFileError:
            if self._by_digest:  # a half-written or broken file: keep serving the last good set
                return self._file_records
            raise
        return self._file_records

    def _rebuild(self, file_records: list[KeyRecord]) -> None:
        self._by_digest = {r.sha256: r for r in [*self._fixed, *file_records]}


def _valid_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise KeyFileError("a key name is 1-64 letters, digits, '-', '_' or '.'")
    return name


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
