"""An append-only audit log: one JSON object per line, one line per decision.

Every authentication decision and every tool call is written here with the
time, who (key name or fingerprint, never the key), from where, what, and the
outcome. JSON lines are easy to ship to a log store and easy to read back, which
`read_audit_log` does for the notebooks.

Three properties matter, each for a reason:

* One entry is one line, whatever the request held. Entries are written with
  `ensure_ascii=True`, so a path or header carrying U+2028, U+0085 or any other
  line break is escaped (`\\u2028`), and the reader splits on `\\n` only.
* The log never blocks the server on each request. `record` appends to a buffer;
  a daemon thread writes the buffer every `flush_interval` seconds (0.2 s by
  default), sooner when it holds `max_buffered` entries, and `close()` writes
  everything. A clean shutdown loses nothing; a hard crash (SIGKILL, power
  loss) loses at most the last `flush_interval` seconds of entries.
* A flood cannot fill the disk through it. Throttled refusals are aggregated
  (`record_throttled`): the first from an address in a window is written, the
  rest are counted, and one summary entry with `count` is written when the
  window ends, when the address is next seen after it, or at `close()`. The
  number of throttled requests is the sum of `entry.get("count", 1)`.

A new log file is created readable and writable by its owner only (0600): it
names keys, fingerprints and client addresses. A file that already exists keeps
the permissions its owner gave it.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

FLUSH_INTERVAL: Final = 0.2
MAX_BUFFERED: Final = 512
MAX_CLIENT_CHARS: Final = 64
SUMMARY_WINDOW: Final = 60.0
MAX_SUMMARIES: Final = 10_000
FILE_MODE: Final = 0o600
IDLE_SECONDS: Final = 5.0


@dataclass
class _Burst:
    """Throttled requests from one address within one summary window."""

    started: float  # monotonic
    first: str  # timestamp of the entry that was written
    last: str
    count: int  # requests since `first`, not written individually
    fields: dict[str, Any]


class AuditLog:
    """Writes audit events to a file through a buffer, or keeps the latest ones in memory when no path is given."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        memory_limit: int = 10_000,
        flush_interval: float = FLUSH_INTERVAL,
        max_buffered: int = MAX_BUFFERED,
        summary_window: float = SUMMARY_WINDOW,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.memory_limit = memory_limit
        self.flush_interval = flush_interval
        self.max_buffered = max_buffered
        self.summary_window = summary_window
        self._memory: deque[dict[str, Any]] = deque(maxlen=memory_limit)
        self._buffer: deque[str] = deque()  # encoded lines; append and popleft are atomic: no lock on the hot path
        self._write_lock = threading.Lock()
        self._state_lock = threading.RLock()  # record_throttled calls record, which may start the writer
        self._handle: TextIO | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._bursts: OrderedDict[str, _Burst] = OrderedDict()
        self._next_sweep = 0.0
        self._second: tuple[int, str] = (-1, "")  # one tuple, swapped whole: safe across threads
        self._custom_record = type(self).record is not AuditLog.record
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one event; `fields` must never hold a key (pass a name or a fingerprint)."""
        entry: dict[str, Any] = {"time": self._timestamp(), "event": event}
        for name, value in fields.items():
            if value is not None:
                entry[name] = value
        client = entry.get("client")
        if client is not None and len(client) > MAX_CLIENT_CHARS:
            entry["client"] = client[:MAX_CLIENT_CHARS]
        self._append(entry)
        return entry

    def record_auth(
        self, outcome: str, client: str, method: str, path: str, key: str | None = None, fingerprint: str | None = None
    ) -> None:
        """Record one decision of the key check (`key` is the key's name, never the key).

        The same entry `record("auth", ...)` would write, built directly: this runs on every request.
        A subclass that overrides `record` (to add fields) gets its `record` called instead.
        """
        if self._custom_record:  # a subclass adds to every entry: go through its record()
            self.record(
                "auth", outcome=outcome, key=key, fingerprint=fingerprint, client=client, method=method, path=path
            )
            return
        if len(client) > MAX_CLIENT_CHARS:
            client = client[:MAX_CLIENT_CHARS]
        if self.path is not None:  # the line itself, field by field: no dict, no encoder walk
            who = "" if key is None else f', "key": {_text(key)}'
            if fingerprint is not None:
                who += f', "fingerprint": {_text(fingerprint)}'
            self._append_line(
                f'{{"time": "{self._timestamp()}", "event": "auth", "outcome": {_text(outcome)}{who}, '
                f'"client": {_text(client)}, "method": {_text(method)}, "path": {_text(path)}}}'
            )
            return
        entry: dict[str, Any] = {"time": self._timestamp(), "event": "auth", "outcome": outcome}
        if key is not None:
            entry["key"] = key
        if fingerprint is not None:
            entry["fingerprint"] = fingerprint
        entry["client"] = client
        entry["method"] = method
        entry["path"] = path
        self._memory.append(entry)

    def record_tool_call(self, key: str, client: str | None, tool: str, outcome: str, detail: str | None) -> None:
        """Record one tool call's outcome; the entry `record("tool_call", ...)` would write, built directly."""
        if self._custom_record:
            self.record("tool_call", key=key, client=client, tool=tool, outcome=outcome, detail=detail)
            return
        if client is not None and len(client) > MAX_CLIENT_CHARS:
            client = client[:MAX_CLIENT_CHARS]
        if self.path is not None:
            where = "" if client is None else f', "client": {_text(client)}'
            why = "" if detail is None else f', "detail": {_text(detail)}'
            self._append_line(
                f'{{"time": "{self._timestamp()}", "event": "tool_call", "key": {_text(key)}{where}, '
                f'"tool": {_text(tool)}, "outcome": {_text(outcome)}{why}}}'
            )
            return
        entry: dict[str, Any] = {"time": self._timestamp(), "event": "tool_call", "key": key}
        if client is not None:
            entry["client"] = client
        entry["tool"] = tool
        entry["outcome"] = outcome
        if detail is not None:
            entry["detail"] = detail
        self._memory.append(entry)

    def _append(self, entry: dict[str, Any]) -> None:
        if self.path is None:
            self._memory.append(entry)  # deque.append is atomic; no lock needed
        else:
            self._append_line(_ENCODE(entry))

    def _append_line(self, line: str) -> None:
        """Queue one encoded entry for the writer thread (which only joins and writes)."""
        buffer = self._buffer
        buffer.append(line)  # deque.append is atomic; no lock on the hot path
        if self._thread is None:
            self._start()
        elif len(buffer) >= self.max_buffered:
            if len(buffer) >= 16 * self.max_buffered:  # the writer cannot keep up: write here, slow the caller
                self.flush()
            self._wake.set()

    def record_throttled(self, address: str, **fields: Any) -> None:
        """Record a throttled refusal from `address` (a throttle key), aggregated per address and window."""
        now = time.monotonic()
        with self._state_lock:
            burst = self._bursts.get(address)
            if burst is not None and now - burst.started < self.summary_window:
                burst.count += 1
                burst.last = self._timestamp()
                return
            if burst is not None:
                del self._bursts[address]
                self._summarise(burst)
            while len(self._bursts) >= MAX_SUMMARIES:
                self._summarise(self._bursts.popitem(last=False)[1])
            entry = self.record("auth", outcome="throttled", **fields)
            self._bursts[address] = _Burst(now, entry["time"], entry["time"], 0, fields)
        if now >= self._next_sweep:
            self._sweep(now)

    def flush(self) -> None:
        """Write every buffered entry to the file now."""
        if self.path is None:
            return
        with self._write_lock:
            lines = []
            while True:
                try:
                    lines.append(self._buffer.popleft())
                except IndexError:
                    break
            if not lines:
                return
            if self._handle is None:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
                self._handle = open(fd, "a", encoding="ascii")  # noqa: SIM115 (kept open; closed by close())
            self._handle.write("\n".join(lines) + "\n")
            self._handle.flush()

    def entries(self) -> list[dict[str, Any]]:
        """Everything recorded so far (in memory: the latest `memory_limit`), oldest first."""
        if self.path is None:
            return list(self._memory)
        self.flush()
        return read_audit_log(self.path)

    def close(self) -> None:
        """Write pending summaries and every buffered entry, stop the writer, close the file.

        The log stays usable: a later `record` starts a new writer (a notebook may share
        one log between servers that stop at different times).
        """
        with self._state_lock:
            thread, stop, self._thread = self._thread, self._stop, None
            while self._bursts:
                self._summarise(self._bursts.popitem(last=False)[1])
        if thread is not None and thread is not threading.current_thread():
            stop.set()
            self._wake.set()
            thread.join()
        self.flush()
        with self._write_lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    # internals

    def _start(self) -> None:
        with self._state_lock:
            if self._thread is not None:
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop,), name="audit-log-writer", daemon=True)
            self._thread.start()
            _OPEN_LOGS.add(self)

    def _run(self, stop: threading.Event) -> None:
        """Write the buffer every `flush_interval`; after a few idle seconds, end (`record` starts a new writer)."""
        idle = 0
        while not stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            now = time.monotonic()
            if now >= self._next_sweep:
                self._sweep(now)
            if self._buffer:
                self.flush()
                idle = 0
                continue
            idle += 1
            if idle * self.flush_interval >= IDLE_SECONDS and not self._bursts:
                with self._state_lock:
                    if self._thread is threading.current_thread():
                        self._thread = None
                self.flush()  # entries appended before `_thread` became None; later ones start a writer
                return

    def _sweep(self, now: float) -> None:
        """Summarise the bursts whose window has ended (at most once a second)."""
        self._next_sweep = now + 1.0
        with self._state_lock:
            ended = [a for a, b in self._bursts.items() if now - b.started >= self.summary_window]
            for address in ended:
                self._summarise(self._bursts.pop(address))

    def _summarise(self, burst: _Burst) -> None:
        if burst.count:
            fields = {**burst.fields, "count": burst.count, "first": burst.first, "last": burst.last}
            self.record("auth", outcome="throttled", **fields)

    def _timestamp(self) -> str:
        """UTC time with milliseconds, ISO 8601: the seconds are formatted once a second, the milliseconds looked up."""
        millis = time.time_ns() // 1_000_000  # integer arithmetic: int(float) costs more than all the rest
        second = millis // 1000
        cached = self._second
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second = cached
        return cached[1] + _MILLIS[millis - second * 1000]


_MILLIS: Final = tuple(f".{ms:03d}Z" for ms in range(1000))
_ENCODE: Final = json.JSONEncoder(ensure_ascii=True, default=str).encode  # one encoder, built once
_text: Final = json.encoder.encode_basestring_ascii  # a str as the JSON string _ENCODE would write for it


_OPEN_LOGS: weakref.WeakSet[AuditLog] = weakref.WeakSet()


@atexit.register
def _close_open_logs() -> None:
    """At interpreter exit, write what is still buffered: an owner that forgot `close()` loses nothing."""
    for log in list(_OPEN_LOGS):
        log.close()


def read_audit_log(path: str | Path, *, last: int | None = None) -> list[dict[str, Any]]:
    """Read a JSON-lines audit log back as dicts (the newest `last` ones if given).

    Lines are split on `\\n` only (never `str.splitlines()`, which also splits on
    U+2028, U+0085 and other characters a request may carry). A torn last line
    (the process died mid-write) is skipped rather than fatal. Entries still
    buffered by an `AuditLog` of this process are written first.
    """
    file = Path(path)
    for log in list(_OPEN_LOGS):  # an AuditLog in this process writing there: what it recorded is read back too
        if log.path is not None and log.path.resolve() == file.resolve():
            log.flush()
    if not file.exists():
        return []
    entries: list[dict[str, Any]] = []
    for line in file.read_text(encoding="utf-8").split("\n"):
        if not line:
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries[-last:] if last else entries
