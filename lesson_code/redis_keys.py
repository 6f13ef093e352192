"""The shared key store: the keys file's records, kept in Redis for a cluster of replicas.

Why Redis and why this shape:

* Several replicas behind a load balancer must agree on which keys are valid;
  a keys file per machine cannot (revoke on one, the others still accept). One
  Redis holds the one truth, and every replica keeps a copy in memory.
* What is stored is exactly what the keys file stores: name, role, created and
  the SHA-256 digest, never a key. A dump of Redis gives nothing to send.
* All records live in one hash (field = key name, value = the record as JSON),
  so one `HGETALL` reads a consistent set. Every change runs as one
  transaction (`WATCH` the hash, check, then `MULTI`/`EXEC`): the change, a
  version counter bump and a `PUBLISH` on a channel happen together or not at
  all. Two concurrent `keys` commands never lose an update: the loser's
  `WATCH` fails and it retries against the new state.
* The checks and messages are the keys file's, from `lesson_code.keys` (the
  same name rules, the same roles, the same refusals, the same entry-by-entry
  validation of what is read back; its private helpers are reused on purpose
  so the two stores can never drift apart), so `keys ... --redis URL` behaves
  exactly like `keys ... --keys-file FILE`.

Replicas read this store through `lesson_code.redis_sync`, never per request.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import redis

from lesson_code import keys
from lesson_code.keys import PREVIOUS_SUFFIX, KeyFileError, KeyRecord
from lesson_code.roles import DEFAULT_ROLE

DEFAULT_PREFIX: Final = "mcp:keys"
SOCKET_TIMEOUT: Final = 2.0  # seconds; a hung Redis must not hang a command or a replica


def display_url(url: str) -> str:
    """The Redis URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{netloc}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def connect(url: str, *, timeout: float = SOCKET_TIMEOUT) -> redis.Redis:
    """A synchronous Redis client with bounded connect and read timeouts."""
    try:
        return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True)
    except ValueError as exc:  # a malformed URL
        raise KeyFileError(f"invalid Redis URL {display_url(url)!r}: {exc}") from None


def record_to_json(record: KeyRecord) -> str:
    return json.dumps(asdict(record), separators=(",", ":"), sort_keys=True)


class KeyStoreUnavailable(KeyFileError):
    """Redis cannot be reached (or refuses us): the store's content is unknown, not wrong."""


@dataclass(frozen=True)
class Snapshot:
    """The whole key set as one consistent read: the records and the version they belong to."""

    version: int
    records: list[KeyRecord]


class RedisKeyStore:
    """Create, list, revoke and rotate keys in Redis, with the keys file's rules and messages.

    `where` in messages is the URL without its password, as the file's path is for a file.
    """

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, client: redis.Redis | None = None) -> None:
        self.url = url
        self.where = display_url(url)
        self.prefix = prefix
        self.records_key = f"{prefix}:records"
        self.version_key = f"{prefix}:version"
        self.channel = f"{prefix}:changes"
        self.client = client if client is not None else connect(url)

    # -- reading -------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Records and version in one transaction; a bad entry raises `KeyFileError` naming it."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(self.records_key)
        pipe.get(self.version_key)
        raw, version = self._run(pipe.execute)
        return Snapshot(int(version or 0), self._parse(raw))

    def version(self) -> int:
        return int(self._run(self.client.get, self.version_key) or 0)

    def records(self) -> list[KeyRecord]:
        """The stored records, sorted by name (what `keys list` shows)."""
        return sorted(self.snapshot().records, key=lambda r: r.name)

    # -- changing (each one atomic; all bump the version and publish it) --------------

    def create(self, name: str, role: str = DEFAULT_ROLE) -> tuple[str, KeyRecord]:
        """Create a key named `name`, store its digest, and return the key (shown once)."""
        name = keys._valid_name(name)
        if name.endswith(PREVIOUS_SUFFIX):
            raise KeyFileError(f"names ending in {PREVIOUS_SUFFIX!r} are kept for `keys rotate`: choose another name")
        keys._check_role(role)
        key = keys.generate_key()
        record = KeyRecord(name=name, sha256=keys.key_digest(key), role=role, created=keys._now())

        def change(current: dict[str, KeyRecord]) -> dict[str, str | None]:
            if name in current:
                raise KeyFileError(f"a key named {name!r} already exists: revoke or rotate it instead")
            return {name: record_to_json(record)}

        self._change(change)
        return key, record

    def revoke(self, name: str) -> KeyRecord:
        """Remove the key named `name`; every replica refuses it within about a second."""
        removed: list[KeyRecord] = []

        def change(current: dict[str, KeyRecord]) -> dict[str, str | None]:
            removed.clear()
            if name not in current:
                raise KeyFileError(f"no key named {keys._shown(name)} in {self.where}")
            removed.append(current[name])
            return {name: None}

        self._change(change)
        return removed[0]

    def rotate(self, name: str) -> tuple[str, KeyRecord, KeyRecord]:
        """Issue a new key for `name`; the old one stays valid as `<name>.previous` until revoked.

        Returns (new key, new record, old record as renamed).
        """
        previous_name = keys.rotated_name(name)
        key = keys.generate_key()
        result: list[tuple[KeyRecord, KeyRecord]] = []

        def change(current: dict[str, KeyRecord]) -> dict[str, str | None]:
            result.clear()
            old = current.get(name)
            if old is None:
                raise KeyFileError(f"no key named {keys._shown(name)} in {self.where}")
            if previous_name in current:
                raise KeyFileError(f"{previous_name!r} still exists: revoke it before rotating {name!r} again")
            renamed = KeyRecord(name=previous_name, sha256=old.sha256, role=old.role, created=old.created)
            new = KeyRecord(name=name, sha256=keys.key_digest(key), role=old.role, created=keys._now())
            result.append((new, renamed))
            return {previous_name: record_to_json(renamed), name: record_to_json(new)}

        self._change(change)
        new, renamed = result[0]
        return key, new, renamed

    def clear(self) -> None:
        """Remove every record (tests and lessons start from an empty store)."""
        self._change(lambda current: dict.fromkeys(current))

    # -- helpers -------------------------------------------------------------------

    def _change(self, change: Any) -> int:
        """Run `change(current records) -> {name: json or None}` atomically; returns the new version.

        WATCH makes EXEC fail if anyone changed the hash meanwhile; redis-py's
        `transaction` helper then runs `change` again on the fresh state.
        """

        def attempt(pipe: redis.client.Pipeline) -> None:
            current = {r.name: r for r in self._parse(pipe.hgetall(self.records_key))}
            updates: dict[str, str | None] = change(current)
            pipe.multi()
            for field, value in updates.items():
                if value is None:
                    pipe.hdel(self.records_key, field)
                else:
                    pipe.hset(self.records_key, field, value)
            pipe.incr(self.version_key)
            pipe.publish(self.channel, "changed")

        results = self._run(self.client.transaction, attempt, self.records_key)
        return int(results[-2])

    def _parse(self, raw: Any) -> list[KeyRecord]:
        """Records from an HGETALL reply ({name: JSON}), validated entry by entry as the keys file is."""
        entries: list[object] = []
        for field in sorted(raw):
            try:
                entry = json.loads(raw[field])
            except ValueError:
                raise KeyFileError(f"the key store {self.where} is invalid: {keys._shown(field)} is not JSON") from None
            if not isinstance(entry, dict) or entry.get("name") != field:
                raise KeyFileError(
                    f"the key store {self.where} is invalid: {keys._shown(field)} holds another name's record"
                )
            entries.append(entry)
        try:
            return keys._records_from_json({"keys": entries})
        except KeyFileError as exc:
            raise KeyFileError(f"the key store {self.where} is invalid: {exc}") from None

    def _run(self, function: Any, *args: Any) -> Any:
        """Call Redis; an unreachable or failing Redis is one clear `KeyFileError`."""
        try:
            return function(*args)
        except redis.exceptions.AuthenticationError:
            raise KeyStoreUnavailable(f"Redis at {self.where} refused the credentials in the URL") from None
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise KeyStoreUnavailable(
                f"cannot reach Redis at {self.where} ({exc.__class__.__name__}): is redis-server running?"
            ) from None
        except redis.exceptions.ResponseError as exc:
            raise KeyFileError(f"Redis at {self.where} answered an error: {exc}") from None

    def close(self) -> None:
        self.client.close()
