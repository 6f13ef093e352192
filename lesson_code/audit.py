"""An append-only audit log: one JSON object per line, one line per decision.

Every authentication decision and every tool call is written here with the
time, who (key name or fingerprint, never the key), from where, what, and the
outcome. JSON lines are easy to ship to a log store and easy to read back, which
`read_audit_log` does for the notebooks.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, TextIO


class AuditLog:
    """Writes audit events to a file, or keeps the latest ones in memory when no path is given.

    Writes are serialised with a lock and flushed at once, so a crash loses at
    most the line being written and two threads never interleave a line. The
    log sits on every request's path, so it avoids work it does not need: no
    JSON in memory mode, and the timestamp's seconds are formatted once a second.
    """

    def __init__(self, path: str | Path | None = None, *, memory_limit: int = 10_000) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self.memory_limit = memory_limit
        self._memory: deque[dict[str, Any]] = deque(maxlen=memory_limit)
        self._handle: TextIO | None = None
        self._second: tuple[int, str] = (-1, "")  # one tuple, swapped whole: safe across threads
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one event; `fields` must never hold a key (pass a name or a fingerprint)."""
        entry: dict[str, Any] = {"time": self._timestamp(), "event": event}
        for name, value in fields.items():
            if value is not None:
                entry[name] = value
        if self.path is None:
            self._memory.append(entry)  # deque.append is atomic; no lock needed
            return entry
        line = json.dumps(entry, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if self._handle is None:
                self._handle = self.path.open("a", encoding="utf-8")
            self._handle.write(line)
            self._handle.flush()
        return entry

    def entries(self) -> list[dict[str, Any]]:
        """Everything recorded so far (in memory: the latest `memory_limit`), oldest first."""
        if self.path is None:
            return list(self._memory)
        return read_audit_log(self.path)

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def _timestamp(self) -> str:
        now = time.time()
        second, text = self._second
        if int(now) != second:
            second = int(now)
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        return f"{text}.{int((now - second) * 1000):03d}Z"


def read_audit_log(path: str | Path, *, last: int | None = None) -> list[dict[str, Any]]:
    """Read a JSON-lines audit log back as dicts (the newest `last` ones if given).

    A torn last line (the process died mid-write) is skipped rather than fatal.
    """
    file = Path(path)
    if not file.exists():
        return []
    entries: list[dict[str, Any]] = []
    for line in file.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries[-last:] if last else entries
