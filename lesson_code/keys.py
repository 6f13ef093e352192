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
* Keys come from the `MCP_API_KEYS` environment variable (comma-separated),
  a keys file, and (in a cluster) a shared store; a `KeyRing` holds the current
  set and notices when the file changes, so revocation needs no restart.
  Environment keys shorter than `MIN_KEY_CHARS` random characters are refused:
  the throttle serves valid keys unconditionally, which is safe only because
  keys cannot be guessed.
* The keys file is one truth: `create_key`, `revoke_key` and `rotate_key` hold
  a lock file beside it (`filelock`) for the whole read-modify-write and replace
  the file atomically, so two commands at the same moment never lose an update.
  A file that does not validate is never half-used: the ring keeps the last
  good set, says so once per change in the log and in `KeyRing.problem`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final, Protocol

import filelock

from lesson_code.roles import DEFAULT_ROLE, ROLES, scopes_for

KEY_PREFIX: Final = "sk-mcp-"
KEY_RANDOM_BYTES: Final = 32  # 256 bits; the issue asks for at least 128
MIN_KEY_CHARS: Final = 32  # random characters an environment key needs (after the prefix, if it has one)
MAX_KEY_BYTES: Final = 256
ENV_VAR: Final = "MCP_API_KEYS"
FINGERPRINT_CHARS: Final = 12
MAX_NAME_CHARS: Final = 64
NAME_RULE: Final = "a key name is 1-64 ASCII letters, digits, '.', '_' or '-'"
PREVIOUS_SUFFIX: Final = ".previous"
LOCK_TIMEOUT_SECONDS: Final = 10.0

_NAME_PATTERN: Final = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_NAME_CHARS}}}")
_DIGEST_PATTERN: Final = re.compile(r"[0-9a-f]{64}")
_FIELDS: Final = frozenset({"name", "sha256", "role", "created"})

logger = logging.getLogger(__name__)


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


class RevealsKey(Protocol):
    """A key that hides itself until asked, such as `lesson_code.masked_key.MaskedKey`."""

    def reveal(self) -> str: ...


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
    """Read and validate the records in a keys file; a missing file holds no keys.

    Any problem (bad JSON, a missing field, an unknown role, a bad name, a name
    or key used twice) raises `KeyFileError` naming the file and the entry,
    never a key.
    """
    file = Path(path)
    if not file.exists():
        return []
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise KeyFileError(f"keys file {file} is invalid: {_short(exc)}") from None
    try:
        return _records_from_json(data)
    except KeyFileError as exc:
        raise KeyFileError(f"keys file {file} is invalid: {exc}") from None


def _records_from_json(data: object) -> list[KeyRecord]:
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise KeyFileError('expected an object {"keys": [...]}')
    records: list[KeyRecord] = []
    names: dict[str, int] = {}
    digests: dict[str, int] = {}
    for position, entry in enumerate(data["keys"], start=1):
        where = f"entry {position}"
        if not isinstance(entry, dict):
            raise KeyFileError(f"{where} is not an object")
        name = entry.get("name")
        if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
            raise KeyFileError(f"{where} has the name {_shown(name)}: {NAME_RULE}")
        where = f"{where} ({name!r})"
        unknown = sorted(set(entry) - _FIELDS)
        if unknown:
            raise KeyFileError(f"{where} has unknown fields {', '.join(map(_shown, unknown))}")
        digest = entry.get("sha256")
        if not isinstance(digest, str) or not _DIGEST_PATTERN.fullmatch(digest):
            raise KeyFileError(f"{where}: sha256 must be 64 lower-case hex digits (the file holds digests, never keys)")
        role = entry.get("role", DEFAULT_ROLE)
        if role not in ROLES:
            raise KeyFileError(f"{where} has the unknown role {_shown(role)}: choose one of {', '.join(sorted(ROLES))}")
        created = entry.get("created", "")
        if not isinstance(created, str):
            raise KeyFileError(f"{where}: created must be a string")
        if name in names:
            raise KeyFileError(f"{where}: the name is also used by entry {names[name]}")
        if digest in digests:
            raise KeyFileError(f"{where} holds the same key as entry {digests[digest]}")
        names[name], digests[digest] = position, position
        records.append(KeyRecord(name=name, sha256=digest, role=role, created=created))
    return records


def write_key_file(path: str | Path, records: list[KeyRecord]) -> None:
    """Replace the keys file atomically, readable by its owner only.

    A symlink is followed: the file it points to is replaced, the link stays.
    Callers that read, change and write hold `keys_file_lock(path)` around all three.
    """
    file = _target(path)
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


@contextlib.contextmanager
def keys_file_lock(path: str | Path, *, create: bool = False) -> Iterator[None]:
    """Hold the lock beside the keys file (`<file>.lock`) that serialises read-modify-write.

    The lock sits beside the symlink's target, so commands given the link and
    commands given the target share it. Waiting longer than
    `LOCK_TIMEOUT_SECONDS` raises `KeyFileError`. Only `create` makes a missing
    folder; otherwise a missing folder means there is no keys file to change.
    """
    file = _target(path)
    if create:
        file.parent.mkdir(parents=True, exist_ok=True)
    elif not file.parent.is_dir():
        raise KeyFileError(f"there is no keys file at {path}")
    lock_path = file.with_name(file.name + ".lock")
    try:
        with filelock.FileLock(lock_path, timeout=LOCK_TIMEOUT_SECONDS, mode=0o600):
            yield
    except filelock.Timeout:
        raise KeyFileError(
            f"another command has held {lock_path} for {LOCK_TIMEOUT_SECONDS:g} s: try again, "
            "or delete the lock file if no `keys` command is running"
        ) from None


def create_key(path: str | Path, name: str, role: str = DEFAULT_ROLE) -> tuple[str, KeyRecord]:
    """Create a key named `name`, store its digest, and return the key (shown once)."""
    name = _valid_name(name)
    if name.endswith(PREVIOUS_SUFFIX):
        raise KeyFileError(f"names ending in {PREVIOUS_SUFFIX!r} are kept for `keys rotate`: choose another name")
    _check_role(role)
    with keys_file_lock(path, create=True):
        records = read_key_file(path)
        if any(r.name == name for r in records):
            raise KeyFileError(f"a key named {name!r} already exists: revoke or rotate it instead")
        key = generate_key()
        record = KeyRecord(name=name, sha256=key_digest(key), role=role, created=_now())
        write_key_file(path, [*records, record])
    return key, record


def revoke_key(path: str | Path, name: str) -> KeyRecord:
    """Remove the key named `name`; a running server stops accepting it within a second or two."""
    with keys_file_lock(path):
        records = read_key_file(path)
        kept = [r for r in records if r.name != name]
        if len(kept) == len(records):
            raise KeyFileError(f"no key named {_shown(name)} in {path}")
        write_key_file(path, kept)
    return next(r for r in records if r.name == name)


def rotated_name(name: str) -> str:
    """The name `name`'s old key takes in a rotation (`<name>.previous`), or KeyFileError if it cannot rotate.

    One rule for the key file and the Redis store: an old key is not rotated again, and the
    renamed key must still be a valid name.
    """
    if name.endswith(PREVIOUS_SUFFIX):
        base = name[: -len(PREVIOUS_SUFFIX)]
        raise KeyFileError(
            f"{_shown(name)} is the old key of a rotation: rotate the base name ({_shown(base)}), "
            f"or revoke {_shown(name)}"
        )
    previous_name = name + PREVIOUS_SUFFIX
    if not _NAME_PATTERN.fullmatch(previous_name):
        raise KeyFileError(f"cannot rotate {_shown(name)}: {previous_name!r} would break the rule ({NAME_RULE})")
    return previous_name


def rotate_key(path: str | Path, name: str) -> tuple[str, KeyRecord, KeyRecord]:
    """Issue a new key for `name`; the old one stays valid as `<name>.previous` until revoked.

    Both keys work during the change-over, so clients can move one by one.
    Returns (new key, new record, old record as renamed).
    """
    previous_name = rotated_name(name)
    with keys_file_lock(path):
        records = read_key_file(path)
        old = next((r for r in records if r.name == name), None)
        if old is None:
            raise KeyFileError(f"no key named {_shown(name)} in {path}")
        if any(r.name == previous_name for r in records):
            raise KeyFileError(f"{previous_name!r} still exists: revoke it before rotating {name!r} again")
        key = generate_key()
        renamed = KeyRecord(name=previous_name, sha256=old.sha256, role=old.role, created=old.created)
        new = KeyRecord(name=name, sha256=key_digest(key), role=old.role, created=_now())
        write_key_file(path, [renamed if r is old else r for r in records] + [new])
    return key, new, renamed


class WeakKeyError(KeyFileError):
    """A key given in the environment is too short to be safe."""


def keys_from_env(value: str | None = None) -> list[KeyRecord]:
    """Records for the keys in `MCP_API_KEYS` (comma-separated), named env-1, env-2, ..."""
    raw = os.environ.get(ENV_VAR, "") if value is None else value
    keys = [part.strip() for part in raw.split(",") if part.strip()]
    return [KeyRecord(name=f"env-{i}", sha256=key_digest(k)) for i, k in enumerate(keys, start=1)]


def refuse_weak_env_keys(value: str | None = None) -> None:
    """Raise `WeakKeyError` if a key in `MCP_API_KEYS` is too short to be safe.

    A key needs at least `MIN_KEY_CHARS` characters after `sk-mcp-` (or in all,
    without the prefix). The message names the entry's position, never the
    key. Long random keys are what make it safe to serve a valid key however
    many wrong ones its address has sent.
    """
    raw = os.environ.get(ENV_VAR, "") if value is None else value
    keys = [part.strip() for part in raw.split(",") if part.strip()]
    for position, key in enumerate(keys, start=1):
        random_part = key[len(KEY_PREFIX) :] if key.startswith(KEY_PREFIX) else key
        if len(random_part) < MIN_KEY_CHARS:
            raise WeakKeyError(
                f"{ENV_VAR} entry {position} is too short: a key needs at least {MIN_KEY_CHARS} random characters "
                f"after {KEY_PREFIX!r}; make one with `python -m lesson_code keys generate`"
            )


# --- the set the server checks against ---------------------------------------------


class KeyRing:
    """The set of valid keys, as a dict from digest to record.

    Three sources: fixed records (the environment, or keys added in a
    notebook), a keys file, and an external store (a cluster's shared store,
    see `update_external`). Lookups are lock-free: the dict is replaced whole,
    never mutated in place, so a reader always sees a complete set. A keys
    file, if given, is re-read when it changes (checked at most every
    `reload_interval` seconds). A file that does not validate on first load
    raises `KeyFileError`; later, the ring keeps the last good set, logs one
    line per change of the file and shows the reason in `problem`.
    """

    def __init__(
        self,
        records: list[KeyRecord] | None = None,
        *,
        key_file: str | Path | None = None,
        reload_interval: float = 0.5,
    ) -> None:
        self._fixed = list(records or [])
        self._external: list[KeyRecord] | None = None
        self._file_records: list[KeyRecord] = []
        self._problem: str | None = None
        self.key_file = Path(key_file) if key_file is not None else None
        self.reload_interval = reload_interval
        self._lock = threading.Lock()
        self._file_state: tuple[int, int, int] | None = None
        self._next_check = 0.0
        self._by_digest: dict[str, KeyRecord] = {}
        if self.key_file is not None:
            self._file_state = self._stat()
            self._file_records = read_key_file(self.key_file)  # invalid on first load: raise
        self._rebuild()

    # construction helpers

    @classmethod
    def from_keys(cls, keys: dict[str, str], role: str = DEFAULT_ROLE) -> KeyRing:
        """A ring from {name: key}; handy in notebooks and tests."""
        return cls([KeyRecord(name=n, sha256=key_digest(k), role=role) for n, k in keys.items()])

    @classmethod
    def from_sources(cls, key_file: str | Path | None = None, env_value: str | None = None) -> KeyRing:
        """Keys from the environment variable and/or the keys file (the server's usual setup).

        A weak key in the environment raises `WeakKeyError`; an invalid keys file raises `KeyFileError`.
        """
        refuse_weak_env_keys(env_value)
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

    @property
    def problem(self) -> str | None:
        """Why the keys file's current content is not in use (None when it is, or when there is no file)."""
        return self._problem

    # in-memory changes (notebooks); a keys file is changed with create_key/revoke_key

    def add(self, name: str, key: str | RevealsKey, role: str = DEFAULT_ROLE) -> KeyRecord:
        """Put `key` on the ring under `name` (a `MaskedKey` is revealed to digest it; only the digest is kept)."""
        _check_role(role)
        plain = key if isinstance(key, str) else key.reveal()
        record = KeyRecord(name=_valid_name(name), sha256=key_digest(plain), role=role, created=_now())
        with self._lock:
            self._fixed = [r for r in self._fixed if r.name != record.name] + [record]
            self._rebuild()
        return record

    def revoke(self, name: str) -> bool:
        """Drop an in-memory key by name; True if one was dropped."""
        with self._lock:
            before = len(self._fixed)
            self._fixed = [r for r in self._fixed if r.name != name]
            self._rebuild()
            return len(self._fixed) != before

    def update_external(self, records: Iterable[KeyRecord] | None) -> None:
        """Replace, atomically, the records that come from an external store (e.g. a cluster's shared store).

        `records` is the store's complete current set, which replaces the
        previous one whole (a key missing from it is revoked); None means
        there is no external source. The environment's and the keys file's
        records are kept. Readers never see a half-applied update: the lookup
        dict is rebuilt and swapped in one assignment.
        """
        snapshot = None if records is None else list(records)
        with self._lock:
            self._external = snapshot
            self._rebuild()

    # reloading

    def refresh(self, *, force: bool = False) -> bool:
        """Re-read the keys file if it changed; True if the file was read again."""
        if self.key_file is None:
            return False
        now = time.monotonic()
        if not force and now < self._next_check:
            return False
        with self._lock:
            self._next_check = now + self.reload_interval
            state = self._stat()
            if state == self._file_state and not force:
                return False
            self._file_state = state
            self._reload_file()
            return True

    def _stat(self) -> tuple[int, int, int] | None:
        assert self.key_file is not None
        try:
            st = os.stat(self.key_file)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _reload_file(self) -> None:
        assert self.key_file is not None
        try:
            records = read_key_file(self.key_file)
        except KeyFileError as exc:
            self._problem = str(exc)
            logger.error(
                "%s. Still using the last good set of keys: changes in this edit, revocations included, "
                "take effect only once the file is valid again.",
                exc,
            )
            return
        if self._problem is not None:
            logger.warning("keys file %s is valid again: %d keys loaded from it", self.key_file, len(records))
        self._problem = None
        self._file_records = records
        self._rebuild()

    def _rebuild(self) -> None:
        sources = [*self._fixed, *self._file_records, *(self._external or [])]
        self._by_digest = {r.sha256: r for r in sources}


def _valid_name(name: str) -> str:
    name = name.strip()
    if not _NAME_PATTERN.fullmatch(name):
        raise KeyFileError(NAME_RULE)
    return name


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise KeyFileError(f"unknown role {_shown(role)}: choose one of {', '.join(sorted(ROLES))}")


def _target(path: str | Path) -> Path:
    """The file a path names, through any symlinks (so a replace keeps the link)."""
    return Path(os.path.realpath(path))


def _shown(value: object, limit: int = 40) -> str:
    """A value from a file or a command line, quoted and cut short for a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(exc: BaseException) -> str:
    return _shown(str(exc), 200).strip("'\"")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
