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
from pathlib import Path
from typing import Any


class AuditLog:
    """Writes audit events to a file, or keeps them in memory when no path is given.

    Writes are serialised with a lock and flushed at once, so a crash loses at
    most the line being written and two threads never interleave a line.
    """

    def __init__(self, path: str | Path | None = None, *, memory_limit: int = 10_000) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._memory: list[dict[str, Any]] = []
        self._memory_limit = memory_limit
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one event; `fields` must never hold a key (pass a fingerprint)."""
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        entry: dict[str, Any] = {"time": stamp, "event": event}
        entry.update({k: v for k, v in fields.items() if v is not None})
        line = json.dumps(entry, ensure_ascii=False, default=str)
        with self._lock:
            if self.path is None:
                self._memory.append(entry)
                del self._memory[: -self._memory_limit]
            else:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
        return entry

    def entries(self) -> list[dict[str, Any]]:
        """Everything recorded so far, oldest first."""
        if self.path is None:
            with self._lock:
                return list(self._memory)
        return read_audit_log(self.path)


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
