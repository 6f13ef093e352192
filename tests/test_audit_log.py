"""The audit log: one JSON object per line whatever a request held, 0600 files, a buffered writer that loses nothing
on close or a clean shutdown, and throttled floods aggregated so they cannot fill the disk."""

from __future__ import annotations

import calendar
import json
import os
import stat
import time
from pathlib import Path

import anyio
import httpx
import pytest
from starlette.testclient import TestClient
from tests_support import Served, new_key

from lesson_code.app import create_secured_app
from lesson_code.audit import MAX_CLIENT_CHARS, AuditLog, read_audit_log
from lesson_code.auth import ApiKeyMiddleware
from lesson_code.keys import KeyRing, generate_key
from lesson_code.raw_requests import list_tools, tool_call
from lesson_code.throttle import FailedAttemptThrottle

# Every character str.splitlines() splits on, and the ASCII ones JSON escapes anyway.
LINE_BREAKS = ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
ODD = "".join(LINE_BREAKS)


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the audit writer"
        time.sleep(0.01)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1] if path.exists() else []


def test_every_line_break_stays_inside_its_entry(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path)
    for brk in LINE_BREAKS:
        audit.record("auth", outcome="allowed", key=f"k{brk}ey", client=f"10.0.0.1{brk}", path=f"/mcp{brk}x")
    audit.close()
    text = path.read_text(encoding="utf-8")
    assert text.isascii()  # U+2028 and friends are escaped, so no reader can split an entry
    assert len(text.splitlines()) == len(LINE_BREAKS)  # even str.splitlines() sees one line per entry
    entries = read_audit_log(path)
    assert [e["path"] for e in entries] == [f"/mcp{brk}x" for brk in LINE_BREAKS]  # and they read back intact


def test_the_reader_splits_on_newline_only(tmp_path: Path) -> None:
    """A file written by someone else with raw U+2028 inside a JSON string still reads back whole."""
    path = tmp_path / "audit.jsonl"
    raw = [json.dumps({"event": "auth", "path": f"/a{brk}b"}, ensure_ascii=False) for brk in LINE_BREAKS[3:]]
    path.write_text("\n".join(raw) + "\n", encoding="utf-8")
    assert [e["path"] for e in read_audit_log(path)] == [f"/a{brk}b" for brk in LINE_BREAKS[3:]]


def test_a_valid_keys_own_entries_survive_line_breaks_in_path_and_client(tmp_path: Path) -> None:
    """The real app: line breaks in the path and in the client address (what a trusted proxy's header sets)."""
    key = generate_key()
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path, flush_interval=60)
    app = create_secured_app(KeyRing.from_keys({"alice": key}), tmp_path / "shop.sqlite3", audit=audit)
    client_host = f"203.0.113.9{ODD}"
    with TestClient(app, base_url="http://127.0.0.1:8000", client=(client_host, 4000)) as http:
        quoted = "".join(f"%{b:02X}" for b in ODD.encode())
        assert http.post(f"/mcp/{quoted}", **list_tools(api_key=key)).status_code == 404  # allowed, then no route
        assert http.post("/mcp", **tool_call("list_items", api_key=key)).status_code == 200
        assert http.post(f"/mcp/{quoted}", **list_tools(api_key=generate_key())).status_code == 401
    # Leaving the TestClient ran the lifespan's shutdown, which closed (flushed) the log.
    entries = read_audit_log(path)
    assert len(lines(path)) == len(entries) == 4
    allowed, call, refused = entries[0], entries[2], entries[3]
    assert allowed["outcome"] == "allowed" and allowed["key"] == "alice" and allowed["path"] == f"/mcp/{ODD}"
    assert entries[1]["outcome"] == "allowed" and entries[1]["path"] == "/mcp"
    assert call["event"] == "tool_call" and call["tool"] == "list_items" and call["key"] == "alice"
    assert call["client"].startswith("203.0.113.9\n\r")
    assert refused["outcome"] == "invalid" and refused["client"] == f"{client_host}:4000"[:MAX_CLIENT_CHARS]


def test_client_fields_are_capped(tmp_path: Path) -> None:
    audit = AuditLog()
    entry = audit.record("auth", outcome="invalid", client="x" * 100_000)
    assert len(entry["client"]) == MAX_CLIENT_CHARS


def test_a_new_log_file_is_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        audit = AuditLog(tmp_path / "logs" / "audit.jsonl")
        audit.record("auth", outcome="allowed")
        audit.close()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "logs" / "audit.jsonl").stat().st_mode) == 0o600


def test_record_does_not_write_the_file_itself_and_close_writes_everything(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path, flush_interval=60)
    for number in range(100):
        audit.record("auth", outcome="allowed", n=number)
    assert lines(path) == []  # buffered: no file write on the caller's path
    audit.close()
    assert [e["n"] for e in read_audit_log(path)] == list(range(100))
    audit.record("auth", outcome="allowed", n=100)  # usable after close: a new writer starts
    assert [e["n"] for e in audit.entries()] == list(range(101))
    audit.close()


def test_the_writer_flushes_on_its_timer_and_when_the_buffer_fills(tmp_path: Path) -> None:
    timed = AuditLog(tmp_path / "timed.jsonl", flush_interval=0.05)
    timed.record("auth", outcome="allowed")
    wait_for(lambda: len(lines(tmp_path / "timed.jsonl")) == 1)
    full = AuditLog(tmp_path / "full.jsonl", flush_interval=60, max_buffered=10)
    for _ in range(10):
        full.record("auth", outcome="allowed")
    wait_for(lambda: len(lines(tmp_path / "full.jsonl")) == 10)
    timed.close()
    full.close()


def test_the_lifespan_shutdown_closes_the_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path, flush_interval=60)

    async def inner(scope, receive, send):
        assert (await receive())["type"] == "lifespan.shutdown"
        assert lines(path) == []
        await send({"type": "lifespan.shutdown.complete"})

    sent = []

    async def receive():
        return {"type": "lifespan.shutdown"}

    async def send(message):
        sent.append((message["type"], len(lines(path))))

    audit.record("auth", outcome="allowed")
    anyio.run(ApiKeyMiddleware(inner, KeyRing(), audit=audit), {"type": "lifespan"}, receive, send)
    assert sent == [("lifespan.shutdown.complete", 1)]  # written before the server is told shutdown is done


def test_2000_throttled_requests_add_less_than_100_kb(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path)
    app = ApiKeyMiddleware(lambda *_: None, KeyRing(), throttle=FailedAttemptThrottle(1, 60), audit=audit)

    async def flood() -> list[int]:
        statuses = []
        transport = httpx.ASGITransport(app, client=("198.51.100.7", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            await http.post("/mcp", headers={"x-api-key": "wrong"})
            for _ in range(2000):
                statuses.append((await http.post("/mcp", headers={"x-api-key": "wrong" * 20})).status_code)
        return statuses

    assert set(anyio.run(flood)) == {429}
    audit.close()
    assert path.stat().st_size < 100_000
    throttled = [e for e in read_audit_log(path) if e["outcome"] == "throttled"]
    assert sum(e.get("count", 1) for e in throttled) == 2000  # nothing lost: counted, not written one by one
    assert len(throttled) == 2


def test_a_throttled_burst_is_summarised_when_its_window_ends(tmp_path: Path) -> None:
    audit = AuditLog(summary_window=0.05)
    for _ in range(3):
        audit.record_throttled("192.0.2.1", client="192.0.2.1", path="/mcp")
    time.sleep(0.06)  # the window has ended; the next throttled request from anywhere sweeps it
    audit._next_sweep = 0
    audit.record_throttled("192.0.2.2", client="192.0.2.2", path="/mcp")
    assert [(e["client"], e.get("count", 1)) for e in audit.entries()] == [
        ("192.0.2.1", 1),
        ("192.0.2.2", 1),
        ("192.0.2.1", 2),
    ]


def test_a_clean_shutdown_of_serve_loses_no_entry(tmp_path: Path) -> None:
    key = new_key(tmp_path / "keys.json")
    audit_path = tmp_path / "audit.jsonl"
    served = Served(
        "--keys-file", str(tmp_path / "keys.json"), "--db", str(tmp_path / "shop.sqlite3"),
        "--audit-log", str(audit_path), "--max-failures", "100000",
    )  # fmt: skip
    try:
        with httpx.Client(timeout=10) as http:
            for number in range(150):
                wrong = number % 3 == 2
                response = http.post(served.url, **list_tools(api_key=generate_key() if wrong else key))
                assert response.status_code == (401 if wrong else 200)
    finally:
        status, _, err = served.stop()
    assert status == 0, err
    entries = read_audit_log(audit_path)
    assert len(lines(audit_path)) == len(entries) == 150
    assert [e["outcome"] for e in entries].count("invalid") == 50
    assert stat.S_IMODE(audit_path.stat().st_mode) == 0o600


@pytest.mark.parametrize("memory_limit", [3])
def test_memory_mode_keeps_the_latest_entries(memory_limit: int) -> None:
    audit = AuditLog(memory_limit=memory_limit)
    for number in range(5):
        audit.record("auth", outcome="allowed", n=number)
    assert [e["n"] for e in audit.entries()] == [2, 3, 4]
    audit.close()


def test_read_audit_log_sees_what_this_process_recorded_even_if_still_buffered(tmp_path: Path) -> None:
    """Notebooks read the file right after their requests: the writer's timer must not make entries vanish."""
    audit = AuditLog(tmp_path / "audit.jsonl", flush_interval=60)
    audit.record("auth", outcome="allowed", n=1)
    assert [e["n"] for e in read_audit_log(tmp_path / "audit.jsonl")] == [1]
    audit.close()


def test_a_subclass_that_overrides_record_sees_the_key_checks_entries_too() -> None:
    class Tagged(AuditLog):
        def record(self, event, **fields):
            return super().record(event, replica="r1", **fields)

    audit = Tagged()
    audit.record_auth("allowed", "127.0.0.1:1", "POST", "/mcp", "alice", "fp")
    audit.record_auth("invalid", "127.0.0.1:1", "POST", "/mcp")
    plain = AuditLog()
    plain.record_auth("allowed", "127.0.0.1:1", "POST", "/mcp", "alice", "fp")
    plain.record_auth("invalid", "127.0.0.1:1", "POST", "/mcp")
    strip = [{k: v for k, v in e.items() if k not in ("time", "replica")} for e in audit.entries()]
    assert strip == [{k: v for k, v in e.items() if k != "time"} for e in plain.entries()]
    assert all(e["replica"] == "r1" for e in audit.entries())


HOSTILE_AUTH = [
    ("allowed", "127.0.0.1:5000", "POST", "/mcp", "bench", "sk-mcp-ab…yz"),
    ("invalid", "[::1]:5", "GET", '/x\u2028y"z\\', None, None),
    ("missing", "a" * 100, "PUT", "/é\x00\n", None, None),
    ("allowed", "c", "POST", "/", 'na"me\u0085', None),
]
HOSTILE_TOOL_CALLS = [
    ("bench", "1.2.3.4:5", "list_items", "ok", None),
    ("k", None, "add_item", "error", 'bad "thing" \u0085\r\n'),
    ("anonymous", "x" * 80, "t", "denied", "d"),
]


class _ThroughRecord(AuditLog):
    """Overrides `record` without changing it, so every entry takes the general path."""

    def record(self, event: str, **fields: object) -> dict[str, object]:
        return super().record(event, **fields)


def _record_all(log: AuditLog) -> None:
    for auth in HOSTILE_AUTH:
        log.record_auth(*auth)
    for call in HOSTILE_TOOL_CALLS:
        log.record_tool_call(*call)


def _without_time(text: str) -> list[str]:
    return [json.dumps({k: v for k, v in json.loads(line).items() if k != "time"}) for line in text.split("\n") if line]


@pytest.mark.parametrize("to_file", [True, False])
def test_the_per_request_shortcuts_write_what_record_writes(tmp_path: Path, to_file: bool) -> None:
    """record_auth and record_tool_call build their entries directly (they run on every request): same entries,
    same bytes on disk (fields, order, escaping) as the general `record`, hostile values included."""
    fast = AuditLog(tmp_path / "fast.jsonl" if to_file else None)
    general = _ThroughRecord(tmp_path / "general.jsonl" if to_file else None)
    for log in (fast, general):
        _record_all(log)
        log.close()
    if to_file:
        fast_text, general_text = ((tmp_path / n).read_text(encoding="ascii") for n in ("fast.jsonl", "general.jsonl"))
        assert _without_time(fast_text) == _without_time(general_text)
        assert [line.split('"time": ')[1][26:] for line in fast_text.splitlines()] == [
            line.split('"time": ')[1][26:] for line in general_text.splitlines()
        ]  # byte for byte after the timestamp
        assert len(fast_text.splitlines()) == len(HOSTILE_AUTH) + len(HOSTILE_TOOL_CALLS)
    strip = [{k: v for k, v in e.items() if k != "time"} for e in fast.entries()]
    assert strip == [{k: v for k, v in e.items() if k != "time"} for e in general.entries()]
    assert strip[0]["fingerprint"] == "sk-mcp-ab…yz" and strip[1]["path"] == '/x\u2028y"z\\'
    assert all(len(e.get("client", "")) <= MAX_CLIENT_CHARS for e in strip)


def test_entry_times_are_utc_iso_8601_with_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    log = AuditLog()
    for ns in (1_764_475_200_000_000_000, 1_764_475_200_007_999_999, 1_764_475_259_999_000_000):
        monkeypatch.setattr(time, "time_ns", lambda ns=ns: ns)
        log.record_auth("allowed", "127.0.0.1:1", "POST", "/mcp", "k", "f")
    assert [e["time"] for e in log.entries()] == [
        "2025-11-30T04:00:00.000Z",
        "2025-11-30T04:00:00.007Z",
        "2025-11-30T04:00:59.999Z",
    ]
    monkeypatch.undo()
    log.record("event")
    stamp = log.entries()[-1]["time"]
    parsed = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    assert stamp[19] == "." and stamp[-1] == "Z" and len(stamp) == 24 and abs(parsed - time.time()) < 2
