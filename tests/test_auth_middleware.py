"""The key-check middleware, in-process over ASGI with a trivial inner app."""

from __future__ import annotations

import gc
import json
import tracemalloc

import anyio
import httpx
import pytest

from lesson_code import errors
from lesson_code.audit import AuditLog
from lesson_code.auth import ApiKeyMiddleware, find_credential
from lesson_code.keys import KeyRing, generate_key
from lesson_code.throttle import FailedAttemptThrottle

pytestmark = pytest.mark.anyio

KEY = generate_key()
VIEWER_KEY = generate_key()


class Recorder:
    """An inner app that answers 200 and remembers what reached it."""

    def __init__(self) -> None:
        self.scopes: list[dict] = []

    async def __call__(self, scope, receive, send):
        self.scopes.append(scope)
        if scope["type"] == "lifespan":
            return
        user = scope.get("user")
        body = json.dumps({"user": user.display_name if user else None, "scopes": user.scopes if user else None})
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body.encode()})


def make(throttle=None, audit=None):
    ring = KeyRing.from_keys({"alice": KEY})
    ring.add("val", VIEWER_KEY, role="viewer")
    inner = Recorder()
    return ApiKeyMiddleware(inner, ring, throttle=throttle, audit=audit), inner


async def request(app, method="POST", path="/mcp", headers=None, client=("127.0.0.1", 5000)):
    transport = httpx.ASGITransport(app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        return await http.request(method, path, headers=headers or {})


def assert_refused(response, status=401, code=None):
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None
    assert isinstance(body["error"]["code"], int) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    assert KEY not in response.text
    if status == 401:
        challenges = response.headers.get_list("www-authenticate")
        assert any(c.startswith("ApiKey") for c in challenges)
        assert any(c.startswith("Bearer") for c in challenges)
    return body


async def test_missing_key_is_401_with_json_rpc_error():
    app, inner = make()
    body = assert_refused(await request(app), code=errors.MISSING_API_KEY)
    assert "missing" in body["error"]["message"]
    assert inner.scopes == []


async def test_wrong_key_is_401_with_a_different_message():
    app, inner = make()
    body = assert_refused(await request(app, headers={"x-api-key": "sk-mcp-wrong"}), code=errors.INVALID_API_KEY)
    assert "invalid" in body["error"]["message"]
    assert inner.scopes == []


@pytest.mark.parametrize("header", ["x-api-key", "X-API-KEY", "X-Api-Key"])
async def test_valid_key_passes_and_identifies_the_caller(header):
    app, _ = make()
    response = await request(app, headers={header: KEY})
    assert response.status_code == 200
    assert response.json()["user"] == "alice"
    assert sorted(response.json()["scopes"]) == ["list:read", "list:write", "orders:read", "orders:write"]


async def test_raw_mixed_case_header_names_are_accepted():
    """ASGI servers lower-case names, but a hand-built scope might not: we do it ourselves."""
    assert find_credential([(b"X-API-Key", KEY.encode())]) == KEY.encode()


async def test_viewer_identity_carries_only_read_scopes():
    app, _ = make()
    response = await request(app, headers={"x-api-key": VIEWER_KEY})
    assert response.json() == {"user": "val", "scopes": ["list:read", "orders:read"]}


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_authorization_bearer_is_accepted(scheme):
    app, _ = make()
    response = await request(app, headers={"authorization": f"{scheme} {KEY}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        [("x-api-key", KEY), ("x-api-key", KEY)],
        [("x-api-key", KEY), ("authorization", f"Bearer {VIEWER_KEY}")],
        [("authorization", f"Bearer {KEY}"), ("authorization", f"Bearer {KEY}")],
        [("authorization", f"Basic {KEY}")],
        [("x-api-key", f"{KEY}, {KEY}")],
        [("x-api-key", "")],
        [("authorization", "Bearer")],
    ],
)
async def test_duplicate_conflicting_or_malformed_credentials_are_refused(headers):
    app, inner = make()
    assert_refused(await request(app, headers=headers))
    assert inner.scopes == []


async def test_the_same_key_in_both_headers_is_accepted():
    app, _ = make()
    response = await request(app, headers={"x-api-key": KEY, "authorization": f"Bearer {KEY}"})
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/mcp", "/mcp/", "//mcp", "/MCP", "/%6Dcp", "/mcp/../mcp", "/", "/health/", "/x"])
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD"])
async def test_default_deny_for_every_path_and_method(path, method):
    app, inner = make()
    response = await request(app, method=method, path=path)
    assert response.status_code == 401
    assert inner.scopes == []


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_health_is_public_for_reads_only(method):
    app, _ = make()
    assert (await request(app, method=method, path="/health")).status_code == 200
    assert (await request(app, method="POST", path="/health")).status_code == 401


async def test_lifespan_passes_through_untouched():
    app, inner = make()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await app(scope, None, None)
    assert inner.scopes == [scope]


async def test_websocket_without_key_is_closed():
    app, inner = make()
    sent = []

    async def send(message):
        sent.append(message)

    await app({"type": "websocket", "path": "/mcp", "headers": [], "client": ("127.0.0.1", 1)}, None, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert inner.scopes == []


async def test_oversized_headers_are_431():
    app, inner = make()
    response = await request(app, headers={"x-api-key": KEY, "x-padding": "a" * 9000})
    assert_refused(response, status=431, code=errors.REQUEST_REJECTED)
    assert inner.scopes == []


async def test_throttle_gives_429_with_retry_after_and_spares_other_addresses():
    throttle = FailedAttemptThrottle(3, 60)
    app, _ = make(throttle=throttle)
    for _ in range(3):
        assert (await request(app, headers={"x-api-key": "bad"})).status_code == 401
    locked = await request(app, headers={"x-api-key": "bad"})
    body = assert_refused(locked, status=429, code=errors.TOO_MANY_FAILED_ATTEMPTS)
    assert int(locked.headers["retry-after"]) > 0 and "try again" in body["error"]["message"]
    assert_refused(await request(app), status=429)  # no key at all: throttled as well
    other = await request(app, headers={"x-api-key": "bad"}, client=("127.0.0.2", 5000))
    assert other.status_code == 401


async def test_a_valid_key_is_served_from_a_throttled_address_and_never_touches_the_throttle():
    class Untouchable(FailedAttemptThrottle):
        async def retry_after(self, client: str) -> int:
            raise AssertionError("a valid key must not consult the throttle")

        async def record_failure(self, client: str) -> None:
            raise AssertionError("a valid key must not count as a failure")

    app, _ = make(throttle=Untouchable(1, 60))
    for header in ({"x-api-key": KEY}, {"authorization": f"Bearer {KEY}"}):
        assert (await request(app, headers=header)).status_code == 200

    throttle = FailedAttemptThrottle(3, 60)
    app, _ = make(throttle=throttle)
    for _ in range(5):
        await request(app, headers={"x-api-key": "bad"})
    assert await throttle.retry_after("127.0.0.1") > 0
    served = await request(app, headers={"x-api-key": KEY})
    assert served.status_code == 200 and served.json()["user"] == "alice"


async def test_throttled_requests_are_audited_once_per_address_and_window_then_summarised():
    audit = AuditLog()
    app, _ = make(throttle=FailedAttemptThrottle(2, 60), audit=audit)
    for _ in range(2):
        await request(app, headers={"x-api-key": "bad"})
    for port in range(10):
        assert (await request(app, headers={"x-api-key": "bad"}, client=("127.0.0.1", 6000 + port))).status_code == 429
    throttled = [e for e in audit.entries() if e["outcome"] == "throttled"]
    assert len(throttled) == 1 and throttled[0]["client"] == "127.0.0.1" and "count" not in throttled[0]
    audit.close()  # writes the pending summary
    throttled = [e for e in audit.entries() if e["outcome"] == "throttled"]
    assert [e.get("count", 1) for e in throttled] == [1, 9]
    assert throttled[1]["first"] <= throttled[1]["last"]


async def test_audit_records_decisions_and_never_the_key():
    audit = AuditLog()
    app, _ = make(audit=audit)
    await request(app, headers={"x-api-key": KEY})
    await request(app, headers={"x-api-key": "sk-mcp-guess"})
    await request(app)
    entries = audit.entries()
    assert [e["outcome"] for e in entries] == ["allowed", "invalid", "missing"]
    assert entries[0]["key"] == "alice" and entries[0]["client"] == "127.0.0.1:5000"
    dump = json.dumps(entries)
    assert KEY not in dump and "sk-mcp-guess" not in dump


async def test_a_stream_is_closed_when_its_key_is_revoked():
    ring = KeyRing.from_keys({"alice": KEY})
    ring.reload_interval = 0.05
    finished = anyio.Event()

    async def endless_stream(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"data: ping\n\n", "more_body": True})
                await anyio.sleep(0.01)
        finally:
            finished.set()

    app = ApiKeyMiddleware(endless_stream, ring)
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/mcp",
        "headers": [(b"x-api-key", KEY.encode())],
        "client": ("127.0.0.1", 1),
    }

    async def send(message):
        pass

    async def receive():
        await anyio.sleep_forever()

    with anyio.fail_after(3):
        async with anyio.create_task_group() as group:
            group.start_soon(app, scope, receive, send)
            await anyio.sleep(0.1)
            assert not finished.is_set()
            ring.revoke("alice")
            await finished.wait()


async def test_rotating_keys_for_a_long_time_does_not_grow_memory():
    """Each key that was ever valid gets an identity built once; rotated and revoked ones must not pile up."""

    async def answer(scope, receive, send):  # keeps nothing (Recorder keeps every scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})

    ring = KeyRing.from_keys({"alice": KEY})
    app = ApiKeyMiddleware(answer, ring)
    scope_base = {"type": "http", "method": "POST", "path": "/mcp", "client": ("127.0.0.1", 5000)}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    async def rotate(count: int) -> None:
        for i in range(count):
            key = generate_key()
            ring.add(f"rotating-{i % 2}", key)  # a new key under the same two names, the old one gone
            await app({**scope_base, "headers": [(b"x-api-key", key.encode())]}, receive, send)

    await rotate(200)  # warm-up: caches and interned names
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    await rotate(3000)
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 200_000, f"{grown:,} bytes kept after 3,000 key rotations"
